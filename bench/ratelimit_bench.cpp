// Micro-benchmarks of the local rate limiter (scope: local): one decision in ns/op, on 1 and 4
// threads, on one hot key (every request from the same client: one shard, its mutex contended)
// and on many keys (a million clients spread over the 64 shards), plus the lock-free route-wide
// bucket (key: route). The 4-thread runs on a 2-core machine measure contention with
// oversubscription, the worst case; compare per-thread ns/op.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <benchmark/benchmark.h>

#include "meridian/config/config.hpp"
#include "meridian/ratelimit/gcra.hpp"
#include "meridian/ratelimit/local_buckets.hpp"
#include "meridian/ratelimit/route_limit.hpp"

#include "alloc_counter.hpp"

namespace {

namespace config = meridian::config;
namespace ratelimit = meridian::ratelimit;

// A rate no loop here can exceed, so every decision is an allowed one that writes the
// bucket (a refused one only reads it, and is cheaper).
config::RateLimit limit(config::RateLimitKey key) {
  config::RateLimit l;
  l.rate = config::Rate{1'000'000'000, std::chrono::milliseconds(1000)};
  l.burst = 1'000;
  l.key = key;
  return l;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Shared by the threads of one benchmark run (Google Benchmark runs them together).
ratelimit::LocalBuckets& table() {
  static ratelimit::LocalBuckets buckets(1'000'000);
  return buckets;
}
ratelimit::RouteLimit& client_limit() {
  static ratelimit::RouteLimit l("public", "api", limit(config::RateLimitKey::client_ip));
  return l;
}
ratelimit::RouteLimit& route_limit() {
  static ratelimit::RouteLimit l("public", "all", limit(config::RateLimitKey::route));
  return l;
}

void BM_LocalLimit_HotKey(benchmark::State& state) {
  const unsigned char address[4] = {192, 0, 2, 7};
  const ratelimit::ClientKey key{
      std::string_view(reinterpret_cast<const char*>(address), sizeof address), true};
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ratelimit::take_local(client_limit(), &table(), key, now_ns()));
  }
  allocs.done();
  state.SetItemsProcessed(state.iterations());  // decisions/s, summed over the threads
}
BENCHMARK(BM_LocalLimit_HotKey)->Threads(1)->Threads(4)->UseRealTime();

void BM_LocalLimit_ManyKeys(benchmark::State& state) {
  // A million distinct IPv4 clients, each thread walking its own part of them.
  std::uint32_t i = static_cast<std::uint32_t>(state.thread_index()) * 250'000u;
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    const std::uint32_t client = 0x0a000000u + (i++ % 1'000'000u);
    const unsigned char address[4] = {
        static_cast<unsigned char>(client >> 24), static_cast<unsigned char>(client >> 16),
        static_cast<unsigned char>(client >> 8), static_cast<unsigned char>(client)};
    const ratelimit::ClientKey key{
        std::string_view(reinterpret_cast<const char*>(address), sizeof address), true};
    benchmark::DoNotOptimize(ratelimit::take_local(client_limit(), &table(), key, now_ns()));
  }
  allocs.done();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalLimit_ManyKeys)->Threads(1)->Threads(4)->UseRealTime();

void BM_LocalLimit_RouteKey(benchmark::State& state) {
  const ratelimit::ClientKey key{};
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ratelimit::take_local(route_limit(), &table(), key, now_ns()));
  }
  allocs.done();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LocalLimit_RouteKey)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
