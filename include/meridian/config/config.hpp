// The validated configuration (docs/configuration.md), one struct per YAML mapping.
//
// A Config is built once by the loader (config/loader.hpp), never mutated afterwards, and
// shared as shared_ptr<const Config>. Every field holds the documented default when the key
// is absent. Addresses are resolved at load time (a host name is resolved at start and at
// each reload), so nothing downstream of the loader does DNS.
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace meridian::config {

using Duration = std::chrono::milliseconds;

struct Location {
  double lat = 0;  // [-90, 90]
  double lon = 0;  // [-180, 180]
};

// "host:port" or "[v6]:port" as written, plus the address it resolved to at load time.
struct SocketAddress {
  std::string text;  // as written in the file, e.g. "api.internal:8080"
  std::string host;  // "api.internal" (brackets stripped for v6)
  std::uint16_t port = 0;
  boost::asio::ip::tcp::endpoint resolved;  // first address the host resolved to
};

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix_length = 0;
  // True when `a` lies inside this block. IPv4-mapped IPv6 addresses match IPv4 blocks.
  bool contains(const boost::asio::ip::address& a) const;
};

// "N/s", "N/m", "N/h".
struct Rate {
  std::uint64_t tokens = 0;  // > 0
  Duration per{1000};
  double per_second() const {
    return static_cast<double>(tokens) * 1000.0 / static_cast<double>(per.count());
  }
};

struct StatusRange {
  int low = 200;
  int high = 399;
  bool contains(int status) const { return status >= low && status <= high; }
};

enum class ProxyProtocol { off, v1, v2, any };
enum class AccessLogFormat { json, combined };
enum class Balance { least_conn, round_robin, random, ring_hash, maglev };
// What ring_hash and maglev hash: the client address, a header field's value, or a cookie's.
enum class HashKeyKind { client_ip, header, cookie };
// What meridian speaks to a backend's endpoints: HTTP/1.1, HTTP/2 over TLS (ALPN h2), or
// HTTP/2 in cleartext with prior knowledge (h2c).
enum class UpstreamProtocol { http1, h2, h2c };
enum class SteeringPolicy { nearest, latency, geo, failover };
enum class RateLimitKey { client_ip, route, header };
enum class RateLimitScope { local, global };
enum class OnError { allow, deny };

struct Node {
  std::string name;                  // default: the host name (gethostname)
  std::optional<Location> location;  // absent: unknown clients get no geographic term
};

struct Admin {
  std::optional<SocketAddress> listen;  // default 127.0.0.1:9901; "" disables (nullopt)
  // Runtime overrides (POST /state) shared by the fleet through the rate_limit_store's Redis
  // (its defaults when the file has no rate_limit_store).
  bool shared_state_redis = false;
};

// `dns`: where endpoint names with `resolve` are looked up.
struct Dns {
  std::vector<std::string> servers;  // "ip:port" each; empty = the system's (/etc/resolv.conf)
};

struct GeoIp {
  std::string database;  // "" = no GeoIP; otherwise the file exists and is readable
};

struct ClientIp {
  std::vector<Cidr> trusted_proxies;
};

struct AccessLog {
  std::string path = "stdout";  // "stdout" | "stderr" | a file path | "off" (false = off)
  AccessLogFormat format = AccessLogFormat::json;
};

struct Limits {
  std::uint64_t max_request_header_bytes = 64 * 1024;
  std::uint32_t max_request_headers = 100;
  std::uint64_t max_request_body_bytes = 0;  // 0 = unlimited
  Duration header_timeout{10'000};
  Duration idle_timeout{60'000};
  std::uint64_t max_connections = 0;  // per node, 0 = unlimited
  // Client keys of scope-local rate limits held at once, node-wide, so a flood of client
  // addresses cannot exhaust memory; the least recently used is forgotten beyond it. At
  // most 40 bytes each.
  static constexpr std::uint64_t kMaxRateLimitKeys = 100'000'000;
  std::uint64_t max_rate_limit_keys = 1'000'000;
};

struct TlsCertificate {
  std::string cert;  // path, readable at load time
  std::string key;   // path, readable at load time
};

struct ListenerTls {
  std::vector<TlsCertificate> certificates;         // at least one; the first is the default
  std::string min_version = "1.2";                  // "1.2" | "1.3"
  std::vector<std::string> alpn{"h2", "http/1.1"};  // each "h2" or "http/1.1"
  // Session ticket key files (80 bytes each, nginx's layout); the first issues tickets, all
  // are accepted. Empty: the process's own keys, rotated hourly (tls::TicketKeys).
  std::vector<std::string> ticket_keys;
};

// match.headers / match.query: a header field or query parameter that must be present with
// exactly this value.
struct ExactMatch {
  std::string name;   // header names lower-cased; query names as written
  std::string value;  // compared byte for byte (a query value after percent-decoding)
};

struct RouteMatch {
  // Lower-cased. "" = any host; "*.example.com" is stored as host_suffix = ".example.com".
  std::string host;
  std::string host_suffix;
  std::optional<std::string> path_prefix;  // at most one of path_prefix / path
  std::optional<std::string> path;
  std::vector<std::string> methods;  // upper-case tokens; empty = any
  std::vector<ExactMatch> headers;   // all must match
  std::vector<ExactMatch> query;     // all must match
};

// routes[].redirect: meridian answers with a redirect instead of forwarding. Each part left
// "" keeps the request's own; the query is always kept.
struct Redirect {
  std::string scheme;   // "http" | "https" | ""
  std::string host;     // a host, with or without ":port", or ""
  std::string path;     // starts with '/', or ""
  unsigned code = 301;  // 301 | 302 | 307 | 308
};

// routes[].headers.request / .response: applied after meridian's own header rules, so they
// can replace or remove what meridian adds too (Via, X-Forwarded-*).
struct HeaderRules {
  std::vector<std::pair<std::string, std::string>> set;  // names lower-cased, each once
  std::vector<std::string> remove;                       // lower-cased
  bool empty() const { return set.empty() && remove.empty(); }
};

// One backend a route sends to, with its share of the route's clients.
struct RouteBackend {
  std::string name;          // names an existing backend
  std::uint32_t weight = 1;  // >= 1
  std::size_t index = 0;     // into Config::backends, set by the loader
};

struct RateLimit {
  Rate rate;
  std::uint64_t burst = 0;  // default: max(1, tokens per second rounded up)
  RateLimitKey key = RateLimitKey::client_ip;
  std::string header_name;  // for key: header:NAME, lower-cased
  RateLimitScope scope = RateLimitScope::local;
};

// routes[].retry (docs/http-behaviour.md, retries): what is retried, how soon, and how
// much of a backend's traffic retries may be.
struct RetryPolicy {
  bool on_connect = true;  // connect failure or connect timeout
  bool on_reset = true;    // the origin closed or reset before any response byte
  // Origin status codes that are retried (index = code, 400-599 accepted); none by default.
  std::bitset<600> on_status;
  Duration per_try_timeout{0};  // 0 = only the route's timeout bounds an attempt
  double budget = 0.2;          // [0, 1]: retries in flight / requests in flight, per backend
  Duration backoff{25};         // base of the jittered exponential backoff; 0 = none
  // The budget always allows this many retries in flight per backend (Envoy's minimum).
  static constexpr std::uint32_t kMinRetriesInFlight = 3;
};

// routes[].mirror: a copy of (a share of) the route's requests goes to another backend; its
// answers are discarded, and it never delays, fails or changes the original.
struct Mirror {
  std::string backend;    // names an existing backend
  std::size_t index = 0;  // into Config::backends, set by the loader
  double percent = 1.0;   // share of the requests mirrored, [0, 1]
};

struct Route {
  std::string name;
  RouteMatch match;
  // `backend: NAME` is one entry of weight 1; `backends` a weighted split, each client address
  // sent to the same one; empty exactly when the route redirects.
  std::vector<RouteBackend> backends;
  std::uint64_t total_weight = 0;  // sum of backends[].weight
  std::optional<Redirect> redirect;
  std::optional<Mirror> mirror;
  HeaderRules request_headers;
  HeaderRules response_headers;
  // Bounds `retries` so that the endpoints one request has tried fit a fixed set on the
  // exchange (balancing::TriedEndpoints); no deployment retries a request 16 times.
  static constexpr std::uint32_t kMaxRetries = 16;

  Duration timeout{30'000};
  std::uint32_t retries = 2;  // <= kMaxRetries
  RetryPolicy retry;
  std::optional<RateLimit> rate_limit;
};

struct Listener {
  std::string name;
  SocketAddress listen;
  ProxyProtocol proxy_protocol = ProxyProtocol::off;
  std::optional<ListenerTls> tls;
  std::vector<Route> routes;  // at least one
};

struct RateLimitStore {
  SocketAddress redis;  // default 127.0.0.1:6379
  Duration timeout{50};
  OnError on_error = OnError::allow;
};

struct GeoRule {
  std::vector<std::string> continents;  // upper-case two-letter codes: AF AN AS EU NA OC SA
  std::vector<std::string> countries;   // upper-case ISO 3166-1 alpha-2
  std::vector<std::string> regions;     // names of regions of this backend
  bool strict = false;
};

struct Steering {
  SteeringPolicy policy = SteeringPolicy::nearest;
  double geo_weight = 1.0;      // >= 0
  double latency_weight = 1.0;  // >= 0
  std::vector<GeoRule> rules;
};

struct Keepalive {
  std::uint32_t max_idle_per_endpoint = 64;
  Duration idle_timeout{60'000};
};

struct HealthCheck {
  std::string path = "/health";  // starts with '/'
  std::string host;              // "" = the endpoint's address
  Duration interval{2000};
  Duration timeout{1000};
  std::uint32_t healthy_threshold = 2;    // >= 1
  std::uint32_t unhealthy_threshold = 3;  // >= 1
  StatusRange expected_status;
};

struct OutlierDetection {
  std::uint32_t consecutive_failures = 5;  // >= 1
  Duration ejection_time{30'000};
};

struct Endpoint {
  SocketAddress address;
  std::uint32_t weight = 1;  // >= 1
  // `resolve: {every}`: the host name is looked up again on this period (and no later than
  // the records' TTL), every A/AAAA address becoming an endpoint. Absent: resolved once at
  // load, first address only. Never set for a literal IP address.
  std::optional<Duration> resolve_every;
};

struct Region {
  std::string name;
  std::optional<Location> location;  // required unless policy is latency or failover
  std::vector<Endpoint> endpoints;   // at least one
  // In-flight requests (node-wide) the region takes before new ones spill to the next
  // region; 0 = no cap.
  std::uint32_t capacity = 0;
  // Share of the region's own catchment it keeps, [0, 1]; the rest goes to the next region,
  // chosen per client address.
  double traffic_dial = 1.0;
};

// TLS to a backend's endpoints: `tls: true`, or a map of these.
struct UpstreamTls {
  bool verify = true;       // the endpoint's certificate must chain to `ca` and match the name
  std::string ca;           // PEM bundle; "" = the system's (/etc/ssl/certs)
  std::string server_name;  // SNI and the name verified; "" = each endpoint's host
};

// backends[].hash_key: client_ip | header:NAME | cookie:NAME. A request without the header
// or cookie is hashed by its client address.
struct HashKey {
  HashKeyKind kind = HashKeyKind::client_ip;
  std::string name;  // header names lower-cased; cookie names as written
};

// backends[].affinity: a cookie naming the endpoint that served the client, honoured while
// that endpoint is usable.
struct Affinity {
  std::string cookie;       // the cookie's name; never empty (an empty name is no affinity)
  Duration ttl{3'600'000};  // Max-Age; 0 = a session cookie
};

struct Backend {
  std::string name;
  UpstreamProtocol protocol = UpstreamProtocol::http1;
  Balance balance = Balance::least_conn;
  HashKey hash_key;  // for ring_hash and maglev
  std::optional<Affinity> affinity;
  Steering steering;
  Duration connect_timeout{2000};
  std::uint32_t max_connections_per_endpoint = 0;  // 0 = unlimited
  Keepalive keepalive;
  std::optional<HealthCheck> health_check;
  std::optional<OutlierDetection> outlier_detection;
  // A recovered endpoint's weight, and a recovered region's share of its catchment, ramp
  // from 10% to 100% over this long; 0 = at once.
  Duration slow_start{0};
  std::vector<Region> regions;     // at least one
  std::optional<UpstreamTls> tls;  // absent = plain HTTP to the endpoints
};

enum class TracePropagation { off, w3c };

// `tracing`: W3C Trace Context (traceparent, tracestate) propagation. No spans are exported;
// the trace and span ids are in the access log.
struct Tracing {
  TracePropagation propagate = TracePropagation::off;
};

struct Config {
  std::string source_path;  // the file it was loaded from ("" for an in-memory string)
  Node node;
  std::uint32_t workers = 0;  // 0 = one per CPU core (resolved by the server, not here)
  Duration drain_timeout{30'000};
  // First phase of a drain: /ready answers 503 while the listeners keep serving, so that an
  // anycast route (or an L4 balancer's pool membership) is withdrawn before anything is
  // refused. 0 = stop accepting at once.
  Duration drain_grace{0};
  bool debug_headers = false;
  Admin admin;
  GeoIp geoip;
  Dns dns;
  ClientIp client_ip;
  AccessLog access_log;
  Limits limits;
  std::vector<Listener> listeners;                 // at least one
  std::optional<RateLimitStore> rate_limit_store;  // required if any route uses scope: global
  std::vector<Backend> backends;                   // at least one
  Tracing tracing;
};

}  // namespace meridian::config
