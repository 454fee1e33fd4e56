// Route matching (a listener's `routes`): host exact (case-insensitive, port and a trailing dot
// ignored) or "*.suffix", path prefix or exact path, methods, first match wins.
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
    EXPECT_EQ(router.match(host, "/", "GET"), &routes[0]) << host;
  }
  for (std::string_view host : {"example.com", "xapi.example.com", "api.example.com.evil",
                                "api.example.co", "a.api.example.com", "api-example.com", ""}) {
    EXPECT_EQ(router.match(host, "/", "GET"), nullptr) << host;
  }
}

TEST(Router, WildcardHostMatchesSubdomainsOnly) {
  const std::vector<config::Route> routes{route("wild", "*.example.com")};
  const Router router(routes);
  for (std::string_view host : {"a.example.com", "a.b.example.com", "A.EXAMPLE.COM",
                                "www.example.com:8443", "x.example.com."}) {
    EXPECT_EQ(router.match(host, "/", "GET"), &routes[0]) << host;
  }
  for (std::string_view host : {"example.com", "example.com:80", ".example.com", "badexample.com",
                                "a.example.com.evil", "a.example.org", ""}) {
    EXPECT_EQ(router.match(host, "/", "GET"), nullptr) << host;
  }
}

TEST(Router, Ipv6HostLiteral) {
  const std::vector<config::Route> routes{route("v6", "[::1]")};
  const Router router(routes);
  EXPECT_EQ(router.match("[::1]", "/", "GET"), &routes[0]);
  EXPECT_EQ(router.match("[::1]:8080", "/", "GET"), &routes[0]);
  EXPECT_EQ(router.match("[::2]:8080", "/", "GET"), nullptr);
}

TEST(Router, AbsentHostMatchesAnyHost) {
  const std::vector<config::Route> routes{route("any")};
  const Router router(routes);
  for (std::string_view host : {"", "a", "a.example.com:1", "[::1]:80"}) {
    EXPECT_EQ(router.match(host, "/x", "GET"), &routes[0]) << host;
  }
}

TEST(Router, PathPrefixIsAByteStringPrefix) {
  const std::vector<config::Route> routes{route("api", "", "/api")};
  const Router router(routes);
  for (std::string_view path : {"/api", "/api/", "/api/v1/users", "/apix"}) {
    EXPECT_EQ(router.match("h", path, "GET"), &routes[0]) << path;
  }
  for (std::string_view path : {"/", "/ap", "/API", "/v1/api", "", "api"}) {
    EXPECT_EQ(router.match("h", path, "GET"), nullptr) << path;
  }
}

TEST(Router, PathPrefixWithTrailingSlash) {
  const std::vector<config::Route> routes{route("v1", "", "/v1/")};
  const Router router(routes);
  EXPECT_EQ(router.match("h", "/v1/x", "GET"), &routes[0]);
  EXPECT_EQ(router.match("h", "/v1/", "GET"), &routes[0]);
  EXPECT_EQ(router.match("h", "/v1", "GET"), nullptr);
  EXPECT_EQ(router.match("h", "/v10/x", "GET"), nullptr);
}

TEST(Router, RootPrefixMatchesEveryPath) {
  const std::vector<config::Route> routes{route("root", "", "/")};
  const Router router(routes);
  EXPECT_EQ(router.match("h", "/", "GET"), &routes[0]);
  EXPECT_EQ(router.match("h", "/anything/at/all", "GET"), &routes[0]);
}

TEST(Router, ExactPath) {
  const std::vector<config::Route> routes{route("exact", "", std::nullopt, "/exact")};
  const Router router(routes);
  EXPECT_EQ(router.match("h", "/exact", "GET"), &routes[0]);
  for (std::string_view path : {"/exact/", "/exactly", "/exac", "/Exact", "/", ""}) {
    EXPECT_EQ(router.match("h", path, "GET"), nullptr) << path;
  }
}

TEST(Router, Methods) {
  const std::vector<config::Route> routes{
      route("read", "", std::nullopt, std::nullopt, {"GET", "HEAD"})};
  const Router router(routes);
  EXPECT_EQ(router.match("h", "/", "GET"), &routes[0]);
  EXPECT_EQ(router.match("h", "/", "HEAD"), &routes[0]);
  EXPECT_EQ(router.match("h", "/", "POST"), nullptr);
  EXPECT_EQ(router.match("h", "/", "OPTIONS"), nullptr);
  // Methods are case-sensitive (RFC 9110 9.1): "get" is not GET.
  EXPECT_EQ(router.match("h", "/", "get"), nullptr);
  EXPECT_EQ(router.match("h", "/", "GETX"), nullptr);
}

TEST(Router, EmptyMethodsMatchAnyMethod) {
  const std::vector<config::Route> routes{route("any")};
  const Router router(routes);
  for (std::string_view m : {"GET", "POST", "DELETE", "PURGE", "OPTIONS"}) {
    EXPECT_EQ(router.match("h", "/", m), &routes[0]) << m;
  }
}

TEST(Router, AllConditionsMustHold) {
  const std::vector<config::Route> routes{
      route("all", "api.example.com", "/v1/", std::nullopt, {"POST"})};
  const Router router(routes);
  EXPECT_EQ(router.match("api.example.com", "/v1/x", "POST"), &routes[0]);
  EXPECT_EQ(router.match("www.example.com", "/v1/x", "POST"), nullptr);
  EXPECT_EQ(router.match("api.example.com", "/v2/x", "POST"), nullptr);
  EXPECT_EQ(router.match("api.example.com", "/v1/x", "GET"), nullptr);
}

TEST(Router, FirstMatchWins) {
  const std::vector<config::Route> routes{
      route("general", "", "/"),
      route("specific", "api.example.com", "/api/", std::nullopt, {"GET"}),
  };
  const Router router(routes);
  // The general route is listed first, so it wins even where the specific one matches too.
  EXPECT_STREQ(name_of(router.match("api.example.com", "/api/x", "GET")), "general");
}

TEST(Router, LaterRouteWhenEarlierDoNotMatch) {
  const std::vector<config::Route> routes{
      route("api", "api.example.com", "/api/"),
      route("static", "*.example.com", "/static/"),
      route("exact", "", std::nullopt, "/health", {"GET"}),
      route("fallback"),
  };
  const Router router(routes);
  EXPECT_STREQ(name_of(router.match("api.example.com", "/api/users", "GET")), "api");
  EXPECT_STREQ(name_of(router.match("api.example.com", "/static/a.css", "GET")), "static");
  EXPECT_STREQ(name_of(router.match("cdn.example.com", "/static/a.css", "GET")), "static");
  EXPECT_STREQ(name_of(router.match("other.org", "/health", "GET")), "exact");
  EXPECT_STREQ(name_of(router.match("other.org", "/health", "POST")), "fallback");
  EXPECT_STREQ(name_of(router.match("other.org", "/", "GET")), "fallback");
}

TEST(Router, NoMatchIsNull) {
  const std::vector<config::Route> routes{route("api", "api.example.com", "/api")};
  const Router router(routes);
  EXPECT_EQ(router.match("api.example.com", "/web", "GET"), nullptr);
  EXPECT_EQ(router.match("web.example.com", "/api", "GET"), nullptr);
}

TEST(Router, EmptyAndDefaultRouterMatchNothing) {
  const std::vector<config::Route> none;
  EXPECT_EQ(Router(none).match("h", "/", "GET"), nullptr);
  EXPECT_EQ(Router().match("h", "/", "GET"), nullptr);
}

TEST(RouteMatches, TakesHostWithoutPort) {
  const config::Route r = route("api", "api.example.com", "/");
  EXPECT_TRUE(route_matches(r, "api.example.com", "/", "GET"));
  EXPECT_TRUE(route_matches(r, "API.EXAMPLE.COM", "/", "GET"));
  EXPECT_FALSE(route_matches(r, "api.example.org", "/", "GET"));
  const config::Route w = route("wild", "*.example.com");
  EXPECT_TRUE(route_matches(w, "a.example.com", "/", "GET"));
  EXPECT_FALSE(route_matches(w, "example.com", "/", "GET"));
}

}  // namespace
}  // namespace meridian::http
