// The key lists of every mapping in the configuration file (schema.hpp). The readers in
// loader.cpp, listeners.cpp, backends.cpp and values.cpp name their Section; what a Section
// accepts is only ever written here.
#include "config/schema.hpp"

#include <iterator>
#include <string>
#include <vector>

#include "meridian/config/schema.hpp"

namespace meridian::config {
namespace detail {
namespace {

constexpr std::string_view kTopKeys[] = {"node",
                                         "workers",
                                         "drain_timeout",
                                         "drain_grace",
                                         "debug_headers",
                                         "admin",
                                         "geoip",
                                         "dns",
                                         "client_ip",
                                         "access_log",
                                         "limits",
                                         "listeners",
                                         "rate_limit_store",
                                         "backends",
                                         "tracing"};
constexpr std::string_view kNodeKeys[] = {"name", "location"};
constexpr std::string_view kLocationKeys[] = {"lat", "lon"};
constexpr std::string_view kAdminKeys[] = {"listen", "shared_state"};
constexpr std::string_view kGeoIpKeys[] = {"database"};
constexpr std::string_view kDnsKeys[] = {"servers"};
constexpr std::string_view kClientIpKeys[] = {"trusted_proxies"};
constexpr std::string_view kAccessLogKeys[] = {"path", "format"};
constexpr std::string_view kLimitsKeys[] = {
    "max_request_header_bytes", "max_request_headers", "max_request_body_bytes",
    "header_timeout",           "idle_timeout",        "max_connections",
    "max_rate_limit_keys"};

constexpr std::string_view kListenerKeys[] = {"name", "listen", "proxy_protocol", "tls", "routes"};
constexpr std::string_view kTlsKeys[] = {"certificates", "min_version", "alpn", "ticket_keys"};
constexpr std::string_view kCertificateKeys[] = {"cert", "key"};
constexpr std::string_view kRouteKeys[] = {"name",     "match",  "backend",   "backends",
                                           "redirect", "mirror", "headers",   "timeout",
                                           "retries",  "retry",  "rate_limit"};
constexpr std::string_view kMirrorKeys[] = {"backend", "percent"};
constexpr std::string_view kRouteBackendKeys[] = {"name", "weight"};
constexpr std::string_view kRedirectKeys[] = {"scheme", "host", "path", "code"};
constexpr std::string_view kRouteHeadersKeys[] = {"request", "response"};
constexpr std::string_view kHeaderRuleKeys[] = {"set", "remove"};
constexpr std::string_view kTracingKeys[] = {"propagate"};
constexpr std::string_view kRetryKeys[] = {"on", "per_try_timeout", "budget", "backoff"};
constexpr std::string_view kMatchKeys[] = {"host",    "path_prefix", "path",
                                           "methods", "headers",     "query"};
constexpr std::string_view kRateLimitKeys[] = {"rate", "burst", "key", "scope"};
constexpr std::string_view kStoreKeys[] = {"redis", "timeout", "on_error"};

constexpr std::string_view kBackendKeys[] = {
    "name",       "protocol",        "balance",
    "steering",   "connect_timeout", "max_connections_per_endpoint",
    "keepalive",  "health_check",    "outlier_detection",
    "slow_start", "regions",         "tls",
    "hash_key",   "affinity"};
constexpr std::string_view kAffinityKeys[] = {"cookie", "ttl"};
constexpr std::string_view kSteeringKeys[] = {"policy", "geo_weight", "latency_weight", "rules"};
constexpr std::string_view kRuleKeys[] = {"match", "regions", "strict"};
constexpr std::string_view kRuleMatchKeys[] = {"continent", "country"};
constexpr std::string_view kKeepaliveKeys[] = {"max_idle_per_endpoint", "idle_timeout"};
constexpr std::string_view kHealthCheckKeys[] = {
    "path",           "host", "interval", "timeout", "healthy_threshold", "unhealthy_threshold",
    "expected_status"};
constexpr std::string_view kOutlierKeys[] = {"consecutive_failures", "ejection_time"};
constexpr std::string_view kUpstreamTlsKeys[] = {"verify", "ca", "server_name"};
constexpr std::string_view kRegionKeys[] = {"name", "location", "capacity", "traffic_dial",
                                            "endpoints"};
constexpr std::string_view kEndpointKeys[] = {"address", "weight", "resolve"};
constexpr std::string_view kResolveKeys[] = {"every"};

constexpr SectionInfo kSections[] = {
    {Section::top, "", kTopKeys},
    {Section::node, "node", kNodeKeys},
    {Section::node_location, "node.location", kLocationKeys},
    {Section::admin, "admin", kAdminKeys},
    {Section::geoip, "geoip", kGeoIpKeys},
    {Section::dns, "dns", kDnsKeys},
    {Section::client_ip, "client_ip", kClientIpKeys},
    {Section::access_log, "access_log", kAccessLogKeys},
    {Section::limits, "limits", kLimitsKeys},
    {Section::listener, "listeners[]", kListenerKeys},
    {Section::listener_tls, "listeners[].tls", kTlsKeys},
    {Section::certificate, "listeners[].tls.certificates[]", kCertificateKeys},
    {Section::route, "listeners[].routes[]", kRouteKeys},
    {Section::route_match, "listeners[].routes[].match", kMatchKeys},
    {Section::rate_limit, "listeners[].routes[].rate_limit", kRateLimitKeys},
    {Section::route_retry, "listeners[].routes[].retry", kRetryKeys},
    {Section::route_backend, "listeners[].routes[].backends[]", kRouteBackendKeys},
    {Section::redirect, "listeners[].routes[].redirect", kRedirectKeys},
    {Section::mirror, "listeners[].routes[].mirror", kMirrorKeys},
    {Section::route_headers, "listeners[].routes[].headers", kRouteHeadersKeys},
    {Section::request_header_rules, "listeners[].routes[].headers.request", kHeaderRuleKeys},
    {Section::response_header_rules, "listeners[].routes[].headers.response", kHeaderRuleKeys},
    {Section::rate_limit_store, "rate_limit_store", kStoreKeys},
    {Section::backend, "backends[]", kBackendKeys},
    {Section::steering, "backends[].steering", kSteeringKeys},
    {Section::steering_rule, "backends[].steering.rules[]", kRuleKeys},
    {Section::rule_match, "backends[].steering.rules[].match", kRuleMatchKeys},
    {Section::keepalive, "backends[].keepalive", kKeepaliveKeys},
    {Section::health_check, "backends[].health_check", kHealthCheckKeys},
    {Section::outlier_detection, "backends[].outlier_detection", kOutlierKeys},
    {Section::upstream_tls, "backends[].tls", kUpstreamTlsKeys},
    {Section::affinity, "backends[].affinity", kAffinityKeys},
    {Section::region, "backends[].regions[]", kRegionKeys},
    {Section::region_location, "backends[].regions[].location", kLocationKeys},
    {Section::endpoint, "backends[].regions[].endpoints[]", kEndpointKeys},
    {Section::endpoint_resolve, "backends[].regions[].endpoints[].resolve", kResolveKeys},
    {Section::tracing, "tracing", kTracingKeys},
};

// Compile-time checks of the table, so that a mistake in it fails the build rather than
// showing up as a key the loader or the documentation test silently misses.

constexpr bool contains(std::span<const std::string_view> keys, std::string_view key) {
  for (auto k : keys) {
    if (k == key) return true;
  }
  return false;
}

constexpr const SectionInfo* find_section(std::string_view path) {
  for (const auto& s : kSections) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

// section_info() indexes the table by the enum.
constexpr bool rows_follow_the_enum() {
  for (std::size_t i = 0; i < std::size(kSections); ++i) {
    if (static_cast<std::size_t>(kSections[i].section) != i) return false;
  }
  return true;
}
static_assert(std::size(kSections) == static_cast<std::size_t>(Section::count),
              "every Section needs its row in kSections");
static_assert(rows_follow_the_enum(), "kSections rows must be in the order of enum Section");

// Every mapping but the top level is the value of a key of another one ("a[].b": key "b" of
// "a[]"; "a[]": an entry of the sequence under key "a" of the top level), so the paths
// accepted_key_paths() builds reach every key.
constexpr bool every_section_hangs_under_a_key() {
  for (const auto& s : kSections) {
    if (s.path.empty()) continue;
    std::string_view path = s.path;
    if (path.ends_with("[]")) path.remove_suffix(2);
    const auto dot = path.rfind('.');
    const std::string_view parent = dot == std::string_view::npos ? "" : path.substr(0, dot);
    const std::string_view key = dot == std::string_view::npos ? path : path.substr(dot + 1);
    const SectionInfo* owner = find_section(parent);
    if (owner == nullptr || !contains(owner->keys, key)) return false;
    if (find_section(s.path) != &s) return false;  // one row per path
  }
  return true;
}
static_assert(kSections[0].path.empty(), "the first row is the top level");
static_assert(every_section_hangs_under_a_key(),
              "a kSections path does not name a key of its parent section, or is repeated");

constexpr bool no_key_listed_twice() {
  for (const auto& s : kSections) {
    for (std::size_t i = 0; i < s.keys.size(); ++i) {
      if (contains(s.keys.first(i), s.keys[i])) return false;
    }
  }
  return true;
}
static_assert(no_key_listed_twice(), "a key is listed twice in one section");

// Depth first: each key, then the keys of the mapping it holds (directly, or as the entries
// of a sequence).
void append_paths(std::string_view section_path, std::vector<std::string>& out) {
  const SectionInfo* section = find_section(section_path);
  for (auto key : section->keys) {
    std::string path(section_path);
    if (!path.empty()) path += '.';
    path += key;
    out.push_back(path);
    if (find_section(path) != nullptr) {
      append_paths(path, out);
    } else if (find_section(path + "[]") != nullptr) {
      append_paths(path + "[]", out);
    }
  }
}

}  // namespace

std::span<const SectionInfo> sections() {
  return kSections;
}

}  // namespace detail

std::vector<std::string> accepted_key_paths() {
  std::vector<std::string> out;
  detail::append_paths("", out);
  return out;
}

}  // namespace meridian::config
