// A config that sets every documented key loads into exactly the values written, and a
// minimal one gets the documented defaults (docs/configuration.md).
#include <unistd.h>

#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

using std::chrono::milliseconds;

// Every documented key, each set to something other than its default where one exists.
constexpr std::string_view kFull = R"(
node:
  name: edge-fra-1
  location: {lat: 50.11, lon: 8.68}
workers: 4
drain_timeout: 45s
drain_grace: 12s
debug_headers: true
admin:
  listen: 127.0.0.1:19901
  shared_state: redis
geoip:
  database: {GEOIP}
client_ip:
  trusted_proxies: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]
access_log:
  path: /var/log/meridian/access.log
  format: combined
limits:
  max_request_header_bytes: 32KiB
  max_request_headers: 50
  max_request_body_bytes: 16MiB
  header_timeout: 5s
  idle_timeout: 2m
  max_connections: 10000
  max_rate_limit_keys: 50000
listeners:
  - name: public
    listen: 0.0.0.0:18080
    proxy_protocol: v2
    routes:
      - name: api
        match:
          host: API.Example.com
          path_prefix: /v1/
          methods: [get, Post]
        backend: api
        timeout: 15s
        retries: 3
        rate_limit:
          rate: 150/m
          burst: 20
          key: header:X-Api-Key
          scope: global
      - name: static
        match:
          host: "*.Static.Example.com"
          path: /index.html
        backend: static
  - name: secure
    listen: "[::]:18443"
    proxy_protocol: false
    tls:
      certificates:
        - {cert: {CERT}, key: {KEY}}
        - cert: {CERT}
          key: {KEY}
      min_version: "1.3"
      alpn: [http/1.1]
    routes:
      - name: catch-all
        backend: api
        rate_limit:
          rate: 10/s
rate_limit_store:
  redis: 127.0.0.1:16379
  timeout: 75ms
  on_error: deny
backends:
  - name: static
    regions:
      - name: only
        endpoints:
          - address: 127.0.0.1:9100
    steering:
      policy: failover
  - name: api
    balance: round_robin
    steering:
      policy: geo
      geo_weight: 2.5
      latency_weight: 0
      rules:
        - match: {continent: eu}
          regions: [eu-west]
          strict: true
        - match: {country: [de, FR]}
          regions: [eu-west, us-east]
        - match: {continent: [NA, SA], country: ca}
          regions: us-east
    connect_timeout: 500ms
    max_connections_per_endpoint: 100
    keepalive:
      max_idle_per_endpoint: 8
      idle_timeout: 30s
    health_check:
      path: /healthz
      host: health.internal
      interval: 5s
      timeout: 750ms
      healthy_threshold: 3
      unhealthy_threshold: 4
      expected_status: "204"
    outlier_detection:
      consecutive_failures: 7
      ejection_time: 1m
    regions:
      - name: eu-west
        location: {lat: 53.35, lon: -6.26}
        endpoints:
          - address: 10.0.1.10:8080
            weight: 3
          - address: "[2001:db8::10]:8443"
      - name: us-east
        location: {lat: 39.04, lon: -77.49}
        endpoints:
          - address: localhost:8081
)";

class FullConfig : public ::testing::Test {
 protected:
  FullConfig()
      : cert_("-----BEGIN CERTIFICATE-----\n", ".crt"),
        key_("-----BEGIN PRIVATE KEY-----\n", ".key") {
    auto text = substitute(yaml(kFull), "GEOIP", geoip_test_database());
    text = substitute(text, "CERT", cert_.path());
    text = substitute(text, "KEY", key_.path());
    result_ = load_config_string(text, "full.yaml");
  }
  TempFile cert_;
  TempFile key_;
  LoadResult result_;
};

TEST_F(FullConfig, Loads) {
  ASSERT_TRUE(is_ok(result_));
  EXPECT_EQ(result_.config->source_path, "full.yaml");
}

TEST_F(FullConfig, TopLevel) {
  ASSERT_TRUE(is_ok(result_));
  const Config& c = *result_.config;
  EXPECT_EQ(c.node.name, "edge-fra-1");
  ASSERT_TRUE(c.node.location.has_value());
  EXPECT_DOUBLE_EQ(c.node.location->lat, 50.11);
  EXPECT_DOUBLE_EQ(c.node.location->lon, 8.68);
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.drain_timeout, milliseconds(45'000));
  EXPECT_EQ(c.drain_grace, milliseconds(12'000));
  EXPECT_TRUE(c.debug_headers);
  ASSERT_TRUE(c.admin.listen.has_value());
  EXPECT_EQ(c.admin.listen->text, "127.0.0.1:19901");
  EXPECT_TRUE(c.admin.shared_state_redis);
  EXPECT_EQ(c.admin.listen->resolved.address().to_string(), "127.0.0.1");
  EXPECT_EQ(c.admin.listen->resolved.port(), 19901);
  EXPECT_EQ(c.geoip.database, geoip_test_database());
}

TEST_F(FullConfig, ClientIpAccessLogLimits) {
  ASSERT_TRUE(is_ok(result_));
  const Config& c = *result_.config;
  ASSERT_EQ(c.client_ip.trusted_proxies.size(), 3u);
  EXPECT_EQ(c.client_ip.trusted_proxies[0].network.to_string(), "10.0.0.0");
  EXPECT_EQ(c.client_ip.trusted_proxies[0].prefix_length, 8u);
  EXPECT_EQ(c.client_ip.trusted_proxies[1].network.to_string(), "2001:db8::");
  EXPECT_EQ(c.client_ip.trusted_proxies[1].prefix_length, 32u);
  EXPECT_EQ(c.client_ip.trusted_proxies[2].network.to_string(), "192.168.1.7");
  EXPECT_EQ(c.client_ip.trusted_proxies[2].prefix_length, 32u);

  EXPECT_EQ(c.access_log.path, "/var/log/meridian/access.log");
  EXPECT_EQ(c.access_log.format, AccessLogFormat::combined);

  EXPECT_EQ(c.limits.max_request_header_bytes, 32u * 1024);
  EXPECT_EQ(c.limits.max_request_headers, 50u);
  EXPECT_EQ(c.limits.max_request_body_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(c.limits.header_timeout, milliseconds(5'000));
  EXPECT_EQ(c.limits.idle_timeout, milliseconds(120'000));
  EXPECT_EQ(c.limits.max_connections, 10'000u);
  EXPECT_EQ(c.limits.max_rate_limit_keys, 50'000u);
}

TEST_F(FullConfig, PlainListenerAndRoutes) {
  ASSERT_TRUE(is_ok(result_));
  const Config& c = *result_.config;
  ASSERT_EQ(c.listeners.size(), 2u);
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.name, "public");
  EXPECT_EQ(l.listen.text, "0.0.0.0:18080");
  EXPECT_EQ(l.listen.host, "0.0.0.0");
  EXPECT_EQ(l.listen.port, 18080);
  EXPECT_EQ(l.listen.resolved.address().to_string(), "0.0.0.0");
  EXPECT_EQ(l.proxy_protocol, ProxyProtocol::v2);
  EXPECT_FALSE(l.tls.has_value());
  ASSERT_EQ(l.routes.size(), 2u);

  const Route& api = l.routes[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.match.host, "api.example.com");
  EXPECT_EQ(api.match.host_suffix, "");
  EXPECT_EQ(api.match.path_prefix, "/v1/");
  EXPECT_FALSE(api.match.path.has_value());
  EXPECT_EQ(api.match.methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(api.backends[0].name, "api");
  EXPECT_EQ(api.backends[0].index, 1u);  // "api" is the second backend in the file
  EXPECT_EQ(api.timeout, milliseconds(15'000));
  EXPECT_EQ(api.retries, 3u);
  ASSERT_TRUE(api.rate_limit.has_value());
  EXPECT_EQ(api.rate_limit->rate.tokens, 150u);
  EXPECT_EQ(api.rate_limit->rate.per, milliseconds(60'000));
  EXPECT_DOUBLE_EQ(api.rate_limit->rate.per_second(), 2.5);
  EXPECT_EQ(api.rate_limit->burst, 20u);
  EXPECT_EQ(api.rate_limit->key, RateLimitKey::header);
  EXPECT_EQ(api.rate_limit->header_name, "x-api-key");
  EXPECT_EQ(api.rate_limit->scope, RateLimitScope::global);

  const Route& stat = l.routes[1];
  EXPECT_EQ(stat.match.host, "");
  EXPECT_EQ(stat.match.host_suffix, ".static.example.com");
  EXPECT_FALSE(stat.match.path_prefix.has_value());
  EXPECT_EQ(stat.match.path, "/index.html");
  EXPECT_TRUE(stat.match.methods.empty());
  EXPECT_EQ(stat.backends[0].index, 0u);
  EXPECT_EQ(stat.timeout, milliseconds(30'000));
  EXPECT_EQ(stat.retries, 2u);
  EXPECT_FALSE(stat.rate_limit.has_value());
}

TEST_F(FullConfig, TlsListener) {
  ASSERT_TRUE(is_ok(result_));
  const Listener& l = result_.config->listeners[1];
  EXPECT_EQ(l.name, "secure");
  EXPECT_EQ(l.listen.host, "::");
  EXPECT_EQ(l.listen.port, 18443);
  EXPECT_TRUE(l.listen.resolved.address().is_v6());
  EXPECT_EQ(l.proxy_protocol, ProxyProtocol::off);
  ASSERT_TRUE(l.tls.has_value());
  ASSERT_EQ(l.tls->certificates.size(), 2u);
  EXPECT_EQ(l.tls->certificates[0].cert, cert_.path());
  EXPECT_EQ(l.tls->certificates[0].key, key_.path());
  EXPECT_EQ(l.tls->certificates[1].cert, cert_.path());
  EXPECT_EQ(l.tls->min_version, "1.3");
  EXPECT_EQ(l.tls->alpn, (std::vector<std::string>{"http/1.1"}));
  ASSERT_EQ(l.routes.size(), 1u);
  const auto& limit = l.routes[0].rate_limit;
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->rate.tokens, 10u);
  EXPECT_EQ(limit->burst, 10u);
  EXPECT_EQ(limit->key, RateLimitKey::client_ip);
  EXPECT_EQ(limit->scope, RateLimitScope::local);
}

TEST_F(FullConfig, RateLimitStore) {
  ASSERT_TRUE(is_ok(result_));
  const auto& store = result_.config->rate_limit_store;
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ(store->redis.text, "127.0.0.1:16379");
  EXPECT_EQ(store->redis.resolved.port(), 16379);
  EXPECT_EQ(store->timeout, milliseconds(75));
  EXPECT_EQ(store->on_error, OnError::deny);
}

TEST_F(FullConfig, BackendSettings) {
  ASSERT_TRUE(is_ok(result_));
  const Config& c = *result_.config;
  ASSERT_EQ(c.backends.size(), 2u);
  EXPECT_EQ(c.backends[0].name, "static");
  EXPECT_EQ(c.backends[0].steering.policy, SteeringPolicy::failover);
  EXPECT_FALSE(c.backends[0].regions[0].location.has_value());

  const Backend& b = c.backends[1];
  EXPECT_EQ(b.name, "api");
  EXPECT_EQ(b.balance, Balance::round_robin);
  EXPECT_EQ(b.steering.policy, SteeringPolicy::geo);
  EXPECT_DOUBLE_EQ(b.steering.geo_weight, 2.5);
  EXPECT_DOUBLE_EQ(b.steering.latency_weight, 0.0);
  EXPECT_EQ(b.connect_timeout, milliseconds(500));
  EXPECT_EQ(b.max_connections_per_endpoint, 100u);
  EXPECT_EQ(b.keepalive.max_idle_per_endpoint, 8u);
  EXPECT_EQ(b.keepalive.idle_timeout, milliseconds(30'000));
  ASSERT_TRUE(b.health_check.has_value());
  EXPECT_EQ(b.health_check->path, "/healthz");
  EXPECT_EQ(b.health_check->host, "health.internal");
  EXPECT_EQ(b.health_check->interval, milliseconds(5'000));
  EXPECT_EQ(b.health_check->timeout, milliseconds(750));
  EXPECT_EQ(b.health_check->healthy_threshold, 3u);
  EXPECT_EQ(b.health_check->unhealthy_threshold, 4u);
  EXPECT_EQ(b.health_check->expected_status.low, 204);
  EXPECT_EQ(b.health_check->expected_status.high, 204);
  ASSERT_TRUE(b.outlier_detection.has_value());
  EXPECT_EQ(b.outlier_detection->consecutive_failures, 7u);
  EXPECT_EQ(b.outlier_detection->ejection_time, milliseconds(60'000));
}

TEST_F(FullConfig, SteeringRules) {
  ASSERT_TRUE(is_ok(result_));
  const auto& rules = result_.config->backends[1].steering.rules;
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].continents, (std::vector<std::string>{"EU"}));
  EXPECT_TRUE(rules[0].countries.empty());
  EXPECT_EQ(rules[0].regions, (std::vector<std::string>{"eu-west"}));
  EXPECT_TRUE(rules[0].strict);
  EXPECT_TRUE(rules[1].continents.empty());
  EXPECT_EQ(rules[1].countries, (std::vector<std::string>{"DE", "FR"}));
  EXPECT_EQ(rules[1].regions, (std::vector<std::string>{"eu-west", "us-east"}));
  EXPECT_FALSE(rules[1].strict);
  EXPECT_EQ(rules[2].continents, (std::vector<std::string>{"NA", "SA"}));
  EXPECT_EQ(rules[2].countries, (std::vector<std::string>{"CA"}));
  EXPECT_EQ(rules[2].regions, (std::vector<std::string>{"us-east"}));
}

TEST_F(FullConfig, RegionsAndEndpoints) {
  ASSERT_TRUE(is_ok(result_));
  const auto& regions = result_.config->backends[1].regions;
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].name, "eu-west");
  ASSERT_TRUE(regions[0].location.has_value());
  EXPECT_DOUBLE_EQ(regions[0].location->lat, 53.35);
  EXPECT_DOUBLE_EQ(regions[0].location->lon, -6.26);
  ASSERT_EQ(regions[0].endpoints.size(), 2u);
  const auto& e0 = regions[0].endpoints[0];
  EXPECT_EQ(e0.address.text, "10.0.1.10:8080");
  EXPECT_EQ(e0.address.host, "10.0.1.10");
  EXPECT_EQ(e0.address.port, 8080);
  EXPECT_EQ(e0.address.resolved.address().to_string(), "10.0.1.10");
  EXPECT_EQ(e0.address.resolved.port(), 8080);
  EXPECT_EQ(e0.weight, 3u);
  const auto& e1 = regions[0].endpoints[1];
  EXPECT_EQ(e1.address.host, "2001:db8::10");
  EXPECT_EQ(e1.address.resolved.address().to_string(), "2001:db8::10");
  EXPECT_EQ(e1.address.resolved.port(), 8443);
  EXPECT_EQ(e1.weight, 1u);
  // A host name is resolved at load time.
  const auto& e2 = regions[1].endpoints[0];
  EXPECT_EQ(e2.address.host, "localhost");
  EXPECT_TRUE(e2.address.resolved.address().is_loopback())
      << e2.address.resolved.address().to_string();
  EXPECT_EQ(e2.address.resolved.port(), 8081);
}

constexpr std::string_view kMinimal = R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: all
        backend: api
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        endpoints:
          - address: 127.0.0.1:9000
)";

TEST(Defaults, TopLevel) {
  auto result = load(kMinimal);
  ASSERT_TRUE(is_ok(result));
  const Config& c = *result.config;
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(c.node.name, host);
  EXPECT_FALSE(c.node.location.has_value());
  EXPECT_EQ(c.workers, 0u);
  EXPECT_EQ(c.drain_timeout, milliseconds(30'000));
  EXPECT_EQ(c.drain_grace, milliseconds(0));
  EXPECT_FALSE(c.admin.shared_state_redis);
  EXPECT_FALSE(c.debug_headers);
  ASSERT_TRUE(c.admin.listen.has_value());
  EXPECT_EQ(c.admin.listen->text, "127.0.0.1:9901");
  EXPECT_EQ(c.admin.listen->resolved.address().to_string(), "127.0.0.1");
  EXPECT_EQ(c.admin.listen->resolved.port(), 9901);
  EXPECT_EQ(c.geoip.database, "");
  EXPECT_TRUE(c.client_ip.trusted_proxies.empty());
  EXPECT_EQ(c.access_log.path, "stdout");
  EXPECT_EQ(c.access_log.format, AccessLogFormat::json);
  EXPECT_EQ(c.limits.max_request_header_bytes, 64u * 1024);
  EXPECT_EQ(c.limits.max_request_headers, 100u);
  EXPECT_EQ(c.limits.max_request_body_bytes, 0u);
  EXPECT_EQ(c.limits.header_timeout, milliseconds(10'000));
  EXPECT_EQ(c.limits.idle_timeout, milliseconds(60'000));
  EXPECT_EQ(c.limits.max_connections, 0u);
  EXPECT_EQ(c.limits.max_rate_limit_keys, 1'000'000u);
  EXPECT_FALSE(c.rate_limit_store.has_value());
}

TEST(Defaults, ListenerRouteBackend) {
  auto result = load(kMinimal);
  ASSERT_TRUE(is_ok(result));
  const Listener& l = result.config->listeners.at(0);
  EXPECT_EQ(l.proxy_protocol, ProxyProtocol::off);
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_EQ(l.listen.port, 0);
  const Route& r = l.routes.at(0);
  EXPECT_EQ(r.match.host, "");
  EXPECT_EQ(r.match.host_suffix, "");
  EXPECT_FALSE(r.match.path_prefix.has_value());
  EXPECT_FALSE(r.match.path.has_value());
  EXPECT_TRUE(r.match.methods.empty());
  EXPECT_EQ(r.backends[0].index, 0u);
  EXPECT_EQ(r.timeout, milliseconds(30'000));
  EXPECT_EQ(r.retries, 2u);
  EXPECT_FALSE(r.rate_limit.has_value());

  const Backend& b = result.config->backends.at(0);
  EXPECT_EQ(b.balance, Balance::least_conn);
  EXPECT_EQ(b.steering.policy, SteeringPolicy::nearest);
  EXPECT_DOUBLE_EQ(b.steering.geo_weight, 1.0);
  EXPECT_DOUBLE_EQ(b.steering.latency_weight, 1.0);
  EXPECT_TRUE(b.steering.rules.empty());
  EXPECT_EQ(b.connect_timeout, milliseconds(2'000));
  EXPECT_EQ(b.max_connections_per_endpoint, 0u);
  EXPECT_EQ(b.keepalive.max_idle_per_endpoint, 64u);
  EXPECT_EQ(b.keepalive.idle_timeout, milliseconds(60'000));
  EXPECT_FALSE(b.health_check.has_value());
  EXPECT_FALSE(b.outlier_detection.has_value());
  EXPECT_EQ(b.regions.at(0).endpoints.at(0).weight, 1u);
}

TEST(Defaults, EmptySectionsMeanAllDefaults) {
  // `health_check:` with nothing under it turns checks on with every default.
  auto result = load_with_listeners(R"(
rate_limit_store:
backends:
  - name: api
    health_check:
    outlier_detection: {}
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        endpoints:
          - address: 127.0.0.1:9000
)");
  ASSERT_TRUE(is_ok(result));
  const Config& c = *result.config;
  ASSERT_TRUE(c.rate_limit_store.has_value());
  EXPECT_EQ(c.rate_limit_store->redis.text, "127.0.0.1:6379");
  EXPECT_EQ(c.rate_limit_store->redis.resolved.address().to_string(), "127.0.0.1");
  EXPECT_EQ(c.rate_limit_store->redis.resolved.port(), 6379);
  EXPECT_EQ(c.rate_limit_store->timeout, milliseconds(50));
  EXPECT_EQ(c.rate_limit_store->on_error, OnError::allow);
  const auto& hc = c.backends.at(0).health_check;
  ASSERT_TRUE(hc.has_value());
  EXPECT_EQ(hc->path, "/health");
  EXPECT_EQ(hc->host, "");
  EXPECT_EQ(hc->interval, milliseconds(2'000));
  EXPECT_EQ(hc->timeout, milliseconds(1'000));
  EXPECT_EQ(hc->healthy_threshold, 2u);
  EXPECT_EQ(hc->unhealthy_threshold, 3u);
  EXPECT_EQ(hc->expected_status.low, 200);
  EXPECT_EQ(hc->expected_status.high, 399);
  const auto& od = c.backends.at(0).outlier_detection;
  ASSERT_TRUE(od.has_value());
  EXPECT_EQ(od->consecutive_failures, 5u);
  EXPECT_EQ(od->ejection_time, milliseconds(30'000));
}

TEST(Defaults, TlsDefaults) {
  TempFile cert("cert"), key("key");
  auto text = substitute(yaml(R"(
listeners:
  - name: tls
    listen: 127.0.0.1:0
    tls:
      certificates: [{cert: "{CERT}", key: "{KEY}"}]
    routes: [{name: all, backend: api}]
)"),
                         "CERT", cert.path());
  text = substitute(text, "KEY", key.path());
  auto result = load_config_string(text + std::string(kBackendsTail), kFile);
  ASSERT_TRUE(is_ok(result));
  const auto& tls = result.config->listeners.at(0).tls;
  ASSERT_TRUE(tls.has_value());
  EXPECT_EQ(tls->min_version, "1.2");
  EXPECT_EQ(tls->alpn, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(Defaults, LoadFromFile) {
  auto result = load_config_file(MERIDIAN_SOURCE_DIR "/tests/unit/config/data/minimal.yaml");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->source_path, MERIDIAN_SOURCE_DIR "/tests/unit/config/data/minimal.yaml");
  EXPECT_EQ(result.config->listeners.at(0).name, "public");
  EXPECT_EQ(result.config->backends.at(0).regions.at(0).endpoints.at(0).address.port, 9000);
}

}  // namespace
}  // namespace meridian::config::test
