// Spill-over and shedding in steering (docs/http-behaviour.md): a region at its capacity,
// the shedding formula for a region short of healthy endpoints, traffic_dial per client
// address, slow start for a recovered region and a recovered endpoint, and the reasons they
// give (overflow, shed).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/balancing/backend_runtime.hpp"
#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/balancing/steering.hpp"

namespace meridian::balancing {
namespace {

using Reason = RegionOrder::Reason;

constexpr std::int64_t kNow = 1'000'000'000'000;  // an arbitrary steady_clock reading, ns
constexpr std::int64_t kSecond = 1'000'000'000;

// Two regions under policy failover (configuration order decides): "primary" first, then
// "secondary", `endpoints` each. Not movable: the run-time view points into `config`.
class TwoRegions {
 public:
  explicit TwoRegions(int endpoints = 8) {
    config.name = "api";
    config.steering.policy = config::SteeringPolicy::failover;
    for (const char* name : {"primary", "secondary"}) {
      config::Region r;
      r.name = name;
      r.endpoints.resize(static_cast<std::size_t>(endpoints));
      config.regions.push_back(std::move(r));
    }
    runtime.config = &config;
    for (const auto& r : config.regions) {
      RegionRuntime region;
      region.config = &r;
      const std::string salt = "api/" + r.name;
      region.salt = client_hash(reinterpret_cast<const unsigned char*>(salt.data()), salt.size());
      for (std::size_t k = 0; k < r.endpoints.size(); ++k) {
        const auto ip = boost::asio::ip::make_address_v4(
            "10.0." + std::to_string(runtime.regions.size()) + "." + std::to_string(k + 1));
        region.endpoints.push_back(std::make_shared<EndpointState>(
            "api", r.name, ip.to_string() + ":8080", boost::asio::ip::tcp::endpoint(ip, 8080), 1));
      }
      runtime.regions.push_back(std::move(region));
    }
    publish();
  }
  TwoRegions(const TwoRegions&) = delete;
  TwoRegions& operator=(const TwoRegions&) = delete;

  EndpointState& endpoint(std::size_t region, std::size_t k) {
    return *runtime.regions.at(region).endpoints.at(k);
  }
  void publish(std::int64_t now = kNow) {
    publish_region_health(std::span<const BackendRuntime>(&runtime, 1), now);
  }
  // The order for the client numbered `n` (its hash as the data path makes it).
  RegionOrder order_for(std::uint32_t n, std::int64_t now = kNow) const {
    const unsigned char address[4] = {198, 51, static_cast<unsigned char>(n >> 8),
                                      static_cast<unsigned char>(n)};
    return order_regions(runtime, geo::ClientLocation{}, std::nullopt, now,
                         client_hash(address, sizeof address));
  }
  // Of `clients` distinct clients, how many are steered to the secondary region first.
  int sent_elsewhere(int clients, std::int64_t now = kNow) const {
    int n = 0;
    for (int c = 0; c < clients; ++c) {
      if (order_for(static_cast<std::uint32_t>(c), now).index[0] == 1) ++n;
    }
    return n;
  }

  config::Backend config;
  BackendRuntime runtime;
};

TEST(Capacity, AFullRegionSpillsToTheNextAsOverflow) {
  TwoRegions b(2);
  b.config.regions[0].capacity = 20;
  b.endpoint(0, 0).in_flight.store(10);
  b.endpoint(0, 1).in_flight.store(9);
  auto order = b.order_for(1);
  ASSERT_EQ(order.count, 2u);
  EXPECT_EQ(order.index[0], 0) << "19 in flight: room for one more";
  EXPECT_EQ(order.reason, Reason::nearest);

  b.endpoint(0, 1).in_flight.store(10);
  order = b.order_for(1);
  ASSERT_EQ(order.count, 2u) << "a full region stays a candidate, after the others";
  EXPECT_EQ(order.index[0], 1);
  EXPECT_EQ(order.index[1], 0);
  EXPECT_EQ(order.reason, Reason::overflow);
}

TEST(Capacity, EveryRegionFullStillServesFromTheBest) {
  TwoRegions b(1);
  b.config.regions[0].capacity = 1;
  b.config.regions[1].capacity = 1;
  b.endpoint(0, 0).in_flight.store(1);
  b.endpoint(1, 0).in_flight.store(1);
  const auto order = b.order_for(1);
  ASSERT_EQ(order.count, 2u);
  EXPECT_EQ(order.index[0], 0);
}

TEST(Shedding, FollowsTheFormulaOfTheDocumentation) {
  // shed = max(0, 0.5 - healthy/configured): 8 endpoints.
  TwoRegions b(8);
  auto keep = [&] {
    b.publish();
    return region_keep_share(b.runtime.regions[0],
                             region_view(b.runtime.regions[0], b.config, kNow));
  };
  EXPECT_DOUBLE_EQ(keep(), 1.0);
  for (std::size_t k = 0; k < 4; ++k)
    b.endpoint(0, k).healthy.store(false);
  EXPECT_DOUBLE_EQ(keep(), 1.0) << "4 of 8: half, nothing shed";
  b.endpoint(0, 4).healthy.store(false);
  EXPECT_DOUBLE_EQ(keep(), 0.875) << "3 of 8";
  b.endpoint(0, 5).healthy.store(false);
  EXPECT_DOUBLE_EQ(keep(), 0.75) << "2 of 8";
  b.endpoint(0, 6).ejected_until_ns.store(kNow + kSecond);
  EXPECT_DOUBLE_EQ(keep(), 0.625) << "1 of 8 (an ejected one does not count)";
}

TEST(Shedding, SixOfEightDownSendsAQuarterOfTheClientsToTheNextRegion) {
  TwoRegions b(8);
  for (std::size_t k = 0; k < 6; ++k)
    b.endpoint(0, k).healthy.store(false);
  b.publish();
  const int elsewhere = b.sent_elsewhere(4000);
  EXPECT_NEAR(elsewhere, 1000, 120);
  // The shed clients count as `shed`, the others as nearest.
  int shed = 0;
  for (std::uint32_t c = 0; c < 4000; ++c) {
    const auto order = b.order_for(c);
    if (order.index[0] == 1) {
      EXPECT_EQ(order.reason, Reason::shed);
      ++shed;
    } else {
      EXPECT_EQ(order.reason, Reason::nearest);
    }
  }
  EXPECT_EQ(shed, elsewhere);
}

TEST(Shedding, NotCountedYetShedsNothing) {
  TwoRegions b(8);
  for (std::size_t k = 0; k < 7; ++k)
    b.endpoint(0, k).healthy.store(false);
  b.runtime.regions[0].state->healthy_endpoints.store(RegionState::kNotCounted);
  EXPECT_EQ(b.sent_elsewhere(500), 0);
}

TEST(TrafficDial, HalfSendsHalfOfTheClientsAwayEachConsistently) {
  TwoRegions b(2);
  b.config.regions[0].traffic_dial = 0.5;
  const int elsewhere = b.sent_elsewhere(4000);
  EXPECT_NEAR(elsewhere, 2000, 150);
  for (std::uint32_t c = 0; c < 200; ++c) {
    const auto first = b.order_for(c).index[0];
    for (int again = 0; again < 5; ++again) {
      EXPECT_EQ(b.order_for(c).index[0], first) << "client " << c << " bounced";
    }
  }
}

TEST(TrafficDial, ZeroSendsEveryClientAwayAndAClientComesBackWhenTheDialRises) {
  TwoRegions b(2);
  b.config.regions[0].traffic_dial = 0.0;
  EXPECT_EQ(b.sent_elsewhere(1000), 1000);
  // Raising the dial only brings clients back: one kept at 30% is kept at 60%.
  b.config.regions[0].traffic_dial = 0.3;
  std::vector<bool> kept_at_30;
  for (std::uint32_t c = 0; c < 1000; ++c)
    kept_at_30.push_back(b.order_for(c).index[0] == 0);
  b.config.regions[0].traffic_dial = 0.6;
  for (std::uint32_t c = 0; c < 1000; ++c) {
    if (kept_at_30[c]) {
      EXPECT_EQ(b.order_for(c).index[0], 0) << "client " << c;
    }
  }
}

TEST(TrafficDial, ASheddingRegionIsStillTheLastResort) {
  TwoRegions b(2);
  b.config.regions[0].traffic_dial = 0.0;
  b.endpoint(1, 0).healthy.store(false);
  b.endpoint(1, 1).healthy.store(false);
  const auto order = b.order_for(7);
  ASSERT_EQ(order.count, 1u);
  EXPECT_EQ(order.index[0], 0) << "the only eligible region serves whatever its dial";
}

TEST(SlowStart, RampIsLinearFromTenPercent) {
  TwoRegions b(1);
  const std::int64_t ten_s = 10 * kSecond;
  auto& e = b.endpoint(0, 0);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, ten_s, kNow), 1.0) << "never recovered";
  e.recovered_at_ns.store(kNow);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, ten_s, kNow), 0.1);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, ten_s, kNow + 5 * kSecond), 0.55);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, ten_s, kNow + ten_s), 1.0);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, 0, kNow), 1.0) << "slow start off";
  // The end of an ejection is a recovery too.
  e.recovered_at_ns.store(0);
  e.ejected_until_ns.store(kNow);
  EXPECT_DOUBLE_EQ(slow_start_ramp(e, ten_s, kNow + 5 * kSecond), 0.55);
}

TEST(SlowStart, ARecoveredRegionsShareRises) {
  TwoRegions b(2);
  b.config.slow_start = std::chrono::seconds(10);
  b.endpoint(0, 0).recovered_at_ns.store(kNow);
  b.endpoint(0, 1).recovered_at_ns.store(kNow);
  b.publish(kNow);
  const int at_start = 4000 - b.sent_elsewhere(4000, kNow);
  const int half_way = 4000 - b.sent_elsewhere(4000, kNow + 5 * kSecond);
  const int after = 4000 - b.sent_elsewhere(4000, kNow + 10 * kSecond);
  EXPECT_NEAR(at_start, 400, 80);
  EXPECT_NEAR(half_way, 2200, 150);
  EXPECT_EQ(after, 4000);
  // One endpoint that never left keeps the region whole: only a region that came back as a
  // whole ramps.
  b.endpoint(0, 1).recovered_at_ns.store(0);
  b.publish(kNow);
  EXPECT_EQ(b.sent_elsewhere(1000, kNow), 0);
}

TEST(SlowStart, ARecoveredEndpointGetsAboutItsRampsShare) {
  TwoRegions b(2);
  auto& region = b.runtime.regions[0];
  const std::int64_t ten_s = 10 * kSecond;
  b.endpoint(0, 1).recovered_at_ns.store(kNow);  // ramp 0.1 at kNow, 0.55 at +5 s
  for (const auto balance :
       {config::Balance::least_conn, config::Balance::round_robin, config::Balance::random}) {
    for (const auto& [at, ramp] : {std::pair{kNow, 0.1}, std::pair{kNow + 5 * kSecond, 0.55}}) {
      std::uint64_t rotation = 0;
      int to_ramping = 0;
      constexpr int kPicks = 20000;
      for (int i = 0; i < kPicks; ++i) {
        const auto* picked =
            pick_endpoint(region, balance, 0, TriedEndpoints{}, rotation, at, true, ten_s);
        ASSERT_NE(picked, nullptr);
        if (picked->get() == &b.endpoint(0, 1)) ++to_ramping;
      }
      // Ramp r times its full share: half of the picks with one equal peer.
      EXPECT_NEAR(static_cast<double>(to_ramping) / kPicks, ramp / 2, 0.03)
          << "balance " << static_cast<int>(balance) << " ramp " << ramp;
    }
  }
}

TEST(SlowStart, ARampingEndpointAloneIsStillPicked) {
  TwoRegions b(1);
  b.endpoint(0, 0).recovered_at_ns.store(kNow);
  std::uint64_t rotation = 0;
  for (int i = 0; i < 100; ++i) {
    EXPECT_NE(pick_endpoint(b.runtime.regions[0], config::Balance::least_conn, 0, TriedEndpoints{},
                            rotation, kNow, true, 10 * kSecond),
              nullptr);
  }
}

}  // namespace
}  // namespace meridian::balancing
