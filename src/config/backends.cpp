// backends[]: balancing, steering, health checks, regions and endpoints.
#include <algorithm>
#include <cctype>

#include "meridian/core/units.hpp"

#include "config/address.hpp"
#include "config/walk.hpp"

namespace meridian::config::detail {
namespace {

constexpr Choice<UpstreamProtocol> kProtocols[] = {{"http1", UpstreamProtocol::http1},
                                                   {"h2", UpstreamProtocol::h2},
                                                   {"h2c", UpstreamProtocol::h2c}};
constexpr Choice<Balance> kBalances[] = {{"least_conn", Balance::least_conn},
                                         {"round_robin", Balance::round_robin},
                                         {"random", Balance::random},
                                         {"ring_hash", Balance::ring_hash},
                                         {"maglev", Balance::maglev}};
constexpr Choice<SteeringPolicy> kPolicies[] = {{"nearest", SteeringPolicy::nearest},
                                                {"latency", SteeringPolicy::latency},
                                                {"geo", SteeringPolicy::geo},
                                                {"failover", SteeringPolicy::failover}};
constexpr std::string_view kContinents[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};

constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// A rule's `regions`, kept with their positions until the backend's regions are known.
struct RuleRegionRef {
  Field field;
  std::string name;
};

void read_continents(Diagnostics& diag, const Field& field, GeoRule& rule) {
  for (const auto& item : read_one_or_many(diag, field)) {
    auto text = read_string(diag, item);
    if (!text) continue;
    std::string code = ascii_upper(*text);
    if (std::find(std::begin(kContinents), std::end(kContinents), code) == std::end(kContinents)) {
      diag.error(item, "expected a continent code (" + choice_list(kContinents) + "), got " +
                           quoted(*text));
      continue;
    }
    rule.continents.push_back(std::move(code));
  }
}

void read_countries(Diagnostics& diag, const Field& field, GeoRule& rule) {
  for (const auto& item : read_one_or_many(diag, field)) {
    auto text = read_string(diag, item);
    if (!text) continue;
    bool alpha2 = text->size() == 2 && std::all_of(text->begin(), text->end(), [](char c) {
                    return std::isalpha(static_cast<unsigned char>(c));
                  });
    if (!alpha2) {
      diag.error(item, "expected a two-letter ISO 3166-1 country code, got " + quoted(*text));
      continue;
    }
    rule.countries.push_back(ascii_upper(*text));
  }
}

GeoRule read_rule(Diagnostics& diag, const Field& field, std::vector<RuleRegionRef>& refs) {
  GeoRule rule;
  MapReader map(diag, field, Section::steering_rule);
  if (!map.valid()) return rule;
  if (auto f = map.require("match")) {
    MapReader match(diag, *f, Section::rule_match);
    if (match.valid() && !match.has("continent") && !match.has("country")) {
      diag.error(*f, "a rule must match a continent or a country");
    }
    if (auto c = match.get("continent")) read_continents(diag, *c, rule);
    if (auto c = match.get("country")) read_countries(diag, *c, rule);
  }
  if (auto f = map.require("regions")) {
    auto items = read_one_or_many(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one region is required");
    }
    for (const auto& item : items) {
      if (auto name = read_non_empty_string(diag, item)) {
        refs.push_back({item, *name});
        rule.regions.push_back(*name);
      }
    }
  }
  map.read("strict", rule.strict);
  return rule;
}

// Returns whether `policy` was read without error, so a bad policy does not also make every
// region's location "missing".
bool read_steering(Diagnostics& diag, const Field& field, Steering& steering,
                   std::vector<RuleRegionRef>& refs) {
  MapReader map(diag, field, Section::steering);
  if (!map.valid()) return false;
  bool policy_ok = map.read("policy", steering.policy, kPolicies) || !map.has("policy");
  map.read("geo_weight", steering.geo_weight, 0.0, kUnbounded);
  map.read("latency_weight", steering.latency_weight, 0.0, kUnbounded);
  if (auto f = map.get("rules")) {
    for (const auto& item : read_sequence(diag, *f)) {
      steering.rules.push_back(read_rule(diag, item, refs));
    }
  }
  return policy_ok;
}

std::optional<StatusRange> parse_status_range(std::string_view text) {
  auto dash = text.find('-');
  auto low = parse_uint(text.substr(0, dash));
  auto high = dash == std::string_view::npos ? low : parse_uint(text.substr(dash + 1));
  if (!low || !high || *low < 100 || *high > 599 || *low > *high) return std::nullopt;
  return StatusRange{static_cast<int>(*low), static_cast<int>(*high)};
}

std::optional<HealthCheck> read_health_check(Diagnostics& diag, const Field& field) {
  MapReader map(diag, field, Section::health_check);
  if (!map.valid()) return std::nullopt;
  HealthCheck check;
  if (auto f = map.get("path")) {
    if (auto path = read_string(diag, *f)) {
      if (path->starts_with('/')) {
        check.path = *path;
      } else {
        diag.error(*f, "must start with '/', got " + quoted(*path));
      }
    }
  }
  map.read("host", check.host);
  map.read("interval", check.interval, AllowZero::no);
  map.read("timeout", check.timeout, AllowZero::no);
  map.read("healthy_threshold", check.healthy_threshold, 1);
  map.read("unhealthy_threshold", check.unhealthy_threshold, 1);
  if (auto f = map.get("expected_status")) {
    if (auto text = read_string(diag, *f)) {
      if (auto range = parse_status_range(*text)) {
        check.expected_status = *range;
      } else {
        diag.error(*f, "expected a status like 200 or a range like 200-399 within 100-599, got " +
                           quoted(*text));
      }
    }
  }
  return check;
}

std::optional<OutlierDetection> read_outlier_detection(Diagnostics& diag, const Field& field) {
  MapReader map(diag, field, Section::outlier_detection);
  if (!map.valid()) return std::nullopt;
  OutlierDetection outlier;
  map.read("consecutive_failures", outlier.consecutive_failures, 1);
  map.read("ejection_time", outlier.ejection_time, AllowZero::no);
  return outlier;
}

Endpoint read_endpoint(Diagnostics& diag, const Field& field) {
  Endpoint endpoint;
  MapReader map(diag, field, Section::endpoint);
  if (!map.valid()) return endpoint;
  if (auto f = map.require("address")) {
    // A name with `resolve` is looked up by DNS re-resolution, not by the loader.
    const auto resolve = map.has("resolve") ? Resolve::no : Resolve::yes;
    if (auto address = read_address(diag, *f, AllowZero::no, resolve)) endpoint.address = *address;
  }
  map.read("weight", endpoint.weight, 1);
  if (auto f = map.get("resolve")) {
    MapReader resolve(diag, *f, Section::endpoint_resolve);
    Duration every{0};
    if (resolve.valid() && resolve.require("every") &&
        resolve.read("every", every, AllowZero::no)) {
      boost::system::error_code ec;
      boost::asio::ip::make_address(endpoint.address.host, ec);
      if (!ec) {
        diag.error(*f, "resolve needs a host name, but " + quoted(endpoint.address.text) +
                           " is an IP address");
      } else if (every < Duration(1000)) {
        diag.error(*resolve.get("every"), "resolve.every must be at least 1s, got " +
                                              std::to_string(every.count()) + "ms");
      } else {
        endpoint.resolve_every = every;
      }
    }
  }
  return endpoint;
}

Region read_region(Diagnostics& diag, const Field& field, UniqueNames& names,
                   std::optional<MapReader>& reader) {
  Region region;
  reader.emplace(diag, field, Section::region);
  const MapReader& map = *reader;
  if (!map.valid()) return region;
  if (auto f = map.require("name")) region.name = names.read(diag, *f);
  if (auto f = map.get("location")) {
    region.location = read_location(diag, *f, Section::region_location);
  }
  map.read("capacity", region.capacity);
  if (auto f = map.get("traffic_dial")) {
    if (auto share = read_percent(diag, *f)) region.traffic_dial = *share;
  }
  if (auto f = map.require("endpoints")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one endpoint is required");
    }
    for (const auto& item : items)
      region.endpoints.push_back(read_endpoint(diag, item));
  }
  return region;
}

// `tls: true | false`, or `tls: {verify, ca, server_name}`.
std::optional<UpstreamTls> read_upstream_tls(Diagnostics& diag, const Field& field) {
  if (!field.node.IsMap()) {
    const auto on = read_bool(diag, field);
    if (!on || !*on) return std::nullopt;
    return UpstreamTls{};
  }
  MapReader map(diag, field, Section::upstream_tls);
  if (!map.valid()) return std::nullopt;
  UpstreamTls tls;
  map.read("verify", tls.verify);
  if (auto f = map.get("ca")) {
    auto path = read_non_empty_string(diag, *f);
    if (path && check_readable_file(diag, *f, *path, "CA file")) tls.ca = *path;
  }
  map.read("server_name", tls.server_name);
  return tls;
}

// hash_key: client_ip | header:NAME | cookie:NAME.
void read_hash_key(Diagnostics& diag, const Field& field, HashKey& key) {
  auto text = read_string(diag, field);
  if (!text) return;
  const std::string_view v = *text;
  if (v == "client_ip") {
    key = {HashKeyKind::client_ip, ""};
  } else if (v.starts_with("header:") && is_token(v.substr(7))) {
    key = {HashKeyKind::header, ascii_lower(std::string(v.substr(7)))};
  } else if (v.starts_with("cookie:") && is_token(v.substr(7))) {
    key = {HashKeyKind::cookie, std::string(v.substr(7))};
  } else {
    diag.error(field, "expected client_ip, header:NAME or cookie:NAME, got " + quoted(*text));
  }
}

// affinity: {cookie: NAME, ttl: DURATION}; an empty cookie name turns it off.
std::optional<Affinity> read_affinity(Diagnostics& diag, const Field& field) {
  MapReader map(diag, field, Section::affinity);
  if (!map.valid()) return std::nullopt;
  Affinity affinity;
  if (auto f = map.get("cookie")) {
    if (auto name = read_string(diag, *f)) {
      if (!name->empty() && !is_token(*name)) {
        diag.error(*f, "expected a cookie name (an RFC 6265 token), got " + quoted(*name));
      }
      affinity.cookie = *name;
    }
  }
  if (map.read("ttl", affinity.ttl, AllowZero::yes) && affinity.ttl.count() > 0 &&
      affinity.ttl < std::chrono::seconds(1)) {
    // Max-Age counts whole seconds: 500ms would be Max-Age=0, "delete it now".
    diag.error(*map.get("ttl"), "must be 0s (a session cookie) or at least 1s");
  }
  if (affinity.cookie.empty()) return std::nullopt;
  return affinity;
}

Backend read_backend(Diagnostics& diag, const Field& field, UniqueNames& backend_names) {
  Backend backend;
  MapReader map(diag, field, Section::backend);
  if (!map.valid()) return backend;
  if (auto f = map.require("name")) backend.name = backend_names.read(diag, *f);
  map.read("protocol", backend.protocol, kProtocols);
  map.read("balance", backend.balance, kBalances);
  if (auto f = map.get("hash_key")) {
    read_hash_key(diag, *f, backend.hash_key);
    if (backend.balance != Balance::ring_hash && backend.balance != Balance::maglev &&
        map.has("balance")) {
      diag.error(*f, "hash_key applies to balance ring_hash or maglev only");
    } else if (!map.has("balance")) {
      diag.error(*f, "hash_key needs balance: ring_hash or maglev (the default is least_conn)");
    }
  }
  if (auto f = map.get("affinity")) backend.affinity = read_affinity(diag, *f);
  std::vector<RuleRegionRef> rule_regions;
  bool policy_ok = true;
  if (auto f = map.get("steering")) {
    policy_ok = read_steering(diag, *f, backend.steering, rule_regions);
  }
  map.read("connect_timeout", backend.connect_timeout, AllowZero::no);
  map.read("max_connections_per_endpoint", backend.max_connections_per_endpoint);
  if (auto f = map.get("keepalive")) {
    MapReader keepalive(diag, *f, Section::keepalive);
    keepalive.read("max_idle_per_endpoint", backend.keepalive.max_idle_per_endpoint);
    keepalive.read("idle_timeout", backend.keepalive.idle_timeout, AllowZero::no);
  }
  if (auto f = map.get("health_check")) backend.health_check = read_health_check(diag, *f);
  if (auto f = map.get("tls")) backend.tls = read_upstream_tls(diag, *f);
  // h2 is negotiated by ALPN inside TLS; h2c is HTTP/2 on a plain connection.
  if (backend.protocol == UpstreamProtocol::h2 && !backend.tls) {
    if (auto f = map.get("protocol")) {
      diag.error(*f,
                 "protocol h2 is HTTP/2 over TLS: add `tls: true` to the backend (or use "
                 "h2c for cleartext HTTP/2)");
    }
  } else if (backend.protocol == UpstreamProtocol::h2c && backend.tls) {
    if (auto f = map.get("protocol")) {
      diag.error(*f,
                 "protocol h2c is cleartext HTTP/2, but the backend has tls: use h2 for "
                 "HTTP/2 over TLS");
    }
  }
  if (auto f = map.get("outlier_detection")) {
    backend.outlier_detection = read_outlier_detection(diag, *f);
  }
  map.read("slow_start", backend.slow_start, AllowZero::yes);

  // Region readers are kept so that a missing location can be reported at its region.
  std::vector<std::optional<MapReader>> region_maps;
  if (auto f = map.require("regions")) {
    auto items = read_sequence(diag, *f);
    if (items.empty() && (f->node.IsNull() || f->node.IsSequence())) {
      diag.error(*f, "at least one region is required");
    }
    UniqueNames region_names("region");
    region_maps.resize(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      backend.regions.push_back(read_region(diag, items[i], region_names, region_maps[i]));
    }
  }

  // Checks that need both the steering policy and the regions, whatever their order.
  auto policy = backend.steering.policy;
  if (policy_ok && (policy == SteeringPolicy::nearest || policy == SteeringPolicy::geo)) {
    std::string reason = "steering policy " +
                         std::string(policy == SteeringPolicy::nearest ? "nearest" : "geo") +
                         " needs region locations";
    for (std::size_t i = 0; i < region_maps.size(); ++i) {
      if (!backend.regions[i].location && !region_maps[i]->has("location")) {
        region_maps[i]->report_missing("location", reason);
      }
    }
  }
  for (const auto& ref : rule_regions) {
    bool known = std::any_of(backend.regions.begin(), backend.regions.end(),
                             [&](const Region& r) { return r.name == ref.name; });
    if (!known) {
      std::vector<std::string_view> names;
      for (const auto& r : backend.regions)
        names.push_back(r.name);
      diag.error(ref.field, "region " + quoted(ref.name) + " is not a region of backend " +
                                quoted(backend.name) + did_you_mean(ref.name, names));
    }
  }
  return backend;
}

}  // namespace

void read_backends(Walk& walk, const Field& field) {
  auto items = read_sequence(walk.diag, field);
  if (items.empty() && (field.node.IsNull() || field.node.IsSequence())) {
    walk.diag.error(field, "at least one backend is required");
  }
  UniqueNames names("backend");
  for (const auto& item : items)
    walk.config.backends.push_back(read_backend(walk.diag, item, names));
}

}  // namespace meridian::config::detail
