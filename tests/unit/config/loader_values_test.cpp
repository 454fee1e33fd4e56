// Value syntaxes (docs/configuration.md) as the loader reports them: durations, sizes, rates,
// addresses, enumerations, and `false` standing for `off`.
#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

using std::chrono::milliseconds;

TEST(Durations, AllUnits) {
  auto result = load_with_both(R"(
drain_timeout: 250ms
limits: {header_timeout: 2s, idle_timeout: 5m}
rate_limit_store: {timeout: 1h}
)");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->drain_timeout, milliseconds(250));
  EXPECT_EQ(result.config->limits.header_timeout, milliseconds(2'000));
  EXPECT_EQ(result.config->limits.idle_timeout, milliseconds(300'000));
  EXPECT_EQ(result.config->rate_limit_store->timeout, milliseconds(3'600'000));
}

TEST(Durations, DrainTimeoutMayBeZero) {
  auto result = load_with_both("drain_timeout: 0s\n");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->drain_timeout, milliseconds(0));
}

TEST(Durations, Malformed) {
  auto result = load_with_both(R"(
drain_timeout: 30
limits:
  header_timeout: 1.5s
  idle_timeout: 1d
rate_limit_store:
  timeout: -5ms
)");
  EXPECT_TRUE(has_error(result, "drain_timeout", 1, 16,
                        "expected a duration like 250ms, 2s, 5m or 1h, got \"30\""));
  EXPECT_TRUE(has_error(result, "limits.header_timeout", 3, 19, "got \"1.5s\""));
  EXPECT_TRUE(has_error(result, "limits.idle_timeout", 4, 17, "got \"1d\""));
  EXPECT_TRUE(has_error(result, "rate_limit_store.timeout", 6, 12, "got \"-5ms\""));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(Durations, Overflow) {
  auto result = load_with_both("drain_timeout: 9999999999999999999h\n");
  EXPECT_TRUE(has_only_error(result, "drain_timeout", 1, 16,
                             "duration \"9999999999999999999h\" is too large"));
}

TEST(Durations, ZeroWhereAWaitIsNeeded) {
  auto result = load(R"(
limits:
  header_timeout: 0s
  idle_timeout: 0ms
rate_limit_store:
  timeout: 0s
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes: [{name: all, backend: api, timeout: 0s}]
backends:
  - name: api
    connect_timeout: 0s
    keepalive: {idle_timeout: 0s}
    health_check: {interval: 0s, timeout: 0s}
    outlier_detection: {ejection_time: 0s}
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  const char* zero = "must be greater than zero";
  EXPECT_TRUE(has_error(result, "limits.header_timeout", 2, 19, zero));
  EXPECT_TRUE(has_error(result, "limits.idle_timeout", 3, 17, zero));
  EXPECT_TRUE(has_error(result, "rate_limit_store.timeout", 5, 12, zero));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].timeout", 9, 49, zero));
  EXPECT_TRUE(has_error(result, "backends[0].connect_timeout", 12, 22, zero));
  EXPECT_TRUE(has_error(result, "backends[0].keepalive.idle_timeout", 13, 31, zero));
  EXPECT_TRUE(has_error(result, "backends[0].health_check.interval", 14, 30, zero));
  EXPECT_TRUE(has_error(result, "backends[0].health_check.timeout", 14, 43, zero));
  EXPECT_TRUE(has_error(result, "backends[0].outlier_detection.ejection_time", 15, 40, zero));
  EXPECT_EQ(result.errors.size(), 9u) << all_errors(result);
}

TEST(Sizes, AllUnits) {
  auto result = load_with_both(R"(
limits:
  max_request_header_bytes: 512
  max_request_body_bytes: 1GiB
)");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->limits.max_request_header_bytes, 512u);
  EXPECT_EQ(result.config->limits.max_request_body_bytes, 1024u * 1024 * 1024);
}

TEST(Sizes, MalformedOverflowAndZero) {
  auto result = load_with_both(R"(
limits:
  max_request_header_bytes: 0
  max_request_body_bytes: 64KB
---
)");
  EXPECT_TRUE(
      has_error(result, "limits.max_request_header_bytes", 2, 29, "must be at least 1, got \"0\""));
  EXPECT_TRUE(has_error(result, "limits.max_request_body_bytes", 3, 27,
                        "expected a size like 512, 64KiB, 16MiB or 1GiB, got \"64KB\""));

  auto overflow = load_with_both("limits: {max_request_body_bytes: 17179869184GiB}\n");
  EXPECT_TRUE(has_only_error(overflow, "limits.max_request_body_bytes", 1, 34,
                             "size \"17179869184GiB\" is too large"));
}

TEST(Rates, UnitsAndDefaultBurst) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, rate_limit: {rate: 100/s}}
      - {name: b, backend: api, rate_limit: {rate: 10/m}}
      - {name: c, backend: api, rate_limit: {rate: 150/m}}
      - {name: d, backend: api, rate_limit: {rate: 7200/h}}
      - {name: e, backend: api, rate_limit: {rate: 1/h, burst: 50}}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& routes = result.config->listeners.at(0).routes;
  ASSERT_EQ(routes.size(), 5u);
  EXPECT_EQ(routes[0].rate_limit->rate.tokens, 100u);
  EXPECT_EQ(routes[0].rate_limit->rate.per, milliseconds(1'000));
  EXPECT_EQ(routes[0].rate_limit->burst, 100u);
  EXPECT_EQ(routes[1].rate_limit->rate.per, milliseconds(60'000));
  EXPECT_EQ(routes[1].rate_limit->burst, 1u);  // 0.17/s rounds up to 1
  EXPECT_EQ(routes[2].rate_limit->burst, 3u);  // 2.5/s rounds up to 3
  EXPECT_EQ(routes[3].rate_limit->rate.per, milliseconds(3'600'000));
  EXPECT_EQ(routes[3].rate_limit->burst, 2u);  // exactly 2/s
  EXPECT_EQ(routes[4].rate_limit->burst, 50u);
}

TEST(Rates, MalformedAndZero) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, rate_limit: {rate: 100/d}}
      - {name: b, backend: api, rate_limit: {rate: 0/s}}
      - {name: c, backend: api, rate_limit: {rate: 100}}
      - {name: d, backend: api, rate_limit: {rate: 5/s, burst: 0}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].rate_limit.rate", 5, 52,
                        "expected a rate like 100/s, 10/m or 5/h, got \"100/d\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].rate_limit.rate", 6, 52,
                        "rate must be greater than zero, got \"0/s\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].rate_limit.rate", 7, 52,
                        "expected a rate like 100/s"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[3].rate_limit.burst", 8, 64,
                        "must be at least 1, got 0"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(Addresses, SpecExample) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 1, lon: 1}
        endpoints: [{address: "127.0.0.1:1"}]
      - name: us
        location: {lat: 1, lon: 1}
        endpoints:
          - address: 10.0.0.1
)");
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_EQ(result.errors[0].to_string(),
            "test.yaml:10:22: backends[0].regions[1].endpoints[0].address: expected host:port, "
            "got \"10.0.0.1\"");
}

TEST(Addresses, BadEndpointAddresses) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 1, lon: 1}
        endpoints:
          - address: 10.0.0.1:0
          - address: 10.0.0.1:65536
          - address: ::1:80
          - address: "[1.2.3.4]:80"
          - address: "[fe80::zz]:80"
          - address: 10.1:80
          - address: no-such-host.invalid:80
          - address: "host name:80"
          - address: 10.0.0.1:http
)");
  const std::string e = "backends[0].regions[0].endpoints";
  EXPECT_TRUE(has_error(result, e + "[0].address", 7, 22,
                        "port must be between 1 and 65535, got \"10.0.0.1:0\""));
  EXPECT_TRUE(has_error(result, e + "[1].address", 8, 22,
                        "port must be between 1 and 65535, got \"10.0.0.1:65536\""));
  EXPECT_TRUE(has_error(result, e + "[2].address", 9, 22, "expected host:port, got \"::1:80\""));
  EXPECT_TRUE(has_error(result, e + "[3].address", 10, 22,
                        "expected an IPv6 address inside brackets, got \"1.2.3.4\""));
  EXPECT_TRUE(has_error(result, e + "[4].address", 11, 22, "invalid IPv6 address \"fe80::zz\""));
  EXPECT_TRUE(has_error(result, e + "[5].address", 12, 22, "invalid IPv4 address \"10.1\""));
  EXPECT_TRUE(
      has_error(result, e + "[6].address", 13, 22, "cannot resolve \"no-such-host.invalid\""));
  EXPECT_TRUE(
      has_error(result, e + "[7].address", 14, 22, "expected host:port, got \"host name:80\""));
  EXPECT_TRUE(
      has_error(result, e + "[8].address", 15, 22, "expected host:port, got \"10.0.0.1:http\""));
  EXPECT_EQ(result.errors.size(), 9u) << all_errors(result);
}

TEST(Addresses, ListenersMayUsePortZeroAndWildcards) {
  auto result = load_with_backends(R"(
listeners:
  - {name: a, listen: "0.0.0.0:18080", routes: [{name: r, backend: api}]}
  - {name: b, listen: "[::]:18080", routes: [{name: r, backend: api}]}
  - {name: c, listen: "127.0.0.1:0", routes: [{name: r, backend: api}]}
  - {name: d, listen: "[::1]:0", routes: [{name: r, backend: api}]}
  - {name: e, listen: "localhost:18081", routes: [{name: r, backend: api}]}
admin:
  listen: 127.0.0.1:0
)");
  ASSERT_TRUE(is_ok(result));
  const auto& l = result.config->listeners;
  EXPECT_EQ(l[0].listen.resolved.address().to_string(), "0.0.0.0");
  EXPECT_EQ(l[0].listen.resolved.port(), 18080);
  EXPECT_EQ(l[1].listen.resolved.address().to_string(), "::");
  EXPECT_EQ(l[2].listen.resolved.port(), 0);
  EXPECT_EQ(l[3].listen.host, "::1");
  EXPECT_EQ(l[3].listen.resolved.address().to_string(), "::1");
  EXPECT_TRUE(l[4].listen.resolved.address().is_loopback());
  EXPECT_EQ(result.config->admin.listen->resolved.port(), 0);
}

TEST(Addresses, RedisAndAdmin) {
  auto result = load_with_both(R"(
admin:
  listen: 127.0.0.1
rate_limit_store:
  redis: redis.invalid:6379
)");
  EXPECT_TRUE(has_error(result, "admin.listen", 2, 11, "expected host:port, got \"127.0.0.1\""));
  EXPECT_TRUE(
      has_error(result, "rate_limit_store.redis", 4, 10, "cannot resolve \"redis.invalid\""));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);

  auto zero = load_with_both("rate_limit_store: {redis: \"127.0.0.1:0\"}\n");
  EXPECT_TRUE(has_only_error(zero, "rate_limit_store.redis", 1, 27, "port must be between 1"));
}

TEST(Addresses, EmptyAdminListenDisablesAdmin) {
  auto result = load_with_both("admin:\n  listen: \"\"\n");
  ASSERT_TRUE(is_ok(result));
  EXPECT_FALSE(result.config->admin.listen.has_value());
}

TEST(Enums, EveryEnumerationIsChecked) {
  auto result = load(R"(
access_log: {format: xml}
rate_limit_store: {on_error: ignore}
listeners:
  - name: public
    listen: 127.0.0.1:0
    proxy_protocol: v3
    tls: {min_version: "1.1", alpn: [h3], certificates: []}
    routes:
      - name: all
        backend: api
        rate_limit: {rate: 1/s, key: cookie, scope: region}
backends:
  - name: api
    balance: leastconn
    steering: {policy: closest}
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(
      has_error(result, "access_log.format", 1, 22, "expected json or combined, got \"xml\""));
  EXPECT_TRUE(has_error(result, "rate_limit_store.on_error", 2, 30,
                        "expected allow or deny, got \"ignore\""));
  EXPECT_TRUE(has_error(result, "listeners[0].proxy_protocol", 6, 21,
                        "expected off, v1, v2 or any, got \"v3\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].tls.min_version", 7, 24, "expected 1.2 or 1.3, got \"1.1\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].tls.alpn[0]", 7, 38, "expected h2 or http/1.1, got \"h3\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].rate_limit.key", 11, 38,
                        "expected client_ip, route or header:NAME, got \"cookie\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].rate_limit.scope", 11, 53,
                        "expected local or global, got \"region\""));
  EXPECT_TRUE(has_error(result, "backends[0].balance", 14, 14,
                        "expected least_conn, round_robin, random, ring_hash or maglev, got "
                        "\"leastconn\" (did you mean \"least_conn\"?)"));
  EXPECT_TRUE(has_error(result, "backends[0].steering.policy", 15, 24,
                        "expected nearest, latency, geo or failover, got \"closest\""));
}

TEST(Enums, AllValuesAccepted) {
  for (auto [value, expected] : {std::pair{"off", ProxyProtocol::off},
                                 {"v1", ProxyProtocol::v1},
                                 {"v2", ProxyProtocol::v2},
                                 {"any", ProxyProtocol::any}}) {
    auto result = load_with_backends(
        "listeners: [{name: l, listen: \"127.0.0.1:0\", proxy_protocol: " + std::string(value) +
        ", routes: [{name: r, backend: api}]}]\n");
    ASSERT_TRUE(is_ok(result)) << value;
    EXPECT_EQ(result.config->listeners[0].proxy_protocol, expected) << value;
  }
  for (auto [value, expected] : {std::pair{"least_conn", Balance::least_conn},
                                 {"round_robin", Balance::round_robin},
                                 {"random", Balance::random}}) {
    auto result = load_with_listeners("backends: [{name: api, balance: " + std::string(value) +
                                      ", regions: [{name: r, location: {lat: 0, lon: 0}, "
                                      "endpoints: [{address: \"127.0.0.1:1\"}]}]}]\n");
    ASSERT_TRUE(is_ok(result)) << value;
    EXPECT_EQ(result.config->backends[0].balance, expected) << value;
  }
  for (auto [value, expected] : {std::pair{"nearest", SteeringPolicy::nearest},
                                 {"latency", SteeringPolicy::latency},
                                 {"geo", SteeringPolicy::geo},
                                 {"failover", SteeringPolicy::failover}}) {
    auto result =
        load_with_listeners("backends: [{name: api, steering: {policy: " + std::string(value) +
                            "}, regions: [{name: r, location: {lat: 0, lon: 0}, "
                            "endpoints: [{address: \"127.0.0.1:1\"}]}]}]\n");
    ASSERT_TRUE(is_ok(result)) << value;
    EXPECT_EQ(result.config->backends[0].steering.policy, expected) << value;
  }
}

TEST(Enums, RateLimitKeys) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, rate_limit: {rate: 1/s, key: route}}
      - {name: b, backend: api, rate_limit: {rate: 1/s, key: "header:X-Tenant-ID"}}
      - {name: c, backend: api, rate_limit: {rate: 1/s, key: client_ip}}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& routes = result.config->listeners.at(0).routes;
  EXPECT_EQ(routes[0].rate_limit->key, RateLimitKey::route);
  EXPECT_EQ(routes[1].rate_limit->key, RateLimitKey::header);
  EXPECT_EQ(routes[1].rate_limit->header_name, "x-tenant-id");
  EXPECT_EQ(routes[2].rate_limit->key, RateLimitKey::client_ip);
  EXPECT_EQ(routes[2].rate_limit->header_name, "");

  auto bad = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, rate_limit: {rate: 1/s, key: "header:"}}
      - {name: b, backend: api, rate_limit: {rate: 1/s, key: "header:X Y"}}
)");
  EXPECT_TRUE(has_error(bad, "listeners[0].routes[0].rate_limit.key", 5, 62,
                        "expected client_ip, route or header:NAME, got \"header:\""));
  EXPECT_TRUE(has_error(bad, "listeners[0].routes[1].rate_limit.key", 6, 62, "got \"header:X Y\""));
  EXPECT_EQ(bad.errors.size(), 2u) << all_errors(bad);
}

TEST(Off, FalseMeansOff) {
  auto result = load_with_backends(R"(
access_log:
  path: false
listeners:
  - name: public
    listen: 127.0.0.1:0
    proxy_protocol: false
    routes: [{name: all, backend: api}]
)");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->access_log.path, "off");
  EXPECT_EQ(result.config->listeners[0].proxy_protocol, ProxyProtocol::off);
}

TEST(Off, OffAndNamedStreams) {
  for (std::string_view path : {"off", "stdout", "stderr", "/tmp/access.log"}) {
    auto result = load_with_both("access_log: {path: " + std::string(path) + "}\n");
    ASSERT_TRUE(is_ok(result)) << path;
    EXPECT_EQ(result.config->access_log.path, path);
  }
  // Quoted, "false" is a file name like any other.
  auto quoted_false = load_with_both("access_log: {path: \"false\"}\n");
  ASSERT_TRUE(is_ok(quoted_false));
  EXPECT_EQ(quoted_false.config->access_log.path, "false");
}

TEST(Off, TrueIsNotAValue) {
  auto result = load(R"(
access_log:
  path: true
listeners:
  - name: public
    listen: 127.0.0.1:0
    proxy_protocol: true
    routes: [{name: all, backend: api}]
backends:
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_error(result, "access_log.path", 2, 9,
                        "expected stdout, stderr, off or a file path, got \"true\""));
  EXPECT_TRUE(has_error(result, "listeners[0].proxy_protocol", 6, 21,
                        "expected off, v1, v2 or any, got \"true\""));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);

  auto empty = load_with_both("access_log: {path: \"\"}\n");
  EXPECT_TRUE(has_only_error(empty, "access_log.path", 1, 20, "must not be empty"));
}

}  // namespace
}  // namespace meridian::config::test
