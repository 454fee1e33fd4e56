// HealthState: rise/fall thresholds (healthy from the start, as in HAProxy), the latency
// EWMA written to the endpoint (alpha 0.3, first sample as is), the expected-status range and
// the interval jitter. Plain values in, no clock.
#include "meridian/health/health_state.hpp"

#include <chrono>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace meridian::health {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

balancing::EndpointState make_endpoint() {
  return balancing::EndpointState(
      "api", "eu-west", "10.0.1.10:8080",
      boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("10.0.1.10"), 8080), 1);
}

TEST(HealthState, HealthyFromTheStart) {
  auto e = make_endpoint();
  HealthState s(e, 2, 3);
  EXPECT_TRUE(s.healthy());
  EXPECT_TRUE(e.healthy.load());
  EXPECT_EQ(s.consecutive_successes(), 0u);
  EXPECT_EQ(s.consecutive_failures(), 0u);
  EXPECT_EQ(e.rtt_ewma_us.load(), 0u);
}

TEST(HealthState, BecomesUnhealthyAfterUnhealthyThresholdFailuresInARow) {
  auto e = make_endpoint();
  HealthState s(e, 2, 3);
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_TRUE(e.healthy.load());
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
  EXPECT_FALSE(s.healthy());
  EXPECT_FALSE(e.healthy.load());
  EXPECT_EQ(s.consecutive_failures(), 3u);
  // Further failures are no new transition.
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_FALSE(e.healthy.load());
  EXPECT_EQ(s.consecutive_failures(), 4u);
}

TEST(HealthState, ASuccessBreaksARunOfFailures) {
  auto e = make_endpoint();
  HealthState s(e, 2, 3);
  s.record_failure();
  s.record_failure();
  EXPECT_EQ(s.record_success(milliseconds(5)), Transition::none);
  EXPECT_EQ(s.consecutive_failures(), 0u);
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_TRUE(e.healthy.load());
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
}

TEST(HealthState, BecomesHealthyAgainAfterHealthyThresholdSuccessesInARow) {
  auto e = make_endpoint();
  HealthState s(e, 2, 1);
  ASSERT_EQ(s.record_failure(), Transition::became_unhealthy);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
  EXPECT_FALSE(e.healthy.load());
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::became_healthy);
  EXPECT_TRUE(s.healthy());
  EXPECT_TRUE(e.healthy.load());
  EXPECT_EQ(s.consecutive_successes(), 2u);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
}

TEST(HealthState, AFailureBreaksARunOfSuccesses) {
  auto e = make_endpoint();
  HealthState s(e, 3, 1);
  ASSERT_EQ(s.record_failure(), Transition::became_unhealthy);
  s.record_success(milliseconds(1));
  s.record_success(milliseconds(1));
  EXPECT_EQ(s.record_failure(), Transition::none);  // already unhealthy
  EXPECT_EQ(s.consecutive_successes(), 0u);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
  EXPECT_FALSE(e.healthy.load());
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::became_healthy);
}

TEST(HealthState, ThresholdsOfOneFlipOnEveryChange) {
  auto e = make_endpoint();
  HealthState s(e, 1, 1);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::became_healthy);
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
}

TEST(HealthState, StartsFromTheEndpointsCurrentHealth) {
  // An endpoint kept across a reload keeps its health.
  auto e = make_endpoint();
  e.healthy.store(false);
  HealthState s(e, 2, 3);
  EXPECT_FALSE(s.healthy());
  EXPECT_EQ(s.record_failure(), Transition::none);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::none);
  EXPECT_EQ(s.record_success(milliseconds(1)), Transition::became_healthy);
}

TEST(HealthState, NewThresholdsApplyFromTheNextResult) {
  auto e = make_endpoint();
  HealthState s(e, 2, 5);
  s.record_failure();
  s.record_failure();
  s.set_thresholds(2, 3);
  EXPECT_EQ(s.unhealthy_threshold(), 3u);
  EXPECT_EQ(s.consecutive_failures(), 2u);  // counters stay
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
}

TEST(HealthState, ZeroThresholdsAreTreatedAsOne) {
  auto e = make_endpoint();
  HealthState s(e, 0, 0);
  EXPECT_EQ(s.healthy_threshold(), 1u);
  EXPECT_EQ(s.unhealthy_threshold(), 1u);
  EXPECT_EQ(s.record_failure(), Transition::became_unhealthy);
}

TEST(HealthState, SuccessesFeedTheLatencyEwma) {
  auto e = make_endpoint();
  HealthState s(e, 2, 3);
  s.record_success(milliseconds(10));
  EXPECT_EQ(e.rtt_ewma_us.load(), 10'000u);  // first sample as is
  s.record_success(milliseconds(20));
  EXPECT_EQ(e.rtt_ewma_us.load(), 13'000u);  // 0.3 * 20 + 0.7 * 10
  s.record_success(milliseconds(30));
  EXPECT_EQ(e.rtt_ewma_us.load(), 18'100u);  // 0.3 * 30 + 0.7 * 13
  s.record_failure();
  EXPECT_EQ(e.rtt_ewma_us.load(), 18'100u);  // failures measure nothing
}

TEST(HealthState, EwmaIsKeptAcrossAReloadedState) {
  auto e = make_endpoint();
  e.rtt_ewma_us.store(10'000);
  HealthState s(e, 2, 3);
  s.record_success(milliseconds(20));
  EXPECT_EQ(e.rtt_ewma_us.load(), 13'000u);
}

TEST(RttEwma, ExactValues) {
  EXPECT_EQ(next_rtt_ewma_us(0, microseconds(10'000)), 10'000u);
  EXPECT_EQ(next_rtt_ewma_us(10'000, microseconds(20'000)), 13'000u);
  EXPECT_EQ(next_rtt_ewma_us(13'000, microseconds(30'000)), 18'100u);
  EXPECT_EQ(next_rtt_ewma_us(20'000, microseconds(10'000)), 17'000u);
  EXPECT_EQ(next_rtt_ewma_us(1'000, microseconds(1'000)), 1'000u);
  // Rounded to the nearest microsecond: 0.3 * 1 + 0.7 * 2 = 1.7.
  EXPECT_EQ(next_rtt_ewma_us(2, microseconds(1)), 2u);
  // 0.3 * 2 + 0.7 * 1 = 1.3.
  EXPECT_EQ(next_rtt_ewma_us(1, microseconds(2)), 1u);
}

TEST(RttEwma, NeverZeroAfterAMeasurementAndSaturates) {
  EXPECT_EQ(next_rtt_ewma_us(0, microseconds(0)), 1u);  // 0 means "none"
  EXPECT_EQ(next_rtt_ewma_us(0, microseconds(-5)), 1u);
  EXPECT_EQ(next_rtt_ewma_us(1, microseconds(0)), 1u);
  constexpr auto kMax = std::numeric_limits<std::uint32_t>::max();
  EXPECT_EQ(next_rtt_ewma_us(0, std::chrono::hours(100)), kMax);
  EXPECT_EQ(next_rtt_ewma_us(kMax, std::chrono::hours(100)), kMax);
}

TEST(ExpectedStatus, DefaultRangeIs200To399Inclusive) {
  config::HealthCheck check;
  EXPECT_FALSE(is_expected_status(check, 199));
  EXPECT_TRUE(is_expected_status(check, 200));
  EXPECT_TRUE(is_expected_status(check, 302));
  EXPECT_TRUE(is_expected_status(check, 399));
  EXPECT_FALSE(is_expected_status(check, 400));
  EXPECT_FALSE(is_expected_status(check, 503));
}

TEST(ExpectedStatus, CustomRange) {
  config::HealthCheck check;
  check.expected_status = {204, 204};
  EXPECT_FALSE(is_expected_status(check, 200));
  EXPECT_TRUE(is_expected_status(check, 204));
  EXPECT_FALSE(is_expected_status(check, 205));
}

TEST(Jitter, StaysWithinTenPercent) {
  const config::Duration interval(2000);
  EXPECT_EQ(jittered_interval(interval, 0.0), microseconds(1'800'000));
  EXPECT_EQ(jittered_interval(interval, 0.5), microseconds(2'000'000));
  EXPECT_EQ(jittered_interval(interval, 1.0), microseconds(2'200'000));
  EXPECT_EQ(jittered_interval(interval, 0.25), microseconds(1'900'000));
  for (double u = 0; u < 1.0; u += 0.01) {
    const auto d = jittered_interval(interval, u);
    EXPECT_GE(d, microseconds(1'800'000));
    EXPECT_LE(d, microseconds(2'200'000));
  }
}

TEST(Jitter, ClampsTheRandomNumber) {
  const config::Duration interval(50);
  EXPECT_EQ(jittered_interval(interval, -1.0), microseconds(45'000));
  EXPECT_EQ(jittered_interval(interval, 7.0), microseconds(55'000));
}

}  // namespace
}  // namespace meridian::health
