// The origin traffic policy keys (docs/configuration.md): routes[].retry, regions[].capacity
// and traffic_dial, backends[].slow_start and endpoints[].resolve -- values, defaults and the
// errors with their positions.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config_test_support.hpp"

namespace meridian::config::test {
namespace {

using std::chrono::milliseconds;

TEST(TrafficPolicy, Defaults) {
  auto result = load_with_both("workers: 1\n");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const auto& retry = result.config->listeners.at(0).routes.at(0).retry;
  EXPECT_TRUE(retry.on_connect);
  EXPECT_TRUE(retry.on_reset);
  EXPECT_FALSE(retry.on_status.any());
  EXPECT_EQ(retry.per_try_timeout, milliseconds(0));
  EXPECT_DOUBLE_EQ(retry.budget, 0.2);
  EXPECT_EQ(retry.backoff, milliseconds(25));
  const auto& b = result.config->backends.at(0);
  EXPECT_EQ(b.slow_start, milliseconds(0));
  EXPECT_EQ(b.regions.at(0).capacity, 0u);
  EXPECT_DOUBLE_EQ(b.regions.at(0).traffic_dial, 1.0);
  EXPECT_FALSE(b.regions.at(0).endpoints.at(0).resolve_every.has_value());
}

TEST(TrafficPolicy, EveryKeyRead) {
  auto result = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: all
        backend: api
        retry: {on: [reset, 502, 503], per_try_timeout: 2s, budget: 12.5%, backoff: 10ms}
backends:
  - name: api
    slow_start: 30s
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        capacity: 200
        traffic_dial: 40%
        endpoints:
          - address: localhost:9000
            resolve: {every: 30s}
)");
  ASSERT_TRUE(result.ok()) << all_errors(result);
  const auto& retry = result.config->listeners.at(0).routes.at(0).retry;
  EXPECT_FALSE(retry.on_connect) << "`on` replaces the default list";
  EXPECT_TRUE(retry.on_reset);
  EXPECT_TRUE(retry.on_status.any());
  EXPECT_TRUE(retry.on_status[502]);
  EXPECT_TRUE(retry.on_status[503]);
  EXPECT_FALSE(retry.on_status[504]);
  EXPECT_EQ(retry.per_try_timeout, milliseconds(2000));
  EXPECT_DOUBLE_EQ(retry.budget, 0.125);
  EXPECT_EQ(retry.backoff, milliseconds(10));
  const auto& b = result.config->backends.at(0);
  EXPECT_EQ(b.slow_start, milliseconds(30'000));
  EXPECT_EQ(b.regions.at(0).capacity, 200u);
  EXPECT_DOUBLE_EQ(b.regions.at(0).traffic_dial, 0.4);
  EXPECT_EQ(b.regions.at(0).endpoints.at(0).resolve_every, milliseconds(30'000));
}

TEST(TrafficPolicy, BadValuesArePlacedExactly) {
  auto result = load(R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: all
        backend: api
        retry: {on: [connect, 302, sometimes], budget: 120%, per_try_timeout: soon}
backends:
  - name: api
    slow_start: -1s
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        capacity: lots
        traffic_dial: 0.5
        endpoints:
          - address: 127.0.0.1:9000
            resolve: {every: 30s}
          - address: localhost:9001
            resolve: {every: 500ms}
          - address: localhost:9002
            resolve: {}
)");
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].retry.on[1]", 7, 31,
                        "expected connect, reset or a status code from 400 to 599, got \"302\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].retry.on[2]", 7, 36, "\"sometimes\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].retry.budget", 7, 56,
                        "expected a percentage from 0% to 100%, like 20%, got \"120%\""));
  EXPECT_TRUE(has_error(result, "listeners[0].routes[0].retry.per_try_timeout", 7, 79, "soon"));
  EXPECT_TRUE(has_error(result, "backends[0].slow_start", 10, 17, "-1s"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].capacity", 14, 19, "lots"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].traffic_dial", 15, 23, "got \"0.5\""));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[0].resolve", 18, 22,
                        "resolve needs a host name, but \"127.0.0.1:9000\" is an IP address"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[1].resolve.every", 20, 30,
                        "resolve.every must be at least 1s"));
  EXPECT_TRUE(has_error(result, "backends[0].regions[0].endpoints[2].resolve.every", 22, 22,
                        "required key is missing"));
  EXPECT_EQ(result.errors.size(), 10u) << all_errors(result);
}

TEST(TrafficPolicy, DnsServersAndANameOnlyTheyKnow) {
  auto result = load(R"(
dns: {servers: [10.0.0.2, "10.0.0.3:5353", "[2001:db8::53]:53"]}
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes: [{name: all, backend: api}]
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        endpoints:
          - {address: "origin.does-not-exist.invalid:8443", resolve: {every: 5s}}
)");
  ASSERT_TRUE(result.ok()) << all_errors(result) << "\n(a name with resolve is not looked up)";
  EXPECT_EQ(result.config->dns.servers,
            (std::vector<std::string>{"10.0.0.2:53", "10.0.0.3:5353", "[2001:db8::53]:53"}));
  const auto& e = result.config->backends.at(0).regions.at(0).endpoints.at(0);
  EXPECT_EQ(e.address.host, "origin.does-not-exist.invalid");
  EXPECT_EQ(e.address.port, 8443);

  auto bad = load_with_both("dns: {servers: [ns1.example.com]}\n");
  EXPECT_TRUE(has_error(bad, "dns.servers[0]", 1, 17,
                        "expected a DNS server address like 10.0.0.2 or 10.0.0.2:53, got "
                        "\"ns1.example.com\""));
}

}  // namespace
}  // namespace meridian::config::test
