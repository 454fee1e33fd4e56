// build_backends: the run-time view mirrors the configuration, and an endpoint present in the
// previous configuration keeps its EndpointState (health, in-flight count) across a reload
// unless what it points at changed.
#include "meridian/balancing/backend_runtime.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::balancing {
namespace {

config::Endpoint ep(const std::string& ip, std::uint16_t port, std::uint32_t weight = 1,
                    const std::string& text = "") {
  config::Endpoint e;
  e.address.text = text.empty() ? ip + ":" + std::to_string(port) : text;
  e.address.host = text.empty() ? ip : text.substr(0, text.rfind(':'));
  e.address.port = port;
  e.address.resolved = boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(ip), port);
  e.weight = weight;
  return e;
}

config::Region reg(const std::string& name, std::vector<config::Endpoint> endpoints) {
  config::Region r;
  r.name = name;
  r.location = config::Location{50.0, 8.0};
  r.endpoints = std::move(endpoints);
  return r;
}

config::Backend backend(const std::string& name, std::vector<config::Region> regions) {
  config::Backend b;
  b.name = name;
  b.regions = std::move(regions);
  return b;
}

config::Config base_config() {
  config::Config c;
  c.backends.push_back(
      backend("api", {reg("eu-west", {ep("10.0.1.10", 8080), ep("10.0.1.11", 8080, 2)}),
                      reg("us-east", {ep("10.0.2.10", 8080)})}));
  c.backends.push_back(backend("static", {reg("eu-west", {ep("10.0.1.10", 8080)})}));
  return c;
}

const std::shared_ptr<EndpointState>& state(const std::vector<BackendRuntime>& b, std::size_t bi,
                                            std::size_t ri, std::size_t ei) {
  return b.at(bi).regions.at(ri).endpoints.at(ei);
}

TEST(BuildBackends, MirrorsTheConfiguration) {
  const config::Config c = base_config();
  const auto b = build_backends(c, {});
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].config, &c.backends[0]);
  EXPECT_EQ(b[1].config, &c.backends[1]);
  ASSERT_EQ(b[0].regions.size(), 2u);
  EXPECT_EQ(b[0].regions[0].config, &c.backends[0].regions[0]);
  EXPECT_EQ(b[0].regions[1].config, &c.backends[0].regions[1]);
  ASSERT_EQ(b[0].regions[0].endpoints.size(), 2u);
  ASSERT_EQ(b[0].regions[1].endpoints.size(), 1u);
  ASSERT_EQ(b[1].regions.size(), 1u);
  ASSERT_EQ(b[1].regions[0].endpoints.size(), 1u);

  const auto& e = *state(b, 0, 0, 1);
  EXPECT_EQ(e.backend, "api");
  EXPECT_EQ(e.region, "eu-west");
  EXPECT_EQ(e.address, "10.0.1.11:8080");
  EXPECT_EQ(e.target, c.backends[0].regions[0].endpoints[1].address.resolved);
  EXPECT_EQ(e.weight, 2u);
  EXPECT_EQ(e.in_flight.load(), 0u);
  EXPECT_TRUE(e.healthy.load());  // healthy from the moment it is configured
}

TEST(BuildBackends, EveryEndpointHasItsOwnState) {
  const config::Config c = base_config();
  const auto b = build_backends(c, {});
  // The same address in two backends is two endpoints: separate counts and health.
  EXPECT_NE(state(b, 0, 0, 0), state(b, 1, 0, 0));
  EXPECT_NE(state(b, 0, 0, 0), state(b, 0, 0, 1));
}

TEST(BuildBackends, KeepsStateForTheSameEndpoint) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  state(old_b, 0, 0, 0)->in_flight = 7;
  state(old_b, 0, 0, 0)->healthy = false;

  const config::Config new_config = base_config();  // a reload of the same file
  const auto new_b = build_backends(new_config, old_b);
  for (std::size_t bi = 0; bi < old_b.size(); ++bi) {
    for (std::size_t ri = 0; ri < old_b[bi].regions.size(); ++ri) {
      for (std::size_t ei = 0; ei < old_b[bi].regions[ri].endpoints.size(); ++ei) {
        EXPECT_EQ(state(new_b, bi, ri, ei), state(old_b, bi, ri, ei)) << bi << ri << ei;
      }
    }
  }
  EXPECT_EQ(state(new_b, 0, 0, 0)->in_flight.load(), 7u);
  EXPECT_FALSE(state(new_b, 0, 0, 0)->healthy.load());
  EXPECT_EQ(new_b[0].config, &new_config.backends[0]);  // points at the new configuration
}

TEST(BuildBackends, KeepsStateWhenEndpointsReorderOrOthersChange) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});

  config::Config c = base_config();
  auto& eps = c.backends[0].regions[0].endpoints;
  std::swap(eps[0], eps[1]);
  eps.push_back(ep("10.0.1.12", 8080));
  c.backends[0].regions.erase(c.backends[0].regions.begin() + 1);  // us-east removed
  const auto b = build_backends(c, old_b);
  EXPECT_EQ(state(b, 0, 0, 0), state(old_b, 0, 0, 1));
  EXPECT_EQ(state(b, 0, 0, 1), state(old_b, 0, 0, 0));
  EXPECT_EQ(state(b, 0, 0, 2)->address, "10.0.1.12:8080");
  ASSERT_EQ(b[0].regions.size(), 1u);
  EXPECT_EQ(state(b, 1, 0, 0), state(old_b, 1, 0, 0));
}

TEST(BuildBackends, NewStateWhenAddressChanges) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  state(old_b, 0, 0, 0)->in_flight = 3;

  config::Config c = base_config();
  c.backends[0].regions[0].endpoints[0] = ep("10.0.1.99", 8080);
  const auto b = build_backends(c, old_b);
  EXPECT_NE(state(b, 0, 0, 0), state(old_b, 0, 0, 0));
  EXPECT_EQ(state(b, 0, 0, 0)->address, "10.0.1.99:8080");
  EXPECT_EQ(state(b, 0, 0, 0)->in_flight.load(), 0u);
  EXPECT_EQ(state(b, 0, 0, 1), state(old_b, 0, 0, 1));  // its neighbour is kept
}

TEST(BuildBackends, NewStateWhenPortChanges) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  config::Config c = base_config();
  c.backends[0].regions[0].endpoints[0] = ep("10.0.1.10", 9090);
  const auto b = build_backends(c, old_b);
  EXPECT_NE(state(b, 0, 0, 0), state(old_b, 0, 0, 0));
}

TEST(BuildBackends, NewStateWhenWeightChanges) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  config::Config c = base_config();
  c.backends[0].regions[0].endpoints[1].weight = 5;
  const auto b = build_backends(c, old_b);
  EXPECT_NE(state(b, 0, 0, 1), state(old_b, 0, 0, 1));
  EXPECT_EQ(state(b, 0, 0, 1)->weight, 5u);
  EXPECT_EQ(state(b, 0, 0, 0), state(old_b, 0, 0, 0));
}

// Runtime overrides (POST /state) name regions and endpoints, so they survive a reload for the
// names that stay, even when an endpoint's state is replaced; the data path reads the stronger
// of the endpoint's and its region's.
TEST(BuildBackends, OverridesSurviveAReloadAndCombine) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  old_b[0].regions[1].state->admin_state = AdminState::drain;  // us-east
  state(old_b, 0, 0, 1)->own_admin_state.store(AdminState::disabled);
  apply_admin_state(old_b[0].regions[0]);
  apply_admin_state(old_b[0].regions[1]);
  EXPECT_EQ(state(old_b, 0, 1, 0)->admin_state.load(), AdminState::drain);
  EXPECT_EQ(state(old_b, 0, 0, 1)->admin_state.load(), AdminState::disabled);

  config::Config c = base_config();
  c.backends[0].regions[0].endpoints[1].weight = 5;  // a new state for 10.0.1.11
  const auto b = build_backends(c, old_b);
  EXPECT_EQ(b[0].regions[1].state, old_b[0].regions[1].state);
  EXPECT_EQ(state(b, 0, 1, 0)->admin_state.load(), AdminState::drain);
  EXPECT_NE(state(b, 0, 0, 1), state(old_b, 0, 0, 1));
  EXPECT_EQ(state(b, 0, 0, 1)->own_admin_state.load(), AdminState::disabled);
  EXPECT_EQ(state(b, 0, 0, 1)->admin_state.load(), AdminState::disabled);
  EXPECT_EQ(state(b, 0, 0, 0)->admin_state.load(), AdminState::active);
  // The same region name in another backend is another region.
  EXPECT_EQ(b[1].regions[0].state->admin_state, AdminState::active);

  // A region disabled over an endpoint that drains: disabled is stronger.
  b[0].regions[0].state->admin_state = AdminState::drain;
  apply_admin_state(b[0].regions[0]);
  EXPECT_EQ(state(b, 0, 0, 0)->admin_state.load(), AdminState::drain);
  EXPECT_EQ(state(b, 0, 0, 1)->admin_state.load(), AdminState::disabled);
}

TEST(AdminState, NamesRoundTrip) {
  for (const auto s : {AdminState::active, AdminState::drain, AdminState::disabled}) {
    EXPECT_EQ(parse_admin_state(admin_state_name(s)), s);
  }
  EXPECT_EQ(parse_admin_state("Drain"), std::nullopt);
  EXPECT_EQ(parse_admin_state(""), std::nullopt);
}

// A host name that resolves elsewhere at reload is a new endpoint, though its text is the same.
TEST(BuildBackends, NewStateWhenResolvedAddressChanges) {
  config::Config old_config;
  old_config.backends.push_back(
      backend("api", {reg("eu-west", {ep("10.0.1.10", 8080, 1, "api.internal:8080")})}));
  const auto old_b = build_backends(old_config, {});
  EXPECT_EQ(state(old_b, 0, 0, 0)->address, "api.internal:8080");

  config::Config same;
  same.backends.push_back(
      backend("api", {reg("eu-west", {ep("10.0.1.10", 8080, 1, "api.internal:8080")})}));
  EXPECT_EQ(state(build_backends(same, old_b), 0, 0, 0), state(old_b, 0, 0, 0));

  config::Config moved;
  moved.backends.push_back(
      backend("api", {reg("eu-west", {ep("10.0.9.9", 8080, 1, "api.internal:8080")})}));
  const auto b = build_backends(moved, old_b);
  EXPECT_NE(state(b, 0, 0, 0), state(old_b, 0, 0, 0));
  EXPECT_EQ(state(b, 0, 0, 0)->target.address().to_string(), "10.0.9.9");
}

TEST(BuildBackends, NewStateWhenEndpointMovesToAnotherRegion) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  config::Config c = base_config();
  // 10.0.1.10:8080 now listed under us-east instead of eu-west.
  c.backends[0].regions[1].endpoints.push_back(ep("10.0.1.10", 8080));
  c.backends[0].regions[0].endpoints.erase(c.backends[0].regions[0].endpoints.begin());
  const auto b = build_backends(c, old_b);
  const auto& moved = state(b, 0, 1, 1);
  EXPECT_EQ(moved->address, "10.0.1.10:8080");
  EXPECT_EQ(moved->region, "us-east");
  EXPECT_NE(moved, state(old_b, 0, 0, 0));
}

TEST(BuildBackends, NewStateWhenBackendRenamed) {
  const config::Config old_config = base_config();
  const auto old_b = build_backends(old_config, {});
  config::Config c = base_config();
  c.backends[0].name = "api2";
  const auto b = build_backends(c, old_b);
  EXPECT_NE(state(b, 0, 0, 0), state(old_b, 0, 0, 0));
  EXPECT_EQ(state(b, 0, 0, 0)->backend, "api2");
}

TEST(BuildBackends, ChainOfReloadsKeepsTheOriginalState) {
  config::Config c1 = base_config();
  auto b1 = build_backends(c1, {});
  const auto original = state(b1, 0, 1, 0);
  original->healthy = false;
  config::Config c2 = base_config();
  auto b2 = build_backends(c2, b1);
  b1.clear();  // the oldest snapshot goes away
  config::Config c3 = base_config();
  const auto b3 = build_backends(c3, b2);
  EXPECT_EQ(state(b3, 0, 1, 0), original);
  EXPECT_FALSE(state(b3, 0, 1, 0)->healthy.load());
}

TEST(BuildBackends, NumbersRegionsAcrossBackends) {
  // Each region gets its own per-worker balancing counter: ordinals are distinct across
  // backends, so two backends' round robins never share (and split) one counter.
  const auto b = build_backends(base_config(), {});
  EXPECT_EQ(b[0].regions[0].ordinal, 0u);
  EXPECT_EQ(b[0].regions[1].ordinal, 1u);
  EXPECT_EQ(b[1].regions[0].ordinal, 2u);
}

TEST(BuildBackends, UsesClientLocationOnlyWhenSteeringNeedsIt) {
  config::Config c = base_config();
  c.backends.push_back(
      backend("latency", {reg("a", {ep("10.0.3.1", 80)}), reg("b", {ep("10.0.3.2", 80)})}));
  c.backends.back().steering.policy = config::SteeringPolicy::latency;
  c.backends.push_back(backend("fenced", {reg("a", {ep("10.0.4.1", 80)})}));
  c.backends.back().steering.rules.push_back(config::GeoRule{{"EU"}, {}, {"a"}, false});
  const auto b = build_backends(c, {});
  EXPECT_TRUE(b[0].uses_client_location);   // nearest, two regions
  EXPECT_FALSE(b[1].uses_client_location);  // one region: nothing to choose
  EXPECT_FALSE(b[2].uses_client_location);  // latency policy: no geo term
  EXPECT_TRUE(b[3].uses_client_location);   // a fencing rule reads the client's continent
}

// An endpoint with `resolve`: one endpoint per address of the name, named by the address;
// none before the first answer; an address that stays keeps its state, a new one ramps.
TEST(BuildBackends, AResolvedNameIsOneEndpointPerAddress) {
  config::Config c;
  config::Endpoint named;
  named.address.text = "origin.example.test:8443";
  named.address.host = "origin.example.test";
  named.address.port = 8443;
  named.weight = 3;
  named.resolve_every = std::chrono::seconds(30);
  c.backends.push_back(backend("api", {reg("eu", {named, ep("10.0.9.9", 80)})}));

  const auto before_answer = build_backends(c, {});
  ASSERT_EQ(before_answer[0].regions[0].endpoints.size(), 1u) << "only the literal address";

  dns::ResolvedAddresses resolved;
  resolved["origin.example.test"] = {boost::asio::ip::make_address("10.1.0.1"),
                                     boost::asio::ip::make_address("2001:db8::7")};
  const auto first = build_backends(c, before_answer, &resolved);
  const auto& endpoints = first[0].regions[0].endpoints;
  ASSERT_EQ(endpoints.size(), 3u);
  EXPECT_EQ(endpoints[0]->address, "10.1.0.1:8443");
  EXPECT_EQ(endpoints[1]->address, "[2001:db8::7]:8443");
  EXPECT_EQ(endpoints[0]->resolved_from, "origin.example.test:8443");
  EXPECT_EQ(endpoints[0]->weight, 3u);
  EXPECT_EQ(endpoints[0]->target.port(), 8443);
  EXPECT_EQ(endpoints[2]->address, "10.0.9.9:80");
  EXPECT_NE(endpoints[0]->recovered_at_ns.load(), 0) << "added while serving: slow start";
  endpoints[1]->in_flight.store(4);

  resolved["origin.example.test"] = {boost::asio::ip::make_address("2001:db8::7"),
                                     boost::asio::ip::make_address("10.1.0.2")};
  const auto second = build_backends(c, first, &resolved);
  const auto& now = second[0].regions[0].endpoints;
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now[0]->address, "[2001:db8::7]:8443");
  EXPECT_EQ(now[0], endpoints[1]) << "the address that stayed keeps its state";
  EXPECT_EQ(now[0]->in_flight.load(), 4u);
  EXPECT_EQ(now[1]->address, "10.1.0.2:8443");
  EXPECT_EQ(now[2], endpoints[2]);
}

}  // namespace
}  // namespace meridian::balancing
