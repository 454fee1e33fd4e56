// Steering across regions: eligibility, geo-fencing rules, score by geography and measured
// latency per policy, ties, the reason label (meridian_region_selected_total) and the kMax
// bound.
#include "meridian/balancing/steering.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::balancing {
namespace {

using config::Location;
using config::SteeringPolicy;
using Reason = RegionOrder::Reason;

constexpr std::int64_t kNow = 1'000'000'000'000;  // an arbitrary steady_clock reading, ns

// The loopback GeoIP database's cities (testdata/geoip/README.md) and the regions' sites.
constexpr Location kNewYork{40.71, -74.00};
constexpr Location kFrankfurt{50.11, 8.68};
constexpr Location kSingapore{1.35, 103.82};
constexpr Location kSaoPaulo{-23.55, -46.63};
constexpr Location kSydney{-33.87, 151.21};
constexpr Location kJohannesburg{-26.20, 28.05};
constexpr Location kDublin{53.35, -6.26};
constexpr Location kVirginia{38.9, -77.0};

struct RegionSpec {
  std::string name;
  std::optional<Location> location;
  int endpoints = 1;
};

// A backend built by hand: its configuration and the run-time view pointing into it. Not
// movable (the run-time view holds pointers into `config`); steering settings may be changed
// after construction as the regions vector is left alone.
class TestBackend {
 public:
  explicit TestBackend(const std::vector<RegionSpec>& specs,
                       SteeringPolicy policy = SteeringPolicy::nearest) {
    config.name = "api";
    config.steering.policy = policy;
    for (const auto& spec : specs) {
      config::Region r;
      r.name = spec.name;
      r.location = spec.location;
      r.endpoints.resize(static_cast<std::size_t>(spec.endpoints));
      config.regions.push_back(std::move(r));
    }
    runtime.config = &config;
    for (const auto& r : config.regions) {
      RegionRuntime region;
      region.config = &r;
      for (std::size_t k = 0; k < r.endpoints.size(); ++k) {
        const auto ip = boost::asio::ip::make_address_v4(
            "10.0." + std::to_string(runtime.regions.size()) + "." + std::to_string(k + 1));
        region.endpoints.push_back(std::make_shared<EndpointState>(
            "api", r.name, ip.to_string() + ":8080", boost::asio::ip::tcp::endpoint(ip, 8080), 1));
      }
      runtime.regions.push_back(std::move(region));
    }
  }
  TestBackend(const TestBackend&) = delete;
  TestBackend& operator=(const TestBackend&) = delete;

  EndpointState& endpoint(std::size_t region, std::size_t k = 0) {
    return *runtime.regions.at(region).endpoints.at(k);
  }
  // Every endpoint of `region` unhealthy (or healthy again).
  void set_healthy(std::size_t region, bool healthy) {
    for (auto& e : runtime.regions.at(region).endpoints)
      e->healthy.store(healthy);
  }
  // Every endpoint of `region` measuring `ms`.
  void set_rtt_ms(std::size_t region, double ms) {
    for (auto& e : runtime.regions.at(region).endpoints) {
      e->rtt_ewma_us.store(static_cast<std::uint32_t>(ms * 1000));
    }
  }
  void add_rule(std::vector<std::string> continents, std::vector<std::string> countries,
                std::vector<std::string> regions, bool strict = false) {
    config::GeoRule rule;
    rule.continents = std::move(continents);
    rule.countries = std::move(countries);
    rule.regions = std::move(regions);
    rule.strict = strict;
    config.steering.rules.push_back(std::move(rule));
  }

  config::Backend config;
  BackendRuntime runtime;
};

// eu-west (Dublin), us-east (Virginia), ap-southeast (Singapore), in that order.
std::vector<RegionSpec> three_regions(int endpoints = 1) {
  return {{"eu-west", kDublin, endpoints},
          {"us-east", kVirginia, endpoints},
          {"ap-southeast", kSingapore, endpoints}};
}
constexpr std::uint16_t kEu = 0;
constexpr std::uint16_t kUs = 1;
constexpr std::uint16_t kAp = 2;

// Copies a two-letter code (or "") into a ClientLocation field, NUL-terminated.
void set_code(char (&field)[3], const char* code) {
  for (std::size_t i = 0; i < 2; ++i) {
    field[i] = code[0] == '\0' ? '\0' : *code++;
  }
  field[2] = '\0';
}

geo::ClientLocation client_at(Location at, const char* country = "", const char* continent = "") {
  geo::ClientLocation c;
  c.has_coordinates = true;
  c.lat = at.lat;
  c.lon = at.lon;
  set_code(c.country, country);
  set_code(c.continent, continent);
  return c;
}

// A client GeoIP knows nothing of, or only its country and continent (a Country database).
geo::ClientLocation unknown_client(const char* country = "", const char* continent = "") {
  geo::ClientLocation c;
  set_code(c.country, country);
  set_code(c.continent, continent);
  return c;
}

std::vector<std::uint16_t> indices(const RegionOrder& order) {
  return {order.index.begin(), order.index.begin() + static_cast<std::ptrdiff_t>(order.count)};
}

RegionOrder order(const TestBackend& b, const geo::ClientLocation& client,
                  std::optional<Location> node = std::nullopt, std::int64_t now = kNow) {
  return order_regions(b.runtime, client, node, now);
}

using Order = std::vector<std::uint16_t>;

// ---- haversine ---------------------------------------------------------------------------

TEST(Haversine, FrankfurtToNewYorkIsAbout6200Km) {
  const double d = haversine_km(kFrankfurt.lat, kFrankfurt.lon, kNewYork.lat, kNewYork.lon);
  EXPECT_NEAR(d, 6200.0, 62.0);
  EXPECT_DOUBLE_EQ(d, haversine_km(kNewYork.lat, kNewYork.lon, kFrankfurt.lat, kFrankfurt.lon));
}

TEST(Haversine, SamePointIsZero) {
  EXPECT_DOUBLE_EQ(haversine_km(kSingapore.lat, kSingapore.lon, kSingapore.lat, kSingapore.lon),
                   0.0);
  EXPECT_DOUBLE_EQ(haversine_km(0, 0, 0, 0), 0.0);
}

TEST(Haversine, OtherKnownDistances) {
  // Half the Earth's circumference between antipodes, a quarter from the equator to a pole.
  EXPECT_NEAR(haversine_km(0, 0, 0, 180), 3.141592653589793 * 6371.0, 0.5);
  EXPECT_NEAR(haversine_km(0, 0, 90, 0), 3.141592653589793 * 6371.0 / 2, 0.5);
  // Crossing the antimeridian takes the short way round.
  EXPECT_NEAR(haversine_km(0, 179, 0, -179), 2 * 3.141592653589793 * 6371.0 / 180, 0.5);
  // Singapore - Sydney, about 6300 km.
  EXPECT_NEAR(haversine_km(kSingapore.lat, kSingapore.lon, kSydney.lat, kSydney.lon), 6300.0, 63.0);
}

// ---- eligibility and measured latency ----------------------------------------------------

TEST(RegionEligible, NeedsOneHealthyNotEjectedNotFullEndpoint) {
  TestBackend b({{"r", kDublin, 3}});
  const RegionRuntime& r = b.runtime.regions[0];
  EXPECT_TRUE(region_eligible(r, 0, kNow));

  b.endpoint(0, 0).healthy.store(false);
  b.endpoint(0, 1).ejected_until_ns.store(kNow + 1);
  EXPECT_TRUE(region_eligible(r, 0, kNow)) << "endpoint 2 is still fine";

  b.endpoint(0, 2).in_flight.store(4);
  EXPECT_TRUE(region_eligible(r, 0, kNow)) << "no cap";
  EXPECT_TRUE(region_eligible(r, 5, kNow)) << "below the cap";
  EXPECT_FALSE(region_eligible(r, 4, kNow)) << "at the cap: full";

  // The ejection ends at ejected_until_ns.
  EXPECT_TRUE(region_eligible(r, 4, kNow + 1));
}

TEST(RegionEligible, EmptyRegionIsNotEligible) {
  RegionRuntime r;
  EXPECT_FALSE(region_eligible(r, 0, kNow));
}

TEST(RegionMeasuredMs, MeanOverHealthyMeasuredEndpoints) {
  TestBackend b({{"r", kDublin, 5}});
  const RegionRuntime& r = b.runtime.regions[0];
  EXPECT_DOUBLE_EQ(region_measured_ms(r, kNow), 0.0) << "no measurement yet";

  b.endpoint(0, 0).rtt_ewma_us.store(10'000);
  b.endpoint(0, 1).rtt_ewma_us.store(20'000);
  b.endpoint(0, 2).rtt_ewma_us.store(90'000);
  b.endpoint(0, 2).healthy.store(false);  // left out
  b.endpoint(0, 3).rtt_ewma_us.store(0);  // not measured yet: left out, not counted as 0
  b.endpoint(0, 4).rtt_ewma_us.store(500);
  b.endpoint(0, 4).ejected_until_ns.store(kNow + 1);  // ejected: left out
  EXPECT_DOUBLE_EQ(region_measured_ms(r, kNow), 15.0);

  // Once the ejection is over the endpoint counts again: (10 + 20 + 0.5) / 3.
  EXPECT_DOUBLE_EQ(region_measured_ms(r, kNow + 1), 30.5 / 3);

  // Fullness does not matter to the measurement.
  b.endpoint(0, 0).in_flight.store(1000);
  EXPECT_DOUBLE_EQ(region_measured_ms(r, kNow + 1), 30.5 / 3);

  b.set_healthy(0, false);
  EXPECT_DOUBLE_EQ(region_measured_ms(r, kNow), 0.0) << "no healthy endpoint";
}

// ---- nearest by geography ----------------------------------------------------------------

struct CityCase {
  const char* city;
  Location at;
  std::uint16_t nearest;
};

std::string city_name(const ::testing::TestParamInfo<CityCase>& param_info) {
  std::string name = param_info.param.city;
  std::erase(name, ' ');
  return name;
}

class NearestByGeography : public ::testing::TestWithParam<CityCase> {};

TEST_P(NearestByGeography, ClosestRegionFirst) {
  TestBackend b(three_regions());
  const RegionOrder o = order(b, client_at(GetParam().at));
  ASSERT_EQ(o.count, 3u);
  EXPECT_EQ(o.index[0], GetParam().nearest) << GetParam().city;
  EXPECT_EQ(o.reason, Reason::nearest);
}

INSTANTIATE_TEST_SUITE_P(LoopbackCities, NearestByGeography,
                         ::testing::Values(CityCase{"New York", kNewYork, kUs},
                                           CityCase{"Frankfurt", kFrankfurt, kEu},
                                           CityCase{"Singapore", kSingapore, kAp},
                                           CityCase{"Sao Paulo", kSaoPaulo, kUs},
                                           CityCase{"Sydney", kSydney, kAp},
                                           CityCase{"Johannesburg", kJohannesburg, kAp}),
                         city_name);

TEST(Steering, FullOrderByDistance) {
  TestBackend b(three_regions());
  // Frankfurt: Dublin ~1090 km, Virginia ~6530 km, Singapore ~10260 km.
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kEu, kUs, kAp}));
  // New York: Virginia ~330 km, Dublin ~5100 km, Singapore ~15300 km.
  EXPECT_EQ(indices(order(b, client_at(kNewYork))), (Order{kUs, kEu, kAp}));
  // Singapore: itself, Dublin ~11200 km, Virginia ~15500 km.
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{kAp, kEu, kUs}));
}

// ---- latency term and policies -----------------------------------------------------------

TEST(Steering, LatencyTermReordersWhenNearRegionIsSlow) {
  TestBackend b(three_regions());
  // Frankfurt: geo_ms eu-west ~10.9, us-east ~65.3, ap-southeast ~102.6.
  b.set_rtt_ms(kEu, 100);  // eu-west: ~110.9 in all
  b.set_rtt_ms(kUs, 5);    // us-east: ~70.3
  b.set_rtt_ms(kAp, 5);    // ap-southeast: ~107.6
  const RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kUs, kAp, kEu}));
  EXPECT_EQ(o.reason, Reason::nearest) << "every region is up: the best one simply won";

  // A slower but still closer region keeps its place when the difference is small.
  b.set_rtt_ms(kEu, 50);  // ~60.9 < ~70.3
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kEu, kUs, kAp}));
}

TEST(Steering, WeightsScaleTheTerms) {
  TestBackend b(three_regions());
  b.set_rtt_ms(kEu, 100);
  b.set_rtt_ms(kUs, 5);
  b.set_rtt_ms(kAp, 5);
  // latency_weight 0: geography only, as policy geo.
  b.config.steering.latency_weight = 0;
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kEu, kUs, kAp}));
  // geo_weight 0: latency only; us-east and ap-southeast tie and keep the listed order.
  b.config.steering.latency_weight = 1;
  b.config.steering.geo_weight = 0;
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kUs, kAp, kEu}));
  // A heavy geo weight outweighs the latency again.
  b.config.steering.geo_weight = 10;
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kEu, kUs, kAp}));
}

TEST(Steering, LatencyPolicyIgnoresGeography) {
  TestBackend b(three_regions(), SteeringPolicy::latency);
  b.set_rtt_ms(kEu, 50);
  b.set_rtt_ms(kUs, 10);
  b.set_rtt_ms(kAp, 30);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kUs, kAp, kEu}));
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{kUs, kAp, kEu}));
  EXPECT_EQ(indices(order(b, unknown_client(), kSydney)), (Order{kUs, kAp, kEu}));
  // Nothing measured: all score 0 and the listed order stands.
  for (std::uint16_t r : {kEu, kUs, kAp})
    b.set_rtt_ms(r, 0);
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{kEu, kUs, kAp}));
}

TEST(Steering, LatencyPolicyAllowsRegionsWithoutLocation) {
  TestBackend b({{"a", std::nullopt}, {"b", std::nullopt}, {"c", kDublin}},
                SteeringPolicy::latency);
  b.set_rtt_ms(0, 30);
  b.set_rtt_ms(1, 20);
  b.set_rtt_ms(2, 40);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{1, 0, 2}));
}

TEST(Steering, RegionWithoutLocationHasNoGeoTerm) {
  // Under nearest a region without a location scores only its latency.
  TestBackend b({{"far", kSingapore}, {"nowhere", std::nullopt}});
  b.set_rtt_ms(1, 20);
  // Frankfurt - Singapore: ~102.6 geo_ms > 20.
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{1, 0}));
  // In Singapore the first region's geo term is 0, below the other's 20 ms.
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{0, 1}));
}

TEST(Steering, GeoPolicyIgnoresLatency) {
  TestBackend b(three_regions(), SteeringPolicy::geo);
  b.set_rtt_ms(kEu, 500);
  b.set_rtt_ms(kUs, 1);
  b.set_rtt_ms(kAp, 1);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(indices(order(b, client_at(kNewYork))), (Order{kUs, kEu, kAp}));
}

TEST(Steering, FailoverKeepsConfigOrder) {
  TestBackend b(three_regions(), SteeringPolicy::failover);
  b.set_rtt_ms(kEu, 500);
  for (const Location& at : {kFrankfurt, kNewYork, kSingapore, kSydney}) {
    const RegionOrder o = order(b, client_at(at));
    EXPECT_EQ(indices(o), (Order{kEu, kUs, kAp}));
    EXPECT_EQ(o.reason, Reason::nearest);
  }
  EXPECT_EQ(indices(order(b, unknown_client(), kSingapore)), (Order{kEu, kUs, kAp}));

  b.set_healthy(kEu, false);
  const RegionOrder o = order(b, client_at(kSingapore));
  EXPECT_EQ(indices(o), (Order{kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::failover);
}

// ---- unknown clients ---------------------------------------------------------------------

TEST(Steering, UnknownClientUsesNodeLocation) {
  TestBackend b(three_regions());
  EXPECT_EQ(indices(order(b, unknown_client(), kNewYork)), (Order{kUs, kEu, kAp}));
  EXPECT_EQ(indices(order(b, unknown_client(), kSingapore)), (Order{kAp, kEu, kUs}));
  // A client with a country and continent but no coordinates (Country database, or the
  // loopback database's JP entry) is placed at the node too.
  EXPECT_EQ(indices(order(b, unknown_client("JP", "AS"), kFrankfurt)), (Order{kEu, kUs, kAp}));
  // Coordinates, when known, win over the node's location.
  EXPECT_EQ(indices(order(b, client_at(kSingapore), kNewYork)), (Order{kAp, kEu, kUs}));
}

TEST(Steering, UnknownClientWithoutNodeLocationHasNoGeoTerm) {
  TestBackend b(three_regions());
  // No geography, no measurement: every score is 0 and the listed order stands.
  RegionOrder o = order(b, unknown_client());
  EXPECT_EQ(indices(o), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::nearest);
  // Latency alone orders them; the unmeasured region (0 ms) comes first.
  b.set_rtt_ms(kEu, 40);
  b.set_rtt_ms(kUs, 30);
  EXPECT_EQ(indices(order(b, unknown_client())), (Order{kAp, kUs, kEu}));
  b.set_rtt_ms(kAp, 35);
  EXPECT_EQ(indices(order(b, unknown_client())), (Order{kUs, kAp, kEu}));
}

// ---- ineligible regions and the failover reason -----------------------------------------

TEST(Steering, UnhealthyRegionIsSkippedAndReasonIsFailover) {
  TestBackend b(three_regions(2));
  b.set_healthy(kEu, false);
  const RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::failover);

  // One healthy endpoint keeps the region eligible.
  b.endpoint(kEu, 1).healthy.store(true);
  const RegionOrder back = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(back), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(back.reason, Reason::nearest);
}

TEST(Steering, DrainingRegionComesAfterEveryActiveOne) {
  TestBackend b(three_regions(2));
  for (auto& e : b.runtime.regions[kEu].endpoints)
    e->admin_state.store(AdminState::drain);
  EXPECT_EQ(region_availability(b.runtime.regions[kEu], 0, kNow), RegionAvailability::drain_only);
  // Nearest for Frankfurt, yet last; steered away from it counts as failover.
  RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kUs, kAp, kEu}));
  EXPECT_EQ(o.reason, Reason::failover);
  // Even a fencing rule does not put it first.
  b.add_rule({"EU"}, {}, {"eu-west"});
  o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kUs, kAp, kEu}));
  // With nothing else eligible it serves.
  b.set_healthy(kUs, false);
  b.set_healthy(kAp, false);
  o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kEu}));
  // One active endpoint makes the region active again.
  b.endpoint(kEu, 1).admin_state.store(AdminState::active);
  EXPECT_EQ(region_availability(b.runtime.regions[kEu], 0, kNow), RegionAvailability::active);
}

TEST(Steering, DisabledRegionIsNeverChosen) {
  TestBackend b(three_regions(1));
  b.endpoint(kEu).admin_state.store(AdminState::disabled);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{kUs, kAp}));
  b.endpoint(kUs).admin_state.store(AdminState::disabled);
  b.endpoint(kAp).admin_state.store(AdminState::disabled);
  EXPECT_TRUE(order(b, client_at(kFrankfurt)).empty());
}

TEST(Steering, AllEjectedRegionIsSkippedUntilTheEjectionEnds) {
  TestBackend b(three_regions(2));
  b.endpoint(kUs, 0).ejected_until_ns.store(kNow + 500);
  b.endpoint(kUs, 1).ejected_until_ns.store(kNow + 1000);
  RegionOrder o = order(b, client_at(kNewYork));
  EXPECT_EQ(indices(o), (Order{kEu, kAp}));
  EXPECT_EQ(o.reason, Reason::failover);

  // One endpoint back (its ejection over): eligible again.
  o = order(b, client_at(kNewYork), std::nullopt, kNow + 500);
  EXPECT_EQ(indices(o), (Order{kUs, kEu, kAp}));
  EXPECT_EQ(o.reason, Reason::nearest);

  // One ejected, the other unhealthy: still not eligible.
  b.endpoint(kUs, 1).healthy.store(false);
  b.endpoint(kUs, 0).ejected_until_ns.store(kNow + 1000);
  EXPECT_EQ(indices(order(b, client_at(kNewYork))), (Order{kEu, kAp}));
}

TEST(Steering, FullRegionIsSkipped) {
  TestBackend b(three_regions(2));
  b.config.max_connections_per_endpoint = 2;
  b.endpoint(kAp, 0).in_flight.store(2);
  b.endpoint(kAp, 1).in_flight.store(1);
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{kAp, kEu, kUs}));

  b.endpoint(kAp, 1).in_flight.store(2);
  const RegionOrder o = order(b, client_at(kSingapore));
  EXPECT_EQ(indices(o), (Order{kEu, kUs}));
  EXPECT_EQ(o.reason, Reason::failover);

  // Unlimited: never full.
  b.config.max_connections_per_endpoint = 0;
  EXPECT_EQ(indices(order(b, client_at(kSingapore))), (Order{kAp, kEu, kUs}));
}

TEST(Steering, LosingALesserRegionIsNotAFailover) {
  TestBackend b(three_regions());
  b.set_healthy(kAp, false);
  const RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kEu, kUs}));
  EXPECT_EQ(o.reason, Reason::nearest);
}

TEST(Steering, DeadRegionDoesNotLookFastForTheReason) {
  // latency: eu-west measured 80 ms, us-east 10 ms. When eu-west dies its healthy endpoints
  // have no measurement left; it must not count as a 0 ms region that would have won.
  TestBackend b(three_regions(), SteeringPolicy::latency);
  b.set_rtt_ms(kEu, 80);
  b.set_rtt_ms(kUs, 10);
  b.set_rtt_ms(kAp, 20);
  b.set_healthy(kEu, false);
  RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::nearest);

  // The best region dying is a failover.
  b.set_healthy(kEu, true);
  b.set_healthy(kUs, false);
  o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kAp, kEu}));
  EXPECT_EQ(o.reason, Reason::failover);
}

TEST(Steering, NoEligibleRegionGivesAnEmptyOrder) {
  TestBackend b(three_regions());
  for (std::uint16_t r : {kEu, kUs, kAp})
    b.set_healthy(r, false);
  const RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(o.count, 0u);
  EXPECT_TRUE(o.empty());
}

// ---- geo-fencing ------------------------------------------------------------------------

TEST(GeoFencing, ContinentRulePutsItsRegionsFirst) {
  TestBackend b(three_regions());
  // Odd on purpose, so that fencing and geography disagree: EU clients go to us-east and
  // ap-southeast first, ordered between themselves by score, then eu-west.
  b.add_rule({"EU"}, {}, {"ap-southeast", "us-east"});
  RegionOrder o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kUs, kAp, kEu}));
  EXPECT_EQ(o.reason, Reason::fenced);

  // A client on another continent is not covered.
  o = order(b, client_at(kSingapore, "SG", "AS"));
  EXPECT_EQ(indices(o), (Order{kAp, kEu, kUs}));
  EXPECT_EQ(o.reason, Reason::nearest);
}

TEST(GeoFencing, CountryRulePutsItsRegionsFirst) {
  TestBackend b(three_regions());
  b.add_rule({}, {"FR", "DE"}, {"us-east"});
  RegionOrder o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kUs, kEu, kAp}));
  EXPECT_EQ(o.reason, Reason::fenced);

  // Another European country is not in the list.
  o = order(b, client_at(kFrankfurt, "IE", "EU"));
  EXPECT_EQ(indices(o), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::nearest);
}

TEST(GeoFencing, RuleAppliesWithoutCoordinates) {
  // A Country database gives country and continent but no location: rules still match,
  // and the scores use the node's location.
  TestBackend b(three_regions());
  b.add_rule({"AS"}, {}, {"eu-west", "ap-southeast"});
  const RegionOrder o = order(b, unknown_client("JP", "AS"), kNewYork);
  // From New York eu-west (~5100 km) beats ap-southeast (~15300 km); us-east comes last.
  EXPECT_EQ(indices(o), (Order{kEu, kAp, kUs}));
  EXPECT_EQ(o.reason, Reason::fenced);
}

TEST(GeoFencing, FencedRegionThatWouldWinAnywayIsReportedFenced) {
  TestBackend b(three_regions());
  b.add_rule({"EU"}, {}, {"eu-west"});
  const RegionOrder o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::fenced);
}

TEST(GeoFencing, FirstMatchingRuleWins) {
  TestBackend b(three_regions());
  b.add_rule({}, {"DE"}, {"ap-southeast"});
  b.add_rule({"EU"}, {}, {"us-east"});
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt, "DE", "EU"))), (Order{kAp, kEu, kUs}));
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt, "FR", "EU"))), (Order{kUs, kEu, kAp}));
}

TEST(GeoFencing, UnknownCountryAndContinentMatchNoRule) {
  TestBackend b(three_regions());
  b.add_rule({"EU", "NA", "AS"}, {"DE", "US", "SG"}, {"ap-southeast"}, /*strict=*/true);
  const RegionOrder o = order(b, client_at(kFrankfurt));
  EXPECT_EQ(indices(o), (Order{kEu, kUs, kAp}));
  EXPECT_EQ(o.reason, Reason::nearest);
  EXPECT_EQ(indices(order(b, unknown_client(), kNewYork)), (Order{kUs, kEu, kAp}));
}

TEST(GeoFencing, StrictRuleKeepsOnlyItsRegions) {
  TestBackend b(three_regions());
  b.add_rule({"EU"}, {}, {"eu-west", "us-east"}, /*strict=*/true);
  RegionOrder o = order(b, client_at(kSingapore, "DE", "EU"));  // a German on holiday
  EXPECT_EQ(indices(o), (Order{kEu, kUs}));
  EXPECT_EQ(o.reason, Reason::fenced);

  // One fenced region down: the other one, a failover inside the fence.
  b.set_healthy(kEu, false);
  o = order(b, client_at(kSingapore, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kUs}));
  EXPECT_EQ(o.reason, Reason::failover);
}

TEST(GeoFencing, StrictRuleWithItsRegionsDownGivesNothing) {
  TestBackend b(three_regions());
  b.add_rule({"EU"}, {}, {"eu-west"}, /*strict=*/true);
  b.set_healthy(kEu, false);
  EXPECT_EQ(order(b, client_at(kFrankfurt, "DE", "EU")).count, 0u);
  // Clients the rule does not cover still get every eligible region.
  EXPECT_EQ(indices(order(b, client_at(kNewYork, "US", "NA"))), (Order{kUs, kAp}));
}

TEST(GeoFencing, NonStrictRuleWithItsRegionsDownFallsBackToTheOthers) {
  TestBackend b(three_regions());
  b.add_rule({"EU"}, {}, {"ap-southeast"});
  b.set_healthy(kAp, false);
  const RegionOrder o = order(b, client_at(kFrankfurt, "DE", "EU"));
  EXPECT_EQ(indices(o), (Order{kEu, kUs}));
  EXPECT_EQ(o.reason, Reason::failover);
}

TEST(GeoFencing, FailoverPolicyKeepsConfigOrderInsideAndOutsideTheFence) {
  TestBackend b(three_regions(), SteeringPolicy::failover);
  b.add_rule({"AS"}, {}, {"ap-southeast", "us-east"});
  EXPECT_EQ(indices(order(b, client_at(kSingapore, "SG", "AS"))), (Order{kUs, kAp, kEu}));
}

TEST(GeoFencing, UnknownRegionNamesAreIgnored) {
  TestBackend b(three_regions());
  b.add_rule({"EU"}, {}, {"mars-north", "us-east"});
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt, "DE", "EU"))), (Order{kUs, kEu, kAp}));
}

// ---- ties and bounds ---------------------------------------------------------------------

TEST(Steering, TiesGoToTheFirstListed) {
  // Two regions at the same place, same latency: the listed order decides, whichever it is.
  TestBackend b({{"a", kDublin}, {"b", kDublin}, {"c", kDublin}});
  for (std::uint16_t r = 0; r < 3; ++r)
    b.set_rtt_ms(r, 12);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{0, 1, 2}));
  // A tie among the later ones, the first one worse.
  b.set_rtt_ms(0, 13);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{1, 2, 0}));
  // Policy geo, different latencies, same place: a tie again.
  b.config.steering.policy = SteeringPolicy::geo;
  b.set_rtt_ms(2, 1);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt))), (Order{0, 1, 2}));
}

TEST(Steering, OnlyTheFirstKMaxRegionsAreConsidered) {
  std::vector<RegionSpec> specs;
  for (int i = 0; i < 40; ++i) {
    // All far from Singapore except region 35, which stands in it.
    // (append, not "r" + to_string: GCC 12 warns falsely, -Wrestrict, on the latter)
    std::string name = "r";
    name += std::to_string(i);
    specs.push_back({name, i == 35 ? kSingapore : kDublin});
  }
  TestBackend b(specs);
  b.set_rtt_ms(0, 5);  // region 0 is a little worse than the others at Dublin
  const RegionOrder o = order(b, client_at(kSingapore));
  ASSERT_EQ(o.count, RegionOrder::kMax);
  EXPECT_EQ(o.index[0], 1);
  EXPECT_EQ(o.index[RegionOrder::kMax - 1], 0);
  for (std::size_t k = 0; k < o.count; ++k)
    EXPECT_LT(o.index[k], RegionOrder::kMax);
  EXPECT_EQ(o.reason, Reason::nearest);

  // A rule naming a region beyond kMax fences nothing; strict leaves nothing.
  b.add_rule({"AS"}, {}, {"r35"}, /*strict=*/true);
  EXPECT_EQ(order(b, client_at(kSingapore, "SG", "AS")).count, 0u);
}

TEST(Steering, SingleRegion) {
  TestBackend b({{"only", kDublin}});
  const RegionOrder o = order(b, client_at(kSydney));
  EXPECT_EQ(indices(o), (Order{0}));
  EXPECT_EQ(o.reason, Reason::nearest);
}

TEST(Steering, SingleRegionWithoutRulesStillChecksEligibility) {
  // The single-region shortcut skips scoring, not the eligibility check.
  TestBackend b({{"only", kDublin, 2}});
  b.endpoint(0, 0).healthy.store(false);
  EXPECT_EQ(indices(order(b, client_at(kSydney))), (Order{0}));
  b.endpoint(0, 1).ejected_until_ns.store(kNow + 1);
  EXPECT_EQ(order(b, client_at(kSydney)).count, 0u);
}

TEST(Steering, SingleRegionStrictRuleElsewhereGivesNothing) {
  // With rules present the full path runs: a strict fence that names no region of this
  // backend leaves no candidate.
  TestBackend b({{"only", kDublin}});
  b.add_rule({"OC"}, {}, {"elsewhere"}, /*strict=*/true);
  EXPECT_EQ(order(b, client_at(kSydney, "AU", "OC")).count, 0u);
  EXPECT_EQ(indices(order(b, client_at(kFrankfurt, "DE", "EU"))), (Order{0}));
}

}  // namespace
}  // namespace meridian::balancing
