// Route matching (a listener's `routes`): host exact (case-insensitive, port and a trailing dot
// ignored) or "*.suffix", path prefix or exact path, methods, header fields and query
// parameters, first match wins; and the weighted split of a route's backends.
#include "meridian/http/router.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::http {
namespace {

// A route as the loader stores it: host lower-cased, "*.x" kept as host_suffix ".x",
// methods upper-case.
config::Route route(std::string name, std::string host = "",
                    std::optional<std::string> path_prefix = std::nullopt,
                    std::optional<std::string> path = std::nullopt,
                    std::vector<std::string> methods = {}) {
  config::Route r;
  r.name = std::move(name);
  if (host.rfind("*.", 0) == 0) {
    r.match.host_suffix = host.substr(1);
  } else {
    r.match.host = std::move(host);
  }
  r.match.path_prefix = std::move(path_prefix);
  r.match.path = std::move(path);
  r.match.methods = std::move(methods);
  return r;
}

// A request head with `target` ("/p?q") split into path and query, and `fields`.
struct Request {
  RequestHead head;
  Request(std::string_view host, std::string_view target, std::string_view method,
          std::vector<Field> fields = {}) {
    head.host = host;
    head.target = target;
    head.path = target.substr(0, target.find('?'));
    head.method = method;
    head.fields = std::move(fields);
  }
};

const config::Route* match(const Router& router, std::string_view host, std::string_view target,
                           std::string_view method, std::vector<Field> fields = {}) {
  const Request r(host, target, method, std::move(fields));
  return router.match(r.head);
}

bool matches(const config::Route& route, std::string_view host, std::string_view target,
             std::string_view method, std::vector<Field> fields = {}) {
  const Request r(host, target, method, std::move(fields));
  return route_matches(route, r.head, host);
}

const char* name_of(const config::Route* r) {
  return r == nullptr ? "(none)" : r->name.c_str();
}

TEST(HostWithoutPort, Forms) {
  EXPECT_EQ(host_without_port("example.com"), "example.com");
  EXPECT_EQ(host_without_port("example.com:8080"), "example.com");
  EXPECT_EQ(host_without_port("Example.COM:80"), "Example.COM");
  EXPECT_EQ(host_without_port("example.com."), "example.com");
  EXPECT_EQ(host_without_port("example.com.:443"), "example.com");
  EXPECT_EQ(host_without_port("10.0.0.1:80"), "10.0.0.1");
  EXPECT_EQ(host_without_port("[::1]"), "[::1]");
  EXPECT_EQ(host_without_port("[::1]:8080"), "[::1]");
  EXPECT_EQ(host_without_port("[2001:db8::1]:443"), "[2001:db8::1]");
  EXPECT_EQ(host_without_port(""), "");
}

TEST(Router, ExactHostIsCaseInsensitiveAndIgnoresPortAndTrailingDot) {
  const std::vector<config::Route> routes{route("api", "api.example.com")};
  const Router router(routes);
  for (std::string_view host : {"api.example.com", "API.Example.COM", "api.example.com:8080",
                                "api.example.com.", "Api.Example.Com.:443"}) {
    EXPECT_EQ(match(router, host, "/", "GET"), &routes[0]) << host;
  }
  for (std::string_view host : {"example.com", "xapi.example.com", "api.example.com.evil",
                                "api.example.co", "a.api.example.com", "api-example.com", ""}) {
    EXPECT_EQ(match(router, host, "/", "GET"), nullptr) << host;
  }
}

TEST(Router, WildcardHostMatchesSubdomainsOnly) {
  const std::vector<config::Route> routes{route("wild", "*.example.com")};
  const Router router(routes);
  for (std::string_view host : {"a.example.com", "a.b.example.com", "A.EXAMPLE.COM",
                                "www.example.com:8443", "x.example.com."}) {
    EXPECT_EQ(match(router, host, "/", "GET"), &routes[0]) << host;
  }
  for (std::string_view host : {"example.com", "example.com:80", ".example.com", "badexample.com",
                                "a.example.com.evil", "a.example.org", ""}) {
    EXPECT_EQ(match(router, host, "/", "GET"), nullptr) << host;
  }
}

TEST(Router, Ipv6HostLiteral) {
  const std::vector<config::Route> routes{route("v6", "[::1]")};
  const Router router(routes);
  EXPECT_EQ(match(router, "[::1]", "/", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "[::1]:8080", "/", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "[::2]:8080", "/", "GET"), nullptr);
}

TEST(Router, AbsentHostMatchesAnyHost) {
  const std::vector<config::Route> routes{route("any")};
  const Router router(routes);
  for (std::string_view host : {"", "a", "a.example.com:1", "[::1]:80"}) {
    EXPECT_EQ(match(router, host, "/x", "GET"), &routes[0]) << host;
  }
}

TEST(Router, PathPrefixIsAByteStringPrefix) {
  const std::vector<config::Route> routes{route("api", "", "/api")};
  const Router router(routes);
  for (std::string_view path : {"/api", "/api/", "/api/v1/users", "/apix"}) {
    EXPECT_EQ(match(router, "h", path, "GET"), &routes[0]) << path;
  }
  for (std::string_view path : {"/", "/ap", "/API", "/v1/api", "", "api"}) {
    EXPECT_EQ(match(router, "h", path, "GET"), nullptr) << path;
  }
}

TEST(Router, PathPrefixWithTrailingSlash) {
  const std::vector<config::Route> routes{route("v1", "", "/v1/")};
  const Router router(routes);
  EXPECT_EQ(match(router, "h", "/v1/x", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "h", "/v1/", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "h", "/v1", "GET"), nullptr);
  EXPECT_EQ(match(router, "h", "/v10/x", "GET"), nullptr);
}

TEST(Router, RootPrefixMatchesEveryPath) {
  const std::vector<config::Route> routes{route("root", "", "/")};
  const Router router(routes);
  EXPECT_EQ(match(router, "h", "/", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "h", "/anything/at/all", "GET"), &routes[0]);
}

TEST(Router, ExactPath) {
  const std::vector<config::Route> routes{route("exact", "", std::nullopt, "/exact")};
  const Router router(routes);
  EXPECT_EQ(match(router, "h", "/exact", "GET"), &routes[0]);
  for (std::string_view path : {"/exact/", "/exactly", "/exac", "/Exact", "/", ""}) {
    EXPECT_EQ(match(router, "h", path, "GET"), nullptr) << path;
  }
}

TEST(Router, Methods) {
  const std::vector<config::Route> routes{
      route("read", "", std::nullopt, std::nullopt, {"GET", "HEAD"})};
  const Router router(routes);
  EXPECT_EQ(match(router, "h", "/", "GET"), &routes[0]);
  EXPECT_EQ(match(router, "h", "/", "HEAD"), &routes[0]);
  EXPECT_EQ(match(router, "h", "/", "POST"), nullptr);
  EXPECT_EQ(match(router, "h", "/", "OPTIONS"), nullptr);
  // Methods are case-sensitive (RFC 9110 9.1): "get" is not GET.
  EXPECT_EQ(match(router, "h", "/", "get"), nullptr);
  EXPECT_EQ(match(router, "h", "/", "GETX"), nullptr);
}

TEST(Router, EmptyMethodsMatchAnyMethod) {
  const std::vector<config::Route> routes{route("any")};
  const Router router(routes);
  for (std::string_view m : {"GET", "POST", "DELETE", "PURGE", "OPTIONS"}) {
    EXPECT_EQ(match(router, "h", "/", m), &routes[0]) << m;
  }
}

TEST(Router, AllConditionsMustHold) {
  const std::vector<config::Route> routes{
      route("all", "api.example.com", "/v1/", std::nullopt, {"POST"})};
  const Router router(routes);
  EXPECT_EQ(match(router, "api.example.com", "/v1/x", "POST"), &routes[0]);
  EXPECT_EQ(match(router, "www.example.com", "/v1/x", "POST"), nullptr);
  EXPECT_EQ(match(router, "api.example.com", "/v2/x", "POST"), nullptr);
  EXPECT_EQ(match(router, "api.example.com", "/v1/x", "GET"), nullptr);
}

TEST(Router, FirstMatchWins) {
  const std::vector<config::Route> routes{
      route("general", "", "/"),
      route("specific", "api.example.com", "/api/", std::nullopt, {"GET"}),
  };
  const Router router(routes);
  // The general route is listed first, so it wins even where the specific one matches too.
  EXPECT_STREQ(name_of(match(router, "api.example.com", "/api/x", "GET")), "general");
}

TEST(Router, LaterRouteWhenEarlierDoNotMatch) {
  const std::vector<config::Route> routes{
      route("api", "api.example.com", "/api/"),
      route("static", "*.example.com", "/static/"),
      route("exact", "", std::nullopt, "/health", {"GET"}),
      route("fallback"),
  };
  const Router router(routes);
  EXPECT_STREQ(name_of(match(router, "api.example.com", "/api/users", "GET")), "api");
  EXPECT_STREQ(name_of(match(router, "api.example.com", "/static/a.css", "GET")), "static");
  EXPECT_STREQ(name_of(match(router, "cdn.example.com", "/static/a.css", "GET")), "static");
  EXPECT_STREQ(name_of(match(router, "other.org", "/health", "GET")), "exact");
  EXPECT_STREQ(name_of(match(router, "other.org", "/health", "POST")), "fallback");
  EXPECT_STREQ(name_of(match(router, "other.org", "/", "GET")), "fallback");
}

TEST(Router, NoMatchIsNull) {
  const std::vector<config::Route> routes{route("api", "api.example.com", "/api")};
  const Router router(routes);
  EXPECT_EQ(match(router, "api.example.com", "/web", "GET"), nullptr);
  EXPECT_EQ(match(router, "web.example.com", "/api", "GET"), nullptr);
}

TEST(Router, EmptyAndDefaultRouterMatchNothing) {
  const std::vector<config::Route> none;
  EXPECT_EQ(match(Router(none), "h", "/", "GET"), nullptr);
  EXPECT_EQ(match(Router(), "h", "/", "GET"), nullptr);
}

TEST(RouteMatches, TakesHostWithoutPort) {
  const config::Route r = route("api", "api.example.com", "/");
  EXPECT_TRUE(matches(r, "api.example.com", "/", "GET"));
  EXPECT_TRUE(matches(r, "API.EXAMPLE.COM", "/", "GET"));
  EXPECT_FALSE(matches(r, "api.example.org", "/", "GET"));
  const config::Route w = route("wild", "*.example.com");
  EXPECT_TRUE(matches(w, "a.example.com", "/", "GET"));
  EXPECT_FALSE(matches(w, "example.com", "/", "GET"));
}

TEST(RouteMatches, HeadersMustAllBePresentWithTheExactValue) {
  config::Route r = route("canary");
  r.match.headers = {{"x-canary", "1"}, {"x-team", "blue"}};
  EXPECT_TRUE(matches(r, "h", "/", "GET", {{"X-Canary", "1"}, {"x-team", "blue"}}));
  // Another field of the same name may come first.
  EXPECT_TRUE(
      matches(r, "h", "/", "GET", {{"x-canary", "0"}, {"x-canary", "1"}, {"x-team", "blue"}}));
  EXPECT_FALSE(matches(r, "h", "/", "GET", {{"x-canary", "1"}}));
  EXPECT_FALSE(matches(r, "h", "/", "GET", {{"x-canary", "10"}, {"x-team", "blue"}}));
  EXPECT_FALSE(matches(r, "h", "/", "GET", {{"x-canary", "1"}, {"x-team", "Blue"}}));
  EXPECT_FALSE(matches(r, "h", "/", "GET"));
}

TEST(RouteMatches, QueryParametersAreComparedDecoded) {
  config::Route r = route("debug");
  r.match.query = {{"debug", "1"}, {"q", "a b/c"}};
  EXPECT_TRUE(matches(r, "h", "/p?debug=1&q=a+b%2Fc", "GET"));
  EXPECT_TRUE(matches(r, "h", "/p?q=a%20b%2fc&x=&debug=1", "GET"));
  EXPECT_TRUE(matches(r, "h", "/p?debug=0&debug=1&q=a+b/c", "GET"));
  EXPECT_FALSE(matches(r, "h", "/p?debug=1", "GET"));
  EXPECT_FALSE(matches(r, "h", "/p?debug=11&q=a+b/c", "GET"));
  EXPECT_FALSE(matches(r, "h", "/p", "GET"));
  EXPECT_FALSE(matches(r, "h", "/p?debug&q=a+b/c", "GET"));
}

TEST(QueryHas, EdgeCases) {
  EXPECT_TRUE(query_has("a=", "a", ""));
  EXPECT_TRUE(query_has("a", "a", ""));
  EXPECT_FALSE(query_has("", "a", ""));
  EXPECT_TRUE(query_has("a=%zz", "a", "%zz"));  // not an escape: stands for itself
  EXPECT_TRUE(query_has("a=100%", "a", "100%"));
  EXPECT_TRUE(query_has("%61=1", "a", "1"));  // names are decoded too
  EXPECT_FALSE(query_has("ab=1", "a", "1"));
}

TEST(Router, HeaderMatchedCanaryBeforeTheGeneralRoute) {
  std::vector<config::Route> routes{route("canary", "", "/"), route("stable", "", "/")};
  routes[0].match.headers = {{"x-canary", "1"}};
  const Router router(routes);
  EXPECT_STREQ(name_of(match(router, "h", "/x", "GET", {{"x-canary", "1"}})), "canary");
  EXPECT_STREQ(name_of(match(router, "h", "/x", "GET")), "stable");
}

TEST(SplitChoice, SharesFollowTheWeights) {
  config::Route r = route("split");
  r.backends = {{"a", 95, 0}, {"b", 5, 1}};
  r.total_weight = 100;
  std::size_t to_b = 0;
  std::uint64_t x = 1;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // spread over [0, 2^64)
    if (split_choice(r, x) == 1) ++to_b;
  }
  EXPECT_NEAR(static_cast<double>(to_b) / kN, 0.05, 0.005);
  // The ends of the range.
  EXPECT_EQ(split_choice(r, 0), 0u);
  EXPECT_EQ(split_choice(r, ~std::uint64_t{0}), 1u);
}

TEST(SplitChoice, OneBackendTakesEverything) {
  config::Route r = route("one");
  r.backends = {{"a", 1, 0}};
  r.total_weight = 1;
  EXPECT_EQ(split_choice(r, 0), 0u);
  EXPECT_EQ(split_choice(r, ~std::uint64_t{0}), 0u);
}

}  // namespace
}  // namespace meridian::http
