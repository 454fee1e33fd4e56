// Micro-benchmarks of the per-request work that does not touch a socket: parsing a typical
// request head, matching a route, and writing the upstream head (with its header rewrite).
// Reports ns/op and heap allocations/op (alloc_counter.hpp).
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include <benchmark/benchmark.h>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/parser.hpp"
#include "meridian/http/router.hpp"

#include "alloc_counter.hpp"

namespace {

constexpr std::string_view kRequest =
    "GET /api/v1/users/12345?expand=profile HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=abcdef0123456789; theme=dark\r\n"
    "X-Forwarded-For: 198.51.100.7\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

std::vector<meridian::config::Route> make_routes() {
  std::vector<meridian::config::Route> routes(4);
  routes[0].name = "static";
  routes[0].match.host = "static.example.com";
  routes[1].name = "admin";
  routes[1].match.host = "api.example.com";
  routes[1].match.path_prefix = "/admin/";
  routes[2].name = "api";
  routes[2].match.host_suffix = ".example.com";
  routes[2].match.path_prefix = "/api/";
  routes[3].name = "default";
  return routes;
}

void BM_ParseHead(benchmark::State& state) {
  meridian::http::RequestParser parser;
  const meridian::http::ParserLimits limits{64 * 1024, 100, 0};
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    parser.reset(limits);
    benchmark::DoNotOptimize(parser.parse_head(kRequest));
  }
  allocs.done();
}
BENCHMARK(BM_ParseHead);

void BM_ParseRouteRewrite(benchmark::State& state) {
  meridian::http::RequestParser parser;
  const meridian::http::ParserLimits limits{64 * 1024, 100, 0};
  const auto routes = make_routes();
  const meridian::http::Router router(routes);
  std::string out;
  out.reserve(1024);
  const meridian::http::RequestForwarding fwd{"203.0.113.9", "http", "1.1 bench",
                                              "0123456789abcdef0123456789abcdef", "origin:80"};
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    parser.reset(limits);
    parser.parse_head(kRequest);
    const auto& head = parser.head();
    benchmark::DoNotOptimize(router.match(head));
    meridian::http::write_upstream_request(head, fwd, out);
    benchmark::DoNotOptimize(out.data());
  }
  allocs.done();
}
BENCHMARK(BM_ParseRouteRewrite);

// Route matching when routes look at header fields and query parameters: a header-matched
// canary and a query-matched debug route ahead of the general one, which the request reaches
// after both fail on their last condition (the worst case for the first two).
void BM_RouteMatchHeadersQuery(benchmark::State& state) {
  meridian::http::RequestParser parser;
  const meridian::http::ParserLimits limits{64 * 1024, 100, 0};
  std::vector<meridian::config::Route> routes(3);
  routes[0].name = "canary";
  routes[0].match.host_suffix = ".example.com";
  routes[0].match.headers = {{"accept", "application/json"}, {"x-canary", "1"}};
  routes[1].name = "debug";
  routes[1].match.path_prefix = "/api/";
  routes[1].match.query = {{"expand", "profile"}, {"debug", "1"}};
  routes[2].name = "api";
  routes[2].match.path_prefix = "/api/";
  const meridian::http::Router router(routes);
  parser.reset(limits);
  parser.parse_head(kRequest);
  const auto& head = parser.head();
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(router.match(head));
  }
  allocs.done();
}
BENCHMARK(BM_RouteMatchHeadersQuery);

}  // namespace
