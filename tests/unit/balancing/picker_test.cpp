// Choosing an endpoint inside one region: least_conn by in-flight requests divided by weight
// with rotating ties, weighted round robin, weighted random; unhealthy, full and already-tried
// endpoints skipped.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/balancing/endpoint_picker.hpp"

namespace meridian::balancing {
namespace {

using config::Balance;

std::shared_ptr<EndpointState> endpoint(int index, std::uint32_t weight = 1,
                                        std::uint32_t in_flight = 0, bool healthy = true) {
  const std::string address = "10.0.0." + std::to_string(index + 1) + ":8080";
  auto e = std::make_shared<EndpointState>(
      "api", "eu-west", address,
      boost::asio::ip::tcp::endpoint(
          boost::asio::ip::make_address_v4("10.0.0." + std::to_string(index + 1)), 8080),
      weight);
  e->in_flight.store(in_flight);
  e->healthy.store(healthy);
  return e;
}

// weights[i] is endpoint i's weight.
RegionRuntime region(const std::vector<std::uint32_t>& weights) {
  RegionRuntime r;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    r.endpoints.push_back(endpoint(static_cast<int>(i), weights[i]));
  }
  return r;
}

// Index of the picked endpoint in region.endpoints, or -1 for nullptr.
int pick(const RegionRuntime& r, Balance b, std::uint64_t& rotation, std::uint32_t cap = 0,
         const TriedEndpoints& tried = {}) {
  const auto* picked = pick_endpoint(r, b, cap, tried, rotation);
  if (picked == nullptr) return -1;
  const auto index = picked - r.endpoints.data();
  EXPECT_GE(index, 0);
  EXPECT_LT(static_cast<std::size_t>(index), r.endpoints.size())
      << "pick_endpoint must return an element of region.endpoints";
  return static_cast<int>(index);
}

// How often each endpoint is picked over `n` picks (nothing held in flight).
std::vector<int> histogram(const RegionRuntime& r, Balance b, int n, std::uint64_t rotation = 0,
                           std::uint32_t cap = 0, const TriedEndpoints& tried = {}) {
  std::vector<int> counts(r.endpoints.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int k = pick(r, b, rotation, cap, tried);
    if (k >= 0) ++counts[static_cast<std::size_t>(k)];
  }
  return counts;
}

// ---------------------------------------------------------------------------------------
// is_available, TriedEndpoints, InFlightGuard.

TEST(IsAvailable, HealthAndCap) {
  auto e = endpoint(0);
  EXPECT_TRUE(is_available(*e, 0));
  e->in_flight = 1000;
  EXPECT_TRUE(is_available(*e, 0));  // 0 = unlimited
  EXPECT_FALSE(is_available(*e, 1000));
  EXPECT_TRUE(is_available(*e, 1001));
  e->in_flight = 0;
  e->healthy = false;
  EXPECT_FALSE(is_available(*e, 0));
  EXPECT_FALSE(is_available(*e, 10));
}

TEST(TriedEndpoints, AddAndContains) {
  auto a = endpoint(0);
  auto b = endpoint(1);
  TriedEndpoints tried;
  EXPECT_FALSE(tried.contains(a.get()));
  tried.add(a.get());
  EXPECT_TRUE(tried.contains(a.get()));
  EXPECT_FALSE(tried.contains(b.get()));
  EXPECT_FALSE(tried.contains(nullptr));
}

TEST(InFlightGuard, CountsWhileAlive) {
  auto e = endpoint(0);
  {
    InFlightGuard g(e.get());
    EXPECT_EQ(e->in_flight.load(), 1u);
    EXPECT_EQ(g.get(), e.get());
    {
      InFlightGuard g2(e.get());
      EXPECT_EQ(e->in_flight.load(), 2u);
    }
    EXPECT_EQ(e->in_flight.load(), 1u);
  }
  EXPECT_EQ(e->in_flight.load(), 0u);
}

TEST(InFlightGuard, DefaultIsEmpty) {
  InFlightGuard g;
  EXPECT_EQ(g.get(), nullptr);
  g.reset();  // harmless
  EXPECT_EQ(g.get(), nullptr);
}

TEST(InFlightGuard, ResetReleasesOnce) {
  auto e = endpoint(0);
  InFlightGuard g(e.get());
  g.reset();
  EXPECT_EQ(e->in_flight.load(), 0u);
  EXPECT_EQ(g.get(), nullptr);
  g.reset();
  EXPECT_EQ(e->in_flight.load(), 0u);
}

TEST(InFlightGuard, MoveTransfersTheCount) {
  auto e = endpoint(0);
  InFlightGuard a(e.get());
  InFlightGuard b(std::move(a));
  EXPECT_EQ(e->in_flight.load(), 1u);
  EXPECT_EQ(a.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.get(), e.get());
  a.reset();
  EXPECT_EQ(e->in_flight.load(), 1u);
  b.reset();
  EXPECT_EQ(e->in_flight.load(), 0u);
}

TEST(InFlightGuard, MoveAssignReleasesThePreviousEndpoint) {
  auto e0 = endpoint(0);
  auto e1 = endpoint(1);
  InFlightGuard a(e0.get());
  InFlightGuard b(e1.get());
  a = std::move(b);
  EXPECT_EQ(e0->in_flight.load(), 0u);
  EXPECT_EQ(e1->in_flight.load(), 1u);
  EXPECT_EQ(a.get(), e1.get());
  EXPECT_EQ(b.get(), nullptr);  // NOLINT(bugprone-use-after-move)
  {
    InFlightGuard sink = std::move(a);
    EXPECT_EQ(e1->in_flight.load(), 1u);
  }
  EXPECT_EQ(e1->in_flight.load(), 0u);
}

TEST(InFlightGuard, StoredInAVector) {
  auto e = endpoint(0);
  std::vector<InFlightGuard> guards;
  for (int i = 0; i < 100; ++i)
    guards.emplace_back(e.get());  // reallocations move guards
  EXPECT_EQ(e->in_flight.load(), 100u);
  guards.erase(guards.begin(), guards.begin() + 40);
  EXPECT_EQ(e->in_flight.load(), 60u);
  guards.clear();
  EXPECT_EQ(e->in_flight.load(), 0u);
}

// ---------------------------------------------------------------------------------------
// Common to every policy.

class EveryPolicy : public ::testing::TestWithParam<Balance> {};

TEST_P(EveryPolicy, EmptyRegionGivesNull) {
  RegionRuntime r;
  std::uint64_t rotation = 0;
  EXPECT_EQ(pick(r, GetParam(), rotation), -1);
}

TEST_P(EveryPolicy, AllUnhealthyGivesNull) {
  RegionRuntime r = region({1, 2, 3});
  for (auto& e : r.endpoints)
    e->healthy = false;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, GetParam(), rotation), -1);
}

TEST_P(EveryPolicy, AllFullGivesNull) {
  RegionRuntime r = region({1, 5});
  r.endpoints[0]->in_flight = 2;
  r.endpoints[1]->in_flight = 3;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, GetParam(), rotation, 2), -1);
}

TEST_P(EveryPolicy, AllTriedGivesNull) {
  RegionRuntime r = region({1, 1});
  TriedEndpoints tried;
  tried.add(r.endpoints[0].get());
  tried.add(r.endpoints[1].get());
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, GetParam(), rotation, 0, tried), -1);
}

TEST_P(EveryPolicy, UnhealthySkipped) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[1]->healthy = false;
  const auto counts = histogram(r, GetParam(), 300);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[0] + counts[2], 300);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[2], 0);
}

TEST_P(EveryPolicy, FullSkipped) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[0]->in_flight = 4;  // at the cap of 4
  r.endpoints[2]->in_flight = 3;  // below it
  const auto counts = histogram(r, GetParam(), 300, 0, 4);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1] + counts[2], 300);
}

TEST_P(EveryPolicy, TriedSkipped) {
  RegionRuntime r = region({5, 1, 1});
  TriedEndpoints tried;
  tried.add(r.endpoints[0].get());
  const auto counts = histogram(r, GetParam(), 300, 0, 0, tried);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1] + counts[2], 300);
}

TEST_P(EveryPolicy, SingleAvailableEndpointAlwaysChosen) {
  RegionRuntime r = region({1, 1, 1, 1});
  r.endpoints[0]->healthy = false;
  r.endpoints[1]->in_flight = 9;
  TriedEndpoints tried;
  tried.add(r.endpoints[3].get());
  const auto counts = histogram(r, GetParam(), 50, 0, 9, tried);
  EXPECT_EQ(counts[2], 50);
}

TEST_P(EveryPolicy, RotationAdvances) {
  RegionRuntime r = region({1, 1});
  std::uint64_t rotation = 41;
  pick(r, GetParam(), rotation);
  EXPECT_NE(rotation, 41u);
}

TEST_P(EveryPolicy, DisabledIsNeverChosen) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[1]->admin_state = AdminState::disabled;
  const auto counts = histogram(r, GetParam(), 300);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[0] + counts[2], 300);
  r.endpoints[0]->admin_state = AdminState::disabled;
  r.endpoints[2]->admin_state = AdminState::disabled;
  std::uint64_t rotation = 0;
  EXPECT_EQ(pick(r, GetParam(), rotation), -1);
}

TEST_P(EveryPolicy, DrainingTakesRequestsOnlyWhenNothingElseCan) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[0]->admin_state = AdminState::drain;
  auto counts = histogram(r, GetParam(), 300);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1] + counts[2], 300);
  // The active ones unhealthy, full or already tried: the draining one is the last resort.
  r.endpoints[1]->healthy = false;
  TriedEndpoints tried;
  tried.add(r.endpoints[2].get());
  counts = histogram(r, GetParam(), 20, 0, 0, tried);
  EXPECT_EQ(counts[0], 20);
}

INSTANTIATE_TEST_SUITE_P(Balance, EveryPolicy,
                         ::testing::Values(Balance::least_conn, Balance::round_robin,
                                           Balance::random),
                         [](const ::testing::TestParamInfo<Balance>& param_info) {
                           switch (param_info.param) {
                             case Balance::least_conn:
                               return std::string("least_conn");
                             case Balance::round_robin:
                               return std::string("round_robin");
                             case Balance::random:
                               return std::string("random");
                             case Balance::ring_hash:
                               return std::string("ring_hash");
                             case Balance::maglev:
                               return std::string("maglev");
                           }
                           return std::string("unknown");
                         });

// ---------------------------------------------------------------------------------------
// least_conn.

TEST(LeastConn, PicksFewestInFlight) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[0]->in_flight = 3;
  r.endpoints[1]->in_flight = 1;
  r.endpoints[2]->in_flight = 2;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation), 1);
}

TEST(LeastConn, AllTiedRotateEvenly) {
  RegionRuntime r = region({1, 1, 1});
  const auto counts = histogram(r, Balance::least_conn, 300);
  EXPECT_EQ(counts, (std::vector<int>{100, 100, 100}));
}

TEST(LeastConn, ConsecutiveTiedPicksDiffer) {
  RegionRuntime r = region({1, 1, 1, 1});
  std::uint64_t rotation = 7;
  int previous = pick(r, Balance::least_conn, rotation);
  for (int i = 0; i < 20; ++i) {
    const int k = pick(r, Balance::least_conn, rotation);
    EXPECT_NE(k, previous);
    previous = k;
  }
}

// Ties rotate among the tied endpoints only: one busy endpoint must not make the idle ones
// share unevenly.
TEST(LeastConn, TiesAmongSubsetRotateEvenly) {
  RegionRuntime r = region({1, 1, 1});
  r.endpoints[0]->in_flight = 5;
  const auto counts = histogram(r, Balance::least_conn, 300);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 150) << "counts " << ::testing::PrintToString(counts);
  EXPECT_EQ(counts[2], 150) << "counts " << ::testing::PrintToString(counts);
}

// Same with an unhealthy endpoint in front of the tied ones.
TEST(LeastConn, TiesAfterUnhealthyEndpointRotateEvenly) {
  RegionRuntime r = region({1, 1, 1, 1});
  r.endpoints[0]->healthy = false;
  const auto counts = histogram(r, Balance::least_conn, 300);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[1], 100) << "counts " << ::testing::PrintToString(counts);
  EXPECT_EQ(counts[2], 100) << "counts " << ::testing::PrintToString(counts);
  EXPECT_EQ(counts[3], 100) << "counts " << ::testing::PrintToString(counts);
}

TEST(LeastConn, LoadIsInFlightDividedByWeight) {
  RegionRuntime r = region({2, 1});
  std::uint64_t rotation = 0;
  // 2/2 == 1/1: a tie, both get picked, evenly.
  r.endpoints[0]->in_flight = 2;
  r.endpoints[1]->in_flight = 1;
  EXPECT_EQ(histogram(r, Balance::least_conn, 100), (std::vector<int>{50, 50}));
  // 3/2 > 1/1.
  r.endpoints[0]->in_flight = 3;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation), 1);
  // 1/2 < 1/1.
  r.endpoints[0]->in_flight = 1;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation), 0);
}

TEST(LeastConn, HeavyWeightBeatsLightWeightAtEqualCount) {
  RegionRuntime r = region({1, 4});
  r.endpoints[0]->in_flight = 3;
  r.endpoints[1]->in_flight = 3;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation), 1);
}

// Requests held in flight (never released) spread in proportion to weight.
TEST(LeastConn, HeldRequestsSpreadByWeight) {
  RegionRuntime r = region({3, 1, 2});
  std::vector<InFlightGuard> held;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 60; ++i) {
    const auto* e = pick_endpoint(r, Balance::least_conn, 0, {}, rotation);
    ASSERT_NE(e, nullptr);
    held.emplace_back(e->get());
  }
  EXPECT_EQ(r.endpoints[0]->in_flight.load(), 30u);
  EXPECT_EQ(r.endpoints[1]->in_flight.load(), 10u);
  EXPECT_EQ(r.endpoints[2]->in_flight.load(), 20u);
  held.clear();
  for (const auto& e : r.endpoints)
    EXPECT_EQ(e->in_flight.load(), 0u);
}

TEST(LeastConn, FullEndpointSkippedEvenWhenLeastLoaded) {
  RegionRuntime r = region({10, 1});
  r.endpoints[0]->in_flight = 2;  // load 0.2, but at the cap of 2
  r.endpoints[1]->in_flight = 1;  // load 1
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation, 2), 1);
}

TEST(LeastConn, UnhealthySkippedEvenWhenIdle) {
  RegionRuntime r = region({1, 1});
  r.endpoints[0]->healthy = false;
  r.endpoints[1]->in_flight = 10;
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation), 1);
}

TEST(LeastConn, TriedSkippedEvenWhenIdle) {
  RegionRuntime r = region({1, 1});
  r.endpoints[1]->in_flight = 10;
  TriedEndpoints tried;
  tried.add(r.endpoints[0].get());
  std::uint64_t rotation = 0;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(r, Balance::least_conn, rotation, 0, tried), 1);
}

// ---------------------------------------------------------------------------------------
// round_robin.

TEST(RoundRobin, EqualWeightsAlternate) {
  RegionRuntime r = region({1, 1, 1});
  std::uint64_t rotation = 0;
  std::vector<int> order;
  for (int i = 0; i < 9; ++i)
    order.push_back(pick(r, Balance::round_robin, rotation));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2}));
}

TEST(RoundRobin, WeightedExactOverEveryCycle) {
  RegionRuntime r = region({1, 2, 3});
  std::uint64_t rotation = 0;
  for (int cycle = 0; cycle < 50; ++cycle) {
    std::vector<int> counts(3, 0);
    for (int i = 0; i < 6; ++i)
      ++counts[static_cast<std::size_t>(pick(r, Balance::round_robin, rotation))];
    ASSERT_EQ(counts, (std::vector<int>{1, 2, 3})) << "cycle " << cycle;
  }
}

TEST(RoundRobin, WeightedExactFromAnyStart) {
  RegionRuntime r = region({5, 1, 2});
  for (std::uint64_t start : {0ull, 3ull, 7ull, 123456789ull, ~0ull - 3}) {
    std::vector<int> counts(3, 0);
    std::uint64_t rotation = start;
    for (int i = 0; i < 8 * 10; ++i) {
      ++counts[static_cast<std::size_t>(pick(r, Balance::round_robin, rotation))];
    }
    EXPECT_EQ(counts, (std::vector<int>{50, 10, 20})) << "start " << start;
  }
}

TEST(RoundRobin, WeightsOfAvailableEndpointsOnly) {
  RegionRuntime r = region({1, 4, 3});
  r.endpoints[1]->healthy = false;
  EXPECT_EQ(histogram(r, Balance::round_robin, 400), (std::vector<int>{100, 0, 300}));
}

// ---------------------------------------------------------------------------------------
// random.

TEST(Random, WeightedRoughlyProportional) {
  RegionRuntime r = region({1, 3});
  const int n = 40000;
  const auto counts = histogram(r, Balance::random, n, 12345);
  EXPECT_NEAR(static_cast<double>(counts[1]) / n, 0.75, 0.02) << ::testing::PrintToString(counts);
}

TEST(Random, EqualWeightsRoughlyEven) {
  RegionRuntime r = region({1, 1, 1, 1});
  const int n = 40000;
  const auto counts = histogram(r, Balance::random, n, 99);
  for (int c : counts)
    EXPECT_NEAR(static_cast<double>(c) / n, 0.25, 0.02);
}

TEST(Random, ManyWeights) {
  RegionRuntime r = region({1, 2, 3, 4});
  const int n = 100000;
  const auto counts = histogram(r, Balance::random, n, 7);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(counts[i]) / n, static_cast<double>(i + 1) / 10.0, 0.02)
        << "endpoint " << i << " " << ::testing::PrintToString(counts);
  }
}

TEST(Random, NotASimpleCycle) {
  // Weighted random is not round robin: the sequence is not periodic with the weight total.
  RegionRuntime r = region({1, 1});
  std::uint64_t rotation = 0;
  std::vector<int> order;
  for (int i = 0; i < 64; ++i)
    order.push_back(pick(r, Balance::random, rotation));
  int changes = 0;
  for (std::size_t i = 1; i < order.size(); ++i)
    changes += order[i] != order[i - 1];
  EXPECT_GT(changes, 10);
  EXPECT_LT(changes, 60);
}

TEST(Random, DeterministicForARotationValue) {
  RegionRuntime r = region({3, 5, 2});
  for (std::uint64_t start : {0ull, 1ull, 42ull, 1ull << 40}) {
    std::uint64_t a = start;
    std::uint64_t b = start;
    EXPECT_EQ(pick(r, Balance::random, a), pick(r, Balance::random, b));
    EXPECT_EQ(a, b);
  }
}

}  // namespace
}  // namespace meridian::balancing
