// Micro-benchmarks of the per-request steering work: ordering a backend's regions for a client
// and picking an endpoint in the best one, and the GeoIP lookup that gives the client its
// location. Reports ns/op. (Allocation counting lives in request_path_bench.cpp, whose global
// operator new also counts here; these paths are documented allocation-free.)
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/balancing/backend_runtime.hpp"
#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/balancing/steering.hpp"
#include "meridian/config/config.hpp"
#include "meridian/geo/client_location.hpp"
#include "meridian/geo/geo_locator.hpp"

#include "alloc_counter.hpp"

namespace {

namespace balancing = meridian::balancing;
namespace config = meridian::config;
namespace geo = meridian::geo;

constexpr int kRegions = 4;
constexpr int kEndpointsPerRegion = 8;

// A 4-region x 8-endpoint backend, built by hand as build_backends would: the config must
// outlive the runtime (it holds pointers into it), so both live in one object.
struct Fixture {
  config::Backend backend;
  balancing::BackendRuntime runtime;

  // `policies`: regions with a capacity (never reached) and a 10 s slow start in which two
  // endpoints of each region are half-way: the per-request cost of issue 18's spill-over,
  // shedding and slow start.
  explicit Fixture(config::SteeringPolicy policy, bool policies = false) {
    struct Place {
      const char* name;
      double lat, lon;
      std::uint32_t rtt_us;  // measured latency, so the latency term has something to mean
    };
    const Place places[kRegions] = {{"us-east", 38.90, -77.04, 90'000},
                                    {"us-west", 45.52, -122.68, 150'000},
                                    {"eu-west", 53.35, -6.26, 20'000},
                                    {"ap-southeast", 1.35, 103.82, 160'000}};
    backend.name = "api";
    backend.balance = config::Balance::least_conn;
    backend.steering.policy = policy;
    if (policies) backend.slow_start = std::chrono::seconds(10);
    backend.regions.resize(kRegions);  // sized once: runtime keeps pointers into it
    for (int r = 0; r < kRegions; ++r) {
      auto& region = backend.regions[r];
      region.name = places[r].name;
      if (policies) region.capacity = 1000;
      if (policy != config::SteeringPolicy::failover) {
        region.location = config::Location{places[r].lat, places[r].lon};
      }
      for (int e = 0; e < kEndpointsPerRegion; ++e) {
        config::Endpoint ep;
        const auto port = static_cast<std::uint16_t>(9000 + r * kEndpointsPerRegion + e);
        ep.address.host = "10.0." + std::to_string(r) + "." + std::to_string(e + 10);
        ep.address.port = port;
        ep.address.text = ep.address.host + ":" + std::to_string(port);
        ep.address.resolved =
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(ep.address.host), port);
        region.endpoints.push_back(std::move(ep));
      }
    }
    runtime.config = &backend;
    for (int r = 0; r < kRegions; ++r) {
      const auto& region = backend.regions[r];
      balancing::RegionRuntime rr;
      rr.config = &region;
      for (int e = 0; e < kEndpointsPerRegion; ++e) {
        const auto& ep = region.endpoints[e];
        auto state = std::make_shared<balancing::EndpointState>(
            backend.name, region.name, ep.address.text, ep.address.resolved, ep.weight);
        // Spread the in-flight counts and latencies a little so least_conn and the mean do
        // real comparisons.
        state->in_flight.store(static_cast<std::uint32_t>((e * 3) % 5));
        state->rtt_ewma_us.store(places[r].rtt_us + static_cast<std::uint32_t>(e) * 500);
        if (policies && e < 2) {
          state->recovered_at_ns.store(balancing::steady_now_ns() - 5'000'000'000LL);
        }
        rr.endpoints.push_back(std::move(state));
      }
      runtime.regions.push_back(std::move(rr));
    }
    balancing::publish_region_health(runtime.regions.empty()
                                         ? std::span<const balancing::BackendRuntime>()
                                         : std::span<const balancing::BackendRuntime>(&runtime, 1),
                                     balancing::steady_now_ns());
  }
};

geo::ClientLocation frankfurt_client() {
  geo::ClientLocation c;
  c.has_coordinates = true;
  c.lat = 50.11;
  c.lon = 8.68;
  c.country[0] = 'D';
  c.country[1] = 'E';
  c.continent[0] = 'E';
  c.continent[1] = 'U';
  return c;
}

// order_regions + pick_endpoint in the best region: what Exchange does per request.
void steer(benchmark::State& state, config::SteeringPolicy policy, bool policies = false) {
  const Fixture f(policy, policies);
  const geo::ClientLocation client = frankfurt_client();
  const std::optional<config::Location> node = config::Location{50.11, 8.68};
  const balancing::TriedEndpoints tried;
  std::uint64_t rotation = 0;
  const std::int64_t now_ns = balancing::steady_now_ns();
  const std::int64_t slow_start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(f.backend.slow_start).count();
  const unsigned char address[4] = {192, 0, 2, 10};
  const std::uint64_t client_hash = balancing::client_hash(address, sizeof address);
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    const auto order = balancing::order_regions(f.runtime, client, node, now_ns, client_hash);
    benchmark::DoNotOptimize(order);
    const auto* picked = balancing::pick_endpoint(
        f.runtime.regions[order.index[0]], f.backend.balance,
        f.backend.max_connections_per_endpoint, tried, rotation, now_ns, true, slow_start_ns);
    benchmark::DoNotOptimize(picked);
  }
  allocs.done();
}

void BM_Steer_Nearest(benchmark::State& state) {
  steer(state, config::SteeringPolicy::nearest);
}
BENCHMARK(BM_Steer_Nearest);

void BM_Steer_Failover(benchmark::State& state) {
  steer(state, config::SteeringPolicy::failover);
}
BENCHMARK(BM_Steer_Failover);

// Nearest with every region capped (capacity, far from reached) and slow start under way.
void BM_Steer_Nearest_CapacitySlowStart(benchmark::State& state) {
  steer(state, config::SteeringPolicy::nearest, true);
}
BENCHMARK(BM_Steer_Nearest_CapacitySlowStart);

// The loopback test database: $MERIDIAN_SOURCE_DIR/tests/data/geoip/..., else relative to the
// current directory from the source root, or from build/bench (where ctest runs the smoke).
std::shared_ptr<const geo::GeoLocator> open_test_db(std::string& error) {
  constexpr const char* kRelative = "tests/data/geoip/loopback-city.mmdb";
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("MERIDIAN_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    candidates.push_back(std::string(dir) + "/" + kRelative);
  }
  candidates.push_back(kRelative);
  candidates.push_back(std::string("../../") + kRelative);
  candidates.push_back(std::string("../") + kRelative);
  for (const auto& path : candidates) {
    std::string why;
    if (auto db = geo::GeoLocator::open(path, why)) return db;
    if (error.empty()) error = why;
  }
  error = "cannot open " + std::string(kRelative) +
          " (set MERIDIAN_SOURCE_DIR to the source root): " + error;
  return nullptr;
}

void geo_lookup(benchmark::State& state, const char* address) {
  std::string error;
  const auto db = open_test_db(error);
  if (!db) {
    state.SkipWithError(error.c_str());
    return;
  }
  const auto a = boost::asio::ip::make_address(address);
  meridian::bench::AllocationCounter allocs(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(db->lookup(a));
  }
  allocs.done();
}

// 127.0.2.1: Frankfurt (City record: coordinates, country, continent).
void BM_Geo_LookupFoundV4(benchmark::State& state) {
  geo_lookup(state, "127.0.2.1");
}
BENCHMARK(BM_Geo_LookupFoundV4);

// 127.0.0.1: not in the database.
void BM_Geo_LookupNotFound(benchmark::State& state) {
  geo_lookup(state, "127.0.0.1");
}
BENCHMARK(BM_Geo_LookupNotFound);

// ::ffff:127.0.3.1 (Singapore) as a dual-stack listener reports an IPv4 peer.
void BM_Geo_LookupV4MappedV6(benchmark::State& state) {
  geo_lookup(state, "::ffff:127.0.3.1");
}
BENCHMARK(BM_Geo_LookupV4MappedV6);

}  // namespace
