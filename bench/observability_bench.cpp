// Per-request cost of observability: counting a request in the worker's metrics (status code,
// duration histogram), and formatting and queueing its access log line. Both run once per
// request on the worker; no lock, no allocation once warm.
#include <chrono>
#include <cstdint>
#include <string>

#include <benchmark/benchmark.h>

#include "meridian/accesslog/access_log.hpp"
#include "meridian/accesslog/format.hpp"
#include "meridian/metrics/registry.hpp"

#include "alloc_counter.hpp"

namespace {

namespace metrics = meridian::metrics;
namespace accesslog = meridian::accesslog;

void BM_RecordRequest(benchmark::State& state) {
  metrics::Registry registry(1);
  const auto id = registry.request_series({"public", "api", "b", "eu-west"});
  auto& counters = registry.worker(0);
  std::int64_t duration = 1'234'567;
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    counters.record_request(id, 200, duration);
    duration += 1000;
  }
  allocs.done();
}
BENCHMARK(BM_RecordRequest);

void BM_AccessLogLine(benchmark::State& state) {
  // Format a JSON line and queue it; the writer thread drains to "off" (discards).
  accesslog::AccessLog log("off", 1);
  accesslog::TimeCache cache;
  std::string line;
  accesslog::Entry e;
  e.client = "203.0.113.7";
  e.method = "GET";
  e.host = "shop.example";
  e.target = "/api/items?page=2";
  e.path = "/api/items";
  e.status = 200;
  e.bytes_out = 1234;
  e.duration_ms = 1.5;
  e.listener = "public";
  e.route = "api";
  e.backend = "b";
  e.region = "eu-west";
  e.endpoint = "10.0.1.10:8080";
  e.request_id = "0123456789abcdef0123456789abcdef";
  e.user_agent = "curl/8.5.0";
  std::uint64_t dropped = 0;
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    e.time = std::chrono::system_clock::now();
    accesslog::format(meridian::config::AccessLogFormat::json, e, cache, line);
    if (!log.push(0, line)) ++dropped;
  }
  allocs.done();
  state.counters["dropped"] = static_cast<double>(dropped);
}
BENCHMARK(BM_AccessLogLine);

}  // namespace
