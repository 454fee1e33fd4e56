// Micro-benchmarks of consistent hashing (balance ring_hash / maglev): the pick of an endpoint
// for a key in a region of 32 endpoints -- hashing the key's bytes, the table or ring lookup and
// the usability check -- with allocations per operation (zero: the tables are built with the
// snapshot, never per request). Also the cost of building the tables, which a reload or a DNS
// answer pays once per region.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/balancing/backend_runtime.hpp"
#include "meridian/balancing/consistent_hash.hpp"
#include "meridian/balancing/endpoint_picker.hpp"

#include "alloc_counter.hpp"

namespace {

namespace balancing = meridian::balancing;
namespace config = meridian::config;

constexpr int kEndpoints = 32;

std::vector<std::string> endpoint_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kEndpoints; ++i)
    names.push_back("10.0.1." + std::to_string(i) + ":8080");
  return names;
}

std::vector<balancing::HashedEndpoint> placed(const std::vector<std::string>& names) {
  std::vector<balancing::HashedEndpoint> out;
  for (const auto& n : names)
    out.push_back({n, 1});
  return out;
}

balancing::RegionRuntime region(config::Balance balance) {
  balancing::RegionRuntime r;
  const auto names = endpoint_names();
  for (const auto& n : names) {
    r.endpoints.push_back(std::make_shared<balancing::EndpointState>(
        "cache", "eu", n, boost::asio::ip::tcp::endpoint(), 1));
  }
  if (balance == config::Balance::maglev) {
    r.maglev = std::make_shared<const balancing::MaglevTable>(placed(names));
  } else {
    r.ring = std::make_shared<const balancing::HashRing>(placed(names));
  }
  return r;
}

// What a request costs: hash the header value, pick the endpoint owning it.
void pick(benchmark::State& state, config::Balance balance) {
  const auto r = region(balance);
  const balancing::TriedEndpoints tried;
  std::uint64_t rotation = 0;
  const std::int64_t now_ns = balancing::steady_now_ns();
  std::string key = "user-000000";
  std::uint64_t n = 0;
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    key[5 + (n % 6)] = static_cast<char>('0' + (n / 6) % 10);  // a different key each time
    ++n;
    const std::uint64_t h = balancing::hash_bytes(key);
    benchmark::DoNotOptimize(
        balancing::pick_endpoint(r, balance, 0, tried, rotation, now_ns, true, 0, h));
  }
  allocs.done();
}

void BM_Pick_Maglev(benchmark::State& state) {
  pick(state, config::Balance::maglev);
}
BENCHMARK(BM_Pick_Maglev);

void BM_Pick_RingHash(benchmark::State& state) {
  pick(state, config::Balance::ring_hash);
}
BENCHMARK(BM_Pick_RingHash);

// The owner of the key is unhealthy: Maglev probes rehashes, the ring walks on.
void pick_around_unhealthy(benchmark::State& state, config::Balance balance) {
  const auto r = region(balance);
  for (int i = 0; i < kEndpoints; i += 4)
    r.endpoints[static_cast<std::size_t>(i)]->healthy = false;
  const balancing::TriedEndpoints tried;
  std::uint64_t rotation = 0;
  std::uint64_t h = 1;
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(
        balancing::pick_endpoint(r, balance, 0, tried, rotation, 0, true, 0, h));
  }
  allocs.done();
}

void BM_Pick_Maglev_QuarterUnhealthy(benchmark::State& state) {
  pick_around_unhealthy(state, config::Balance::maglev);
}
BENCHMARK(BM_Pick_Maglev_QuarterUnhealthy);

void BM_Pick_RingHash_QuarterUnhealthy(benchmark::State& state) {
  pick_around_unhealthy(state, config::Balance::ring_hash);
}
BENCHMARK(BM_Pick_RingHash_QuarterUnhealthy);

// Nothing in the region can serve (every endpoint at its cap, say: overload): what a failed
// pick costs. The ring walk stops once it has met every endpoint.
void BM_Pick_RingHash_NoneUsable(benchmark::State& state) {
  const auto r = region(config::Balance::ring_hash);
  for (const auto& e : r.endpoints)
    e->healthy = false;
  const balancing::TriedEndpoints tried;
  std::uint64_t rotation = 0;
  std::uint64_t h = 1;
  for (auto _ : state) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(
        balancing::pick_endpoint(r, config::Balance::ring_hash, 0, tried, rotation, 0, true, 0, h));
  }
}
BENCHMARK(BM_Pick_RingHash_NoneUsable);

void BM_Build_MaglevTable(benchmark::State& state) {
  const auto names = endpoint_names();
  const auto p = placed(names);
  for (auto _ : state)
    benchmark::DoNotOptimize(balancing::MaglevTable(p));
}
BENCHMARK(BM_Build_MaglevTable)->Unit(benchmark::kMillisecond);

void BM_Build_HashRing(benchmark::State& state) {
  const auto names = endpoint_names();
  const auto p = placed(names);
  for (auto _ : state)
    benchmark::DoNotOptimize(balancing::HashRing(p));
}
BENCHMARK(BM_Build_HashRing)->Unit(benchmark::kMillisecond);

}  // namespace
