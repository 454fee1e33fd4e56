// Route keys beyond "one backend": match.headers and match.query, redirect, weighted backends,
// header rules, and the top-level tracing section; and the backend keys that pick an endpoint
// for a client (balance ring_hash / maglev with hash_key, affinity) -- what they load to, and
// the errors (with file, line and column) for what they must refuse.
#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

// Two backends, "api" and "api-v2", after the part under test.
std::string with_two_backends(std::string_view text) {
  return yaml(text) + R"(backends:
  - {name: api, regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]}
  - {name: api-v2, regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:2"}]}]}
)";
}

LoadResult load_routes(std::string_view text) {
  return load_config_string(with_two_backends(text), kFile);
}

TEST(RouteActions, LoadsEveryNewKey) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: canary
        match: {headers: {X-Canary: "1"}, query: {debug: "on air"}}
        backends: [{name: api, weight: 95}, {name: api-v2, weight: 5}]
        headers:
          request: {set: {X-Env: prod}, remove: [X-Debug, via]}
          response: {set: {strict-transport-security: "max-age=1"}, remove: server}
      - name: to-https
        redirect: {scheme: https, code: 308}
      - name: moved
        redirect: {host: "new.example.com:8443", path: /landing}
      - name: plain
        backend: api-v2
tracing: {propagate: w3c}
)");
  ASSERT_TRUE(is_ok(result)) << all_errors(result);
  const auto& routes = result.config->listeners[0].routes;
  const auto& canary = routes[0];
  ASSERT_EQ(canary.match.headers.size(), 1u);
  EXPECT_EQ(canary.match.headers[0].name, "x-canary");  // lower-cased
  EXPECT_EQ(canary.match.headers[0].value, "1");
  ASSERT_EQ(canary.match.query.size(), 1u);
  EXPECT_EQ(canary.match.query[0].name, "debug");
  EXPECT_EQ(canary.match.query[0].value, "on air");
  ASSERT_EQ(canary.backends.size(), 2u);
  EXPECT_EQ(canary.backends[1].name, "api-v2");
  EXPECT_EQ(canary.backends[1].index, 1u);
  EXPECT_EQ(canary.backends[1].weight, 5u);
  EXPECT_EQ(canary.total_weight, 100u);
  EXPECT_FALSE(canary.redirect);
  ASSERT_EQ(canary.request_headers.set.size(), 1u);
  EXPECT_EQ(canary.request_headers.set[0].first, "x-env");
  EXPECT_EQ(canary.request_headers.remove, (std::vector<std::string>{"x-debug", "via"}));
  EXPECT_EQ(canary.response_headers.remove, (std::vector<std::string>{"server"}));

  ASSERT_TRUE(routes[1].redirect);
  EXPECT_TRUE(routes[1].backends.empty());
  EXPECT_EQ(routes[1].redirect->scheme, "https");
  EXPECT_EQ(routes[1].redirect->host, "");
  EXPECT_EQ(routes[1].redirect->code, 308u);
  ASSERT_TRUE(routes[2].redirect);
  EXPECT_EQ(routes[2].redirect->host, "new.example.com:8443");
  EXPECT_EQ(routes[2].redirect->path, "/landing");
  EXPECT_EQ(routes[2].redirect->code, 301u);  // the default
  ASSERT_EQ(routes[3].backends.size(), 1u);
  EXPECT_EQ(routes[3].backends[0].index, 1u);
  EXPECT_EQ(routes[3].total_weight, 1u);
  EXPECT_EQ(result.config->tracing.propagate, TracePropagation::w3c);
}

TEST(RouteActions, TracingIsOffByDefault) {
  auto result = load_routes(R"(
listeners:
  - {name: public, listen: 127.0.0.1:0, routes: [{name: a, backend: api}]}
)");
  ASSERT_TRUE(is_ok(result)) << all_errors(result);
  EXPECT_EQ(result.config->tracing.propagate, TracePropagation::off);
}

TEST(RouteActions, ExactlyOneOfBackendBackendsRedirect) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: both
        backend: api
        redirect: {scheme: https}
      - name: none
        timeout: 1s
      - name: three
        backends: [{name: api}]
        backend: api
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].redirect", 7, 19,
                        "redirect cannot be combined with backend"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].backend", 8, 9, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].backend", 12, 18,
                        "backend cannot be combined with backends"));
  EXPECT_EQ(result.errors.size(), 3u) << all_errors(result);
}

TEST(RouteActions, SplitWeightsAndReferences) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: split
        backends:
          - {name: api, weight: 0}
          - {name: apiv2, weight: 5}
          - {name: api, weight: 1}
          - {weight: 1}
      - name: empty
        backends: []
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backends[0].weight", 7, 33, "at least 1"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backends[1].name", 8, 20,
                        "backend \"apiv2\" does not exist (did you mean \"api-v2\"?)"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backends[2].name", 9, 20,
                        "backend \"api\" is listed twice"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].backends[3].name", 10, 13,
                        "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].backends", 12, 19,
                        "at least one backend is required"));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);
}

TEST(RouteActions, RedirectValues) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: a
        redirect: {scheme: ftp, host: "bad host", path: nopath, code: 303}
      - name: b
        redirect: {path: "/x?y=1"}
        rate_limit: {rate: 1/s}
        timeout: 1s
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].redirect.scheme", 6, 28,
                        "expected http or https, got \"ftp\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].redirect.host", 6, 39,
                        "expected a host name, optionally with :port"));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].redirect.path", 6, 57, "must start with '/'"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].redirect.code", 6, 71,
                        "expected 301, 302, 307 or 308, got \"303\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[1].redirect.path", 8, 26, "without '?' or '#'"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].rate_limit", 9, 21,
                        "rate_limit has no effect on a route with redirect"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].timeout", 10, 18,
                        "timeout has no effect on a route with redirect"));
  EXPECT_EQ(result.errors.size(), 7u) << all_errors(result);
}

TEST(RouteActions, MatchHeadersAndQuery) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: a
        backend: api
        match:
          headers: {"bad name": "1", x-a: [1], X-B: "1", x-b: "2"}
          query: {"": "1", q: {a: 1}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.headers.bad name", 8, 21,
                        "expected a header field name, got \"bad name\""));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].match.headers.x-a", 8, 43, "expected a string"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.headers.x-b", 8, 58,
                        "duplicate header \"x-b\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.query.", 9, 19,
                        "a query parameter name must not be empty"));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[0].match.query.q", 9, 31, "expected a string"));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);
}

TEST(RouteActions, HeaderRulesRefuseWhatMeridianManages) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: a
        backend: api
        headers:
          request: {set: {Content-Length: "1", x-a: "1"}, remove: [x-a, Host, "a b"]}
          response: {set: {x-c: "a\nb"}, remove: [Transfer-Encoding], add: {}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.request.set.Content-Length", 8, 27,
                        "\"Content-Length\" is managed by meridian"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.request.remove[0]", 8, 68,
                        "header \"x-a\" is named twice"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.request.remove[1]", 8, 73,
                        "\"Host\" is managed by meridian"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.request.remove[2]", 8, 79,
                        "expected a header field name, got \"a b\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.response.set.x-c", 9, 33,
                        "a header value must be visible characters"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.response.remove[0]", 9, 51,
                        "\"Transfer-Encoding\" is managed by meridian"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.response.add", 9, 71,
                        "unknown key \"add\""));
  EXPECT_EQ(result.errors.size(), 7u) << all_errors(result);
}

TEST(RouteActions, Mirror) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, mirror: {backend: api-v2, percent: 5}}
      - {name: b, backend: api, mirror: {backend: api, percent: 12.5%}}
      - {name: c, backend: api, mirror: {backend: api-2}}
      - {name: d, backend: api, mirror: {backend: api, percent: 101}}
      - {name: e, backend: api, mirror: {percent: 1}}
      - {name: f, redirect: {scheme: https}, mirror: {backend: api}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].mirror.backend", 7, 51,
                        "backend \"api-2\" does not exist (did you mean \"api-v2\"?)"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[3].mirror.percent", 8, 65, "100"));
  EXPECT_TRUE(
      has_error(result, "listeners[0].routes[4].mirror.backend", 9, 41, "required key is missing"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[5].mirror", 10, 54,
                        "mirror has no effect on a route with redirect"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
  auto ok = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {name: a, backend: api, mirror: {backend: api-v2, percent: 5}}
      - {name: b, backend: api, mirror: {backend: api, percent: 12.5%}}
      - {name: c, backend: api, mirror: {backend: api}}
)");
  ASSERT_TRUE(is_ok(ok)) << all_errors(ok);
  const auto& routes = ok.config->listeners[0].routes;
  EXPECT_EQ(routes[0].mirror->index, 1u);
  EXPECT_DOUBLE_EQ(routes[0].mirror->percent, 0.05);
  EXPECT_DOUBLE_EQ(routes[1].mirror->percent, 0.125);
  EXPECT_DOUBLE_EQ(routes[2].mirror->percent, 1.0);
}

TEST(RouteActions, ValuesAndRedirectsThatCouldNotWork) {
  auto result = load_routes(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: a
        backend: api
        match: {headers: {x-a: " padded"}}
        headers: {response: {set: {x-b: "tab\there", x-c: "bell\a"}}}
      - {name: b, redirect: {code: 308}}
      - {name: c, redirect: {host: "example.com:0"}}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].match.headers.x-a", 7, 32,
                        "visible characters, with spaces or tabs only inside"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].headers.response.set.x-c", 8, 59,
                        "visible characters"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[1].redirect", 9, 29,
                        "a redirect needs a scheme, host or path to change"));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[2].redirect.host", 10, 36,
                        "expected a host name, optionally with :port"));
  EXPECT_EQ(result.errors.size(), 4u) << all_errors(result);
}

TEST(RouteActions, TracingValues) {
  auto result = load_routes(R"(
listeners:
  - {name: public, listen: 127.0.0.1:0, routes: [{name: a, backend: api}]}
tracing: {propagate: zipkin}
)");
  EXPECT_TRUE(has_error(result, "tracing.propagate", 3, 22, "expected off or w3c, got \"zipkin\""));
  EXPECT_EQ(result.errors.size(), 1u) << all_errors(result);
}

constexpr std::string_view kOneRoute = R"(
listeners:
  - {name: public, listen: 127.0.0.1:0, routes: [{name: a, backend: api}]}
)";

TEST(BackendKeys, HashKeyAndAffinity) {
  auto result = load_config_string(yaml(R"(
backends:
  - name: api
    balance: maglev
    hash_key: header:X-User
    affinity: {cookie: aff, ttl: 0s}
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
  - name: ring
    balance: ring_hash
    hash_key: cookie:Session
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
  - name: plain
    balance: ring_hash
    affinity: {cookie: ""}
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)") + std::string(kOneRoute),
                                   kFile);
  ASSERT_TRUE(is_ok(result)) << all_errors(result);
  const auto& b = result.config->backends;
  EXPECT_EQ(b[0].balance, Balance::maglev);
  EXPECT_EQ(b[0].hash_key.kind, HashKeyKind::header);
  EXPECT_EQ(b[0].hash_key.name, "x-user");  // header names lower-cased
  ASSERT_TRUE(b[0].affinity);
  EXPECT_EQ(b[0].affinity->cookie, "aff");
  EXPECT_EQ(b[0].affinity->ttl.count(), 0);
  EXPECT_EQ(b[1].hash_key.kind, HashKeyKind::cookie);
  EXPECT_EQ(b[1].hash_key.name, "Session");  // cookie names as written
  EXPECT_FALSE(b[1].affinity);
  EXPECT_EQ(b[2].hash_key.kind, HashKeyKind::client_ip);  // the default
  EXPECT_FALSE(b[2].affinity);                            // an empty name is off
}

TEST(BackendKeys, HashKeyErrors) {
  auto result = load_config_string(yaml(R"(
backends:
  - name: api
    balance: maglev
    hash_key: query:user
    affinity: {cookie: "a b", ttl: -1s}
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
  - name: rr
    balance: round_robin
    hash_key: client_ip
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
  - name: default
    hash_key: client_ip
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)") + std::string(kOneRoute),
                                   kFile);
  EXPECT_TRUE(has_error(result, "backends[0].hash_key", 4, 15,
                        "expected client_ip, header:NAME or cookie:NAME, got \"query:user\""));
  EXPECT_TRUE(has_error(result, "backends[0].affinity.cookie", 5, 24, "expected a cookie name"));
  EXPECT_TRUE(has_error(result, "backends[0].affinity.ttl", 5, 36, "expected a duration"));
  EXPECT_TRUE(has_error(result, "backends[1].hash_key", 9, 15,
                        "hash_key applies to balance ring_hash or maglev only"));
  EXPECT_TRUE(has_error(result, "backends[2].hash_key", 12, 15,
                        "hash_key needs balance: ring_hash or maglev"));
  EXPECT_EQ(result.errors.size(), 5u) << all_errors(result);
}

TEST(BackendKeys, AffinityTtlIsWholeSecondsOrZero) {
  auto result = load_config_string(yaml(R"(
backends:
  - name: api
    affinity: {cookie: aff, ttl: 500ms}
    regions: [{name: r, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:1"}]}]
)") + std::string(kOneRoute),
                                   kFile);
  EXPECT_TRUE(has_error(result, "backends[0].affinity.ttl", 3, 34,
                        "must be 0s (a session cookie) or at least 1s"));
  EXPECT_EQ(result.errors.size(), 1u) << all_errors(result);
}

}  // namespace
}  // namespace meridian::config::test
