// The configuration rules beyond value syntax: required keys, "at least one", unique names,
// references between sections, ranges, route matching, steering rules, and the files the
// config points at.
#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

TEST(Required, ListenerKeys) {
  auto result = load_with_backends(R"(
listeners:
  - proxy_protocol: v1
)");
  EXPECT_TRUE(has_error(result, "listeners[0].name", 2, 5, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].listen", 2, 5, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes", 2, 5, "required key is missing"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

TEST(Required, RouteKeys) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - timeout: 1s
      - name: limited
        backend: api
        rate_limit: {burst: 5}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].name", 5, 9, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backend", 5, 9, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].rate_limit.rate", 8, 21,
                        "required key is missing"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

TEST(Required, BackendRegionEndpointKeys) {
  auto result = load_with_listeners(R"(
backends:
  - balance: random
  - name: api
    regions:
      - location: {lat: 1, lon: 2}
      - name: eu
        location: {lat: 1, lon: 2}
        endpoints:
          - weight: 2
)");
  EXPECT_TRUE(has_error(result, "backends[0].name", 2, 5, "required key is missing"));
  EXPECT_TRUE(has_error(result, "backends[0].regions", 2, 5, "required key is missing"));
  EXPECT_TRUE(has_error(result, "backends[1].regions[0].name", 5, 9, "required key is missing"));
  EXPECT_TRUE(
      has_error(result, "backends[1].regions[0].endpoints", 5, 9, "required key is missing"));
  EXPECT_TRUE(has_error(result, "backends[1].regions[1].endpoints[0].address", 9, 13,
                        "required key is missing"));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);
}

TEST(Required, LocationKeys) {
  auto result = load_with_both(R"(
node:
  location: {lat: 50}
)");
  EXPECT_TRUE(has_only_error(result, "node.location.lon", 2, 13, "required key is missing"));
}

TEST(Required, RegionLocationDependsOnPolicy) {
  for (std::string_view policy : {"nearest", "geo"}) {
    auto result = load_with_listeners(R"(
backends:
  - name: api
    steering: {policy: )" + std::string(policy) +
                                      R"(}
    regions:
      - name: eu
        endpoints: [{address: "127.0.0.1:1"}]
)");
    EXPECT_TRUE(has_only_error(result, "backends[0].regions[0].location", 5, 9,
                               "required key is missing (steering policy " + std::string(policy) +
                                   " needs region locations)"))
        << policy;
  }
  for (std::string_view policy : {"latency", "failover"}) {
    auto result = load_with_listeners(R"(
backends:
  - name: api
    steering: {policy: )" + std::string(policy) +
                                      R"(}
    regions:
      - name: eu
        endpoints: [{address: "127.0.0.1:1"}]
)");
    EXPECT_TRUE(is_ok(result)) << policy;
  }
}

TEST(Required, DefaultPolicyNeedsLocationsAndBadPolicyAddsNoNoise) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    regions:
      - name: eu
        endpoints: [{address: "127.0.0.1:1"}]
  - name: other
    steering: {policy: nerest}
    regions:
      - name: eu
        endpoints: [{address: "127.0.0.1:1"}]
)");
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].location", 4, 9,
                        "steering policy nearest needs region locations"));
  EXPECT_TRUE(has_error(result, "backends[1].steering.policy", 7, 24,
                        "got \"nerest\" (did you mean \"nearest\"?)"));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
}

TEST(AtLeastOne, EverySequenceThatMustNotBeEmpty) {
  auto no_listeners = load_with_backends("listeners: []\n");
  EXPECT_TRUE(
      has_only_error(no_listeners, "listeners", 1, 12, "at least one listener is required"));

  auto null_listeners = load_with_backends("listeners:\n");
  EXPECT_TRUE(
      has_only_error(null_listeners, "listeners", 1, 1, "at least one listener is required"));

  auto no_backends = load_with_listeners("backends: []\n");
  // Routes naming a backend are not also reported when there are no backends at all.
  EXPECT_TRUE(has_only_error(no_backends, "backends", 1, 11, "at least one backend is required"));

  auto no_routes = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes: []
)");
  EXPECT_TRUE(
      has_only_error(no_routes, "listeners[0].routes", 4, 13, "at least one route is required"));

  auto no_regions = load_with_listeners(R"(
backends:
  - name: api
    regions: []
)");
  EXPECT_TRUE(
      has_only_error(no_regions, "backends[0].regions", 3, 14, "at least one region is required"));

  auto no_endpoints = load_with_listeners(R"(
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 1, lon: 1}
        endpoints: []
)");
  EXPECT_TRUE(has_only_error(no_endpoints, "backends[0].regions[0].endpoints", 6, 20,
                             "at least one endpoint is required"));
}

TEST(UniqueNames, Listeners) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes: [{name: all, backend: api}]
  - name: public
    listen: 127.0.0.1:0
    routes: [{name: all, backend: api}]
)");
  EXPECT_TRUE(has_only_error(result, "listeners[1].name", 5, 11,
                             "duplicate listener name \"public\" (first at line 2)"));
}

TEST(UniqueNames, RoutesWithinAListener) {
  auto result = load_with_backends(R"(
listeners:
  - name: a
    listen: 127.0.0.1:0
    routes:
      - {name: all, backend: api}
      - {name: all, backend: api}
  - name: b
    listen: 127.0.0.1:0
    routes:
      - {name: all, backend: api}
)");
  // The same route name in another listener is fine.
  EXPECT_TRUE(has_only_error(result, "listeners[0].routes[1].name", 6, 16,
                             "duplicate route name \"all\" (first at line 5)"));
}

TEST(UniqueNames, Backends) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_only_error(result, "backends[1].name", 4, 11,
                             "duplicate backend name \"api\" (first at line 2)"));
}

TEST(UniqueNames, RegionsWithinABackend) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    regions:
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:2"}]}
  - name: other
    regions:
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
)");
  EXPECT_TRUE(has_only_error(result, "backends[0].regions[1].name", 5, 16,
                             "duplicate region name \"eu\" (first at line 4)"));
}

TEST(UniqueNames, NamesMustBePrintable) {
  auto result = load_with_both(R"(
node: {name: "edge 1"}
backends:
  - name: ""
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_error(result, "node.name", 1, 14,
                        "must not contain spaces or control characters, got \"edge 1\""));
  EXPECT_TRUE(has_error(result, "backends[0].name", 3, 11, "must not be empty"));
}

TEST(References, RouteToMissingBackend) {
  auto result = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: apii}
      - {name: b, backend: billing}
backends:
  - name: api
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backend", 5, 28,
                        "backend \"apii\" does not exist (did you mean \"api\"?)"));
  ASSERT_TRUE(has_error(result, "listeners[0].routes[1].backend", 6, 28,
                        "backend \"billing\" does not exist"));
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_EQ(result.errors[1].message, "backend \"billing\" does not exist");
}

TEST(References, BackendIndexFollowsFileOrder) {
  auto result = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: c}
      - {name: b, backend: a}
      - {name: c, backend: b}
backends:
  - {name: a, regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]}
  - {name: b, regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]}
  - {name: c, regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& routes = result.config->listeners[0].routes;
  EXPECT_EQ(routes[0].backends[0].index, 2u);
  EXPECT_EQ(routes[1].backends[0].index, 0u);
  EXPECT_EQ(routes[2].backends[0].index, 1u);
}

TEST(References, GlobalScopeNeedsAStore) {
  constexpr std::string_view kListeners = R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: all
        backend: api
        rate_limit:
          rate: 10/s
          scope: global
)";
  auto without = load_with_backends(kListeners);
  EXPECT_TRUE(has_only_error(without, "listeners[0].routes[0].rate_limit.scope", 9, 18,
                             "scope global needs a rate_limit_store section"));

  auto with = load_with_backends(std::string(yaml(kListeners)) + "rate_limit_store: {}\n");
  ASSERT_TRUE(is_ok(with));
  EXPECT_EQ(with.config->listeners[0].routes[0].rate_limit->scope, RateLimitScope::global);
}

TEST(Ranges, LatitudeAndLongitude) {
  auto result = load_with_listeners(R"(
node:
  location: {lat: -90.5, lon: 180}
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 90, lon: -180.01}
        endpoints: [{address: "127.0.0.1:1"}]
      - name: us
        location: {lat: 91, lon: 181}
        endpoints: [{address: "127.0.0.1:1"}]
)");
  EXPECT_TRUE(has_error(result, "node.location.lat", 2, 19, "must be within [-90, 90], got -90.5"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].location.lon", 7, 34,
                        "must be within [-180, 180], got -180.01"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[1].location.lat", 10, 25,
                        "must be within [-90, 90], got 91"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[1].location.lon", 10, 34,
                        "must be within [-180, 180], got 181"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(Ranges, RetriesAtMostSixteen) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: ok, backend: api, retries: 16}
      - {name: many, backend: api, retries: 17}
)");
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[1].retries", 6, 45, "at most 16 retries, got 17"));
  EXPECT_EQ(result.errors.size(), 1u) << all_errors(result);
}

TEST(Ranges, WeightsThresholdsAndSteeringWeights) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    steering: {geo_weight: -0.5, latency_weight: -1}
    health_check: {healthy_threshold: 0, unhealthy_threshold: 0}
    outlier_detection: {consecutive_failures: 0}
    regions:
      - name: eu
        location: {lat: 1, lon: 1}
        endpoints: [{address: "127.0.0.1:1", weight: 0}]
)");
  EXPECT_TRUE(
      has_error(result, "backends[0].steering.geo_weight", 3, 28, "must be at least 0, got -0.5"));
  EXPECT_TRUE(has_error(result, "backends[0].steering.latency_weight", 3, 50,
                        "must be at least 0, got -1"));
  EXPECT_TRUE(has_error(result, "backends[0].health_check.healthy_threshold", 4, 39,
                        "must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, "backends[0].health_check.unhealthy_threshold", 4, 63,
                        "must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, "backends[0].outlier_detection.consecutive_failures", 5, 47,
                        "must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[0].weight", 9, 54,
                        "must be at least 1, got 0"));
  EXPECT_EQ(result.errors.size(), 6u) << all_errors(result);
}

TEST(HealthCheck, ExpectedStatus) {
  auto status_of = [](std::string_view value) {
    return load_with_listeners(R"(
backends:
  - name: api
    health_check: {expected_status: )" +
                               std::string(value) + R"(}
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  };
  for (auto [text, low, high] : {std::tuple{"200-399", 200, 399},
                                 {"200", 200, 200},
                                 {"\"204\"", 204, 204},
                                 {"100-599", 100, 599}}) {
    auto result = status_of(text);
    ASSERT_TRUE(is_ok(result)) << text;
    EXPECT_EQ(result.config->backends[0].health_check->expected_status.low, low) << text;
    EXPECT_EQ(result.config->backends[0].health_check->expected_status.high, high) << text;
  }
  for (std::string_view text : {"99", "600", "399-200", "200-", "2xx", "200-600", "-200"}) {
    auto result = status_of(text);
    EXPECT_TRUE(has_only_error(result, "backends[0].health_check.expected_status", 3, 37,
                               "expected a status like 200 or a range like 200-399 within "
                               "100-599, got \"" +
                                   std::string(text) + "\""))
        << text;
  }
}

TEST(HealthCheck, PathStartsWithSlash) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    health_check:
      path: health
    regions: [{name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)");
  EXPECT_TRUE(has_only_error(result, "backends[0].health_check.path", 4, 13,
                             "must start with '/', got \"health\""));
}

TEST(RouteMatch, HostsAreLowerCasedAndWildcardsBecomeSuffixes) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, match: {host: API.Example.COM}}
      - {name: b, backend: api, match: {host: "*.Example.com"}}
      - {name: c, backend: api, match: {host: "*"}}
      - {name: d, backend: api, match: {host: "[::1]"}}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& routes = result.config->listeners[0].routes;
  EXPECT_EQ(routes[0].match.host, "api.example.com");
  EXPECT_EQ(routes[0].match.host_suffix, "");
  EXPECT_EQ(routes[1].match.host, "");
  EXPECT_EQ(routes[1].match.host_suffix, ".example.com");
  EXPECT_EQ(routes[2].match.host, "");
  EXPECT_EQ(routes[2].match.host_suffix, "");
  EXPECT_EQ(routes[3].match.host, "[::1]");
}

TEST(RouteMatch, BadHosts) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, match: {host: "api.*.com"}}
      - {name: b, backend: api, match: {host: "api.example.com:8080"}}
      - {name: c, backend: api, match: {host: "api/v1"}}
      - {name: d, backend: api, match: {host: "*."}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.host", 5, 47,
                        "a wildcard is allowed only as a leading \"*.\", got \"api.*.com\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].match.host", 6, 47,
                        "must be a host without a port"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].match.host", 7, 47,
                        "expected a host name, \"*.domain\" or \"*\", got \"api/v1\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[3].match.host", 8, 47, "expected a host name"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(RouteMatch, Paths) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, match: {path_prefix: api}}
      - {name: b, backend: api, match: {path: index.html}}
      - {name: c, backend: api, match: {path_prefix: /api, path: /api/v1}}
      - {name: d, backend: api, match: {path: /a b}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.path_prefix", 5, 54,
                        "must start with '/', got \"api\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].match.path", 6, 47,
                        "must start with '/', got \"index.html\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].match.path", 7, 66,
                        "path_prefix and path are mutually exclusive"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[3].match.path", 8, 47,
                        "must not contain spaces or control characters"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(RouteMatch, Methods) {
  auto result = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, match: {methods: [get, Delete, PURGE]}}
      - {name: b, backend: api, match: {methods: post}}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& routes = result.config->listeners[0].routes;
  EXPECT_EQ(routes[0].match.methods, (std::vector<std::string>{"GET", "DELETE", "PURGE"}));
  EXPECT_EQ(routes[1].match.methods, (std::vector<std::string>{"POST"}));

  auto bad = load_with_backends(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, match: {methods: [GET, "BAD METHOD", get]}}
)");
  EXPECT_TRUE(has_error(bad, "listeners[0].routes[0].match.methods[1]", 5, 56,
                        "expected an HTTP method, got \"BAD METHOD\""));
  EXPECT_TRUE(
      has_error(bad, "listeners[0].routes[0].match.methods[2]", 5, 70, "duplicate method \"GET\""));
  EXPECT_EQ(bad.errors.size(), 2u) << all_errors(bad);
}

TEST(SteeringRules, Valid) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    steering:
      rules:
        - {match: {continent: eu}, regions: eu}
        - {match: {country: [de, at]}, regions: [eu, us], strict: true}
    regions:
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
      - {name: us, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
)");
  ASSERT_TRUE(is_ok(result));
  const auto& rules = result.config->backends[0].steering.rules;
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].continents, (std::vector<std::string>{"EU"}));
  EXPECT_EQ(rules[0].regions, (std::vector<std::string>{"eu"}));
  EXPECT_FALSE(rules[0].strict);
  EXPECT_EQ(rules[1].countries, (std::vector<std::string>{"DE", "AT"}));
  EXPECT_EQ(rules[1].regions, (std::vector<std::string>{"eu", "us"}));
  EXPECT_TRUE(rules[1].strict);
}

TEST(SteeringRules, AllContinentCodes) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    steering:
      rules: [{match: {continent: [AF, AN, AS, EU, NA, OC, SA]}, regions: [eu]}]
    regions:
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
)");
  ASSERT_TRUE(is_ok(result));
  EXPECT_EQ(result.config->backends[0].steering.rules[0].continents.size(), 7u);
}

TEST(SteeringRules, Invalid) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    steering:
      rules:
        - {match: {}, regions: [eu]}
        - {match: {continent: EUR}, regions: [eu]}
        - {match: {country: [DE, DEU, "1A"]}, regions: [eu]}
        - {match: {country: FR}, regions: [eu-west, eu]}
        - {match: {country: FR}, regions: []}
        - {regions: [eu]}
    regions:
      - {name: eu, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}
)");
  const std::string r = "backends[0].steering.rules";
  EXPECT_TRUE(
      has_error(result, r + "[0].match", 5, 19, "a rule must match a continent or a country"));
  EXPECT_TRUE(has_error(result, r + "[1].match.continent", 6, 31,
                        "expected a continent code (AF, AN, AS, EU, NA, OC or SA), got \"EUR\""));
  EXPECT_TRUE(has_error(result, r + "[2].match.country[1]", 7, 34,
                        "expected a two-letter ISO 3166-1 country code, got \"DEU\""));
  EXPECT_TRUE(has_error(result, r + "[2].match.country[2]", 7, 39, "got \"1A\""));
  EXPECT_TRUE(has_error(result, r + "[3].regions[0]", 8, 44,
                        "region \"eu-west\" is not a region of backend \"api\""));
  EXPECT_TRUE(has_error(result, r + "[4].regions", 9, 43, "at least one region is required"));
  EXPECT_TRUE(has_error(result, r + "[5].match", 10, 11, "required key is missing"));
  EXPECT_EQ(result.errors.size(), 7u) << all_errors(result);
}

TEST(Files, GeoIpDatabase) {
  auto ok = load_with_both("geoip: {database: \"" + geoip_test_database() + "\"}\n");
  ASSERT_TRUE(is_ok(ok));
  EXPECT_EQ(ok.config->geoip.database, geoip_test_database());

  auto missing = load_with_both("geoip:\n  database: /nonexistent/GeoLite2-City.mmdb\n");
  EXPECT_TRUE(has_only_error(
      missing, "geoip.database", 2, 13,
      "cannot read GeoIP database \"/nonexistent/GeoLite2-City.mmdb\": No such file or directory"));

  auto directory = load_with_both("geoip: {database: /tmp}\n");
  EXPECT_TRUE(has_only_error(directory, "geoip.database", 1, 19, "Is a directory"));

  auto none = load_with_both("geoip: {database: \"\"}\n");
  ASSERT_TRUE(is_ok(none));
  EXPECT_EQ(none.config->geoip.database, "");
}

TEST(Files, TlsCertificatesMustBeReadable) {
  TempFile cert("cert", ".crt");
  auto text = substitute(yaml(R"(
listeners:
  - name: tls
    listen: 127.0.0.1:0
    tls:
      certificates:
        - {key: /nonexistent/server.key, cert: "{CERT}"}
        - {cert: /nonexistent/server.crt}
    routes: [{name: all, backend: api}]
)"),
                         "CERT", cert.path());
  auto result = load_config_string(text + std::string(kBackendsTail), kFile);
  EXPECT_TRUE(has_error(result, "listeners[0].tls.certificates[0].key", 6, 17,
                        "cannot read key file \"/nonexistent/server.key\": No such file or "
                        "directory"));
  EXPECT_TRUE(has_error(result, "listeners[0].tls.certificates[1].cert", 7, 18,
                        "cannot read certificate file \"/nonexistent/server.crt\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].tls.certificates[1].key", 7, 11, "required key is missing"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

TEST(Files, TlsNeedsACertificate) {
  auto result = load_with_backends(R"(
listeners:
  - name: tls
    listen: 127.0.0.1:0
    tls: {min_version: "1.3"}
    routes: [{name: all, backend: api}]
)");
  EXPECT_TRUE(
      has_only_error(result, "listeners[0].tls.certificates", 4, 10, "required key is missing"));
}

TEST(Tls, AlpnEntries) {
  TempFile cert("c"), key("k");
  auto make = [&](std::string_view alpn) {
    auto text = substitute(yaml(R"(
listeners:
  - name: tls
    listen: 127.0.0.1:0
    tls: {certificates: [{cert: "{CERT}", key: "{KEY}"}], alpn: {ALPN}}
    routes: [{name: all, backend: api}]
)"),
                           "CERT", cert.path());
    text = substitute(substitute(text, "KEY", key.path()), "ALPN", alpn);
    return load_config_string(text + std::string(kBackendsTail), kFile);
  };
  auto both = make("[http/1.1, h2]");
  ASSERT_TRUE(is_ok(both));
  EXPECT_EQ(both.config->listeners[0].tls->alpn, (std::vector<std::string>{"http/1.1", "h2"}));

  auto empty = make("[]");
  ASSERT_EQ(empty.errors.size(), 1u) << all_errors(empty);
  EXPECT_EQ(empty.errors[0].key, "listeners[0].tls.alpn");
  EXPECT_EQ(empty.errors[0].message, "at least one protocol is required (h2, http/1.1)");

  auto duplicate = make("[h2, h2]");
  ASSERT_EQ(duplicate.errors.size(), 1u) << all_errors(duplicate);
  EXPECT_EQ(duplicate.errors[0].key, "listeners[0].tls.alpn[1]");
  EXPECT_EQ(duplicate.errors[0].message, "duplicate protocol \"h2\"");
}

TEST(Tls, TicketKeyFiles) {
  TempFile cert("c"), key("k");
  TempFile good(std::string(80, 'x')), good2(std::string(80, 'y')), short_key("0123456789");
  auto make = [&](std::string_view keys) {
    auto text = substitute(yaml(R"(
listeners:
  - name: tls
    listen: 127.0.0.1:0
    tls: {certificates: [{cert: "{CERT}", key: "{KEY}"}], ticket_keys: {KEYS}}
    routes: [{name: all, backend: api}]
)"),
                           "CERT", cert.path());
    text = substitute(substitute(text, "KEY", key.path()), "KEYS", keys);
    return load_config_string(text + std::string(kBackendsTail), kFile);
  };
  // One file, or a list whose first issues tickets.
  auto one = make("\"" + good.path() + "\"");
  ASSERT_TRUE(is_ok(one)) << all_errors(one);
  EXPECT_EQ(one.config->listeners[0].tls->ticket_keys, (std::vector<std::string>{good.path()}));
  auto two = make("[\"" + good2.path() + "\", \"" + good.path() + "\"]");
  ASSERT_TRUE(is_ok(two)) << all_errors(two);
  EXPECT_EQ(two.config->listeners[0].tls->ticket_keys,
            (std::vector<std::string>{good2.path(), good.path()}));

  auto wrong_size = make("[\"" + good.path() + "\", \"" + short_key.path() + "\"]");
  ASSERT_EQ(wrong_size.errors.size(), 1u) << all_errors(wrong_size);
  EXPECT_EQ(wrong_size.errors[0].key, "listeners[0].tls.ticket_keys[1]");
  EXPECT_EQ(wrong_size.errors[0].line, 4);  // the tls: line, where the list is
  EXPECT_EQ(wrong_size.errors[0].message,
            "ticket key file \"" + short_key.path() +
                "\" holds 10 bytes; a key is 80 random bytes (openssl rand 80 > " +
                short_key.path() + ")");

  auto missing = make("/nonexistent/ticket.key");
  ASSERT_EQ(missing.errors.size(), 1u) << all_errors(missing);
  EXPECT_EQ(missing.errors[0].key, "listeners[0].tls.ticket_keys");
  EXPECT_EQ(missing.errors[0].message,
            "cannot read ticket key file \"/nonexistent/ticket.key\": No such file or directory");

  auto empty = make("[]");
  ASSERT_EQ(empty.errors.size(), 1u) << all_errors(empty);
  EXPECT_EQ(empty.errors[0].key, "listeners[0].tls.ticket_keys");
  EXPECT_EQ(empty.errors[0].message,
            "at least one key file is required (leave ticket_keys out for keys of the process's "
            "own)");
}

TEST(TrustedProxies, ValidAndInvalidBlocks) {
  auto result = load_with_both(R"(
client_ip:
  trusted_proxies:
    - 10.0.0.0/8
    - 10.1.2.3/16
    - "::1"
    - "fd00::/8"
    - 0.0.0.0/0
    - 10.0.0.0/33
    - "::/129"
    - not-an-ip
    - 10.0.0.0/
    - "fe80::1%eth0/64"
)");
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies[5]", 8, 7,
                        "prefix length must be between 0 and 32, got \"10.0.0.0/33\""));
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies[6]", 9, 7,
                        "prefix length must be between 0 and 128, got \"::/129\""));
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies[7]", 10, 7,
                        "expected a CIDR block like 10.0.0.0/8 or 2001:db8::/32, got "
                        "\"not-an-ip\""));
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies[8]", 11, 7, "prefix length"));
  EXPECT_TRUE(has_error(result, "client_ip.trusted_proxies[9]", 12, 7, "expected a CIDR block"));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);

  auto good = load_with_both(R"(
client_ip:
  trusted_proxies: [10.1.2.3/16, "::1", "fd00::/8", 0.0.0.0/0]
)");
  ASSERT_TRUE(is_ok(good));
  const auto& blocks = good.config->client_ip.trusted_proxies;
  ASSERT_EQ(blocks.size(), 4u);
  // Host bits below the prefix are cleared.
  EXPECT_EQ(blocks[0].network.to_string(), "10.1.0.0");
  EXPECT_EQ(blocks[0].prefix_length, 16u);
  EXPECT_EQ(blocks[1].network.to_string(), "::1");
  EXPECT_EQ(blocks[1].prefix_length, 128u);
  EXPECT_EQ(blocks[2].prefix_length, 8u);
  EXPECT_EQ(blocks[3].prefix_length, 0u);
}

TEST(ListenAddresses, DuplicatesAndOverlaps) {
  auto result = load_with_backends(R"(
admin:
  listen: 127.0.0.1:18080
listeners:
  - {name: a, listen: "0.0.0.0:18080", routes: [{name: r, backend: api}]}
  - {name: b, listen: "0.0.0.0:18080", routes: [{name: r, backend: api}]}
  - {name: c, listen: "[::1]:18081", routes: [{name: r, backend: api}]}
  - {name: d, listen: "[::]:18081", routes: [{name: r, backend: api}]}
  - {name: e, listen: "127.0.0.1:0", routes: [{name: r, backend: api}]}
  - {name: f, listen: "127.0.0.1:0", routes: [{name: r, backend: api}]}
  - {name: g, listen: "[::]:18080", routes: [{name: r, backend: api}]}
)");
  // 0.0.0.0 covers the admin address on the same port; [::] covers [::1]. Port 0 never
  // collides, and an IPv6 wildcard is not counted against IPv4 addresses.
  EXPECT_TRUE(has_error(result, "listeners[0].listen", 4, 23,
                        "address \"0.0.0.0:18080\" is already used by admin (line 2)"));
  EXPECT_TRUE(has_error(result, "listeners[1].listen", 5, 23,
                        "address \"0.0.0.0:18080\" is already used by admin (line 2)"));
  EXPECT_TRUE(has_error(result, "listeners[3].listen", 7, 23,
                        "address \"[::]:18081\" is already used by listener \"c\" (line 6)"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

}  // namespace
}  // namespace meridian::config::test

namespace meridian::config::test {
namespace {

TEST(UpstreamTls, ShorthandAndMap) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    tls: true
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: 127.0.0.1:9}]}]
  - name: plain
    tls: false
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: 127.0.0.1:9}]}]
  - name: internal
    tls: {verify: false, server_name: api.internal}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: 127.0.0.1:9}]}]
)");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const auto& b = result.config->backends;
  ASSERT_TRUE(b[0].tls.has_value());
  EXPECT_TRUE(b[0].tls->verify);
  EXPECT_EQ(b[0].tls->ca, "");
  EXPECT_FALSE(b[1].tls.has_value());
  ASSERT_TRUE(b[2].tls.has_value());
  EXPECT_FALSE(b[2].tls->verify);
  EXPECT_EQ(b[2].tls->server_name, "api.internal");
}

TEST(UpstreamTls, BadValuesNamed) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    tls: {verify: maybe, ca: /nonexistent/ca.pem, sni: x}
    regions: [{name: r1, location: {lat: 0, lon: 0}, endpoints: [{address: 127.0.0.1:9}]}]
)");
  EXPECT_TRUE(has_error(result, "backends[0].tls.verify", 3, 19, "expected true or false"));
  EXPECT_TRUE(has_error(result, "backends[0].tls.ca", 3, 30, "cannot read CA file"));
  EXPECT_TRUE(has_error(result, "backends[0].tls.sni", 3, 51, "unknown key"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

}  // namespace
TEST(BackendProtocol, H2NeedsTlsAndH2cRefusesIt) {
  auto result = load_with_listeners(R"(
backends:
  - name: api
    protocol: h2
    regions:
      - {name: eu, location: {lat: 1, lon: 2}, endpoints: [{address: "127.0.0.1:1"}]}
  - name: grpc
    protocol: h2c
    tls: true
    regions:
      - {name: eu, location: {lat: 1, lon: 2}, endpoints: [{address: "127.0.0.1:1"}]}
  - name: web
    protocol: http2
    regions:
      - {name: eu, location: {lat: 1, lon: 2}, endpoints: [{address: "127.0.0.1:1"}]}
)");
  EXPECT_TRUE(has_error(result, "backends[0].protocol", 3, 15,
                        "protocol h2 is HTTP/2 over TLS: add `tls: true`"));
  EXPECT_TRUE(has_error(result, "backends[1].protocol", 7, 15, "protocol h2c is cleartext"));
  EXPECT_TRUE(has_error(result, "backends[2].protocol", 12, 15, "expected http1, h2 or h2c"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

}  // namespace meridian::config::test
