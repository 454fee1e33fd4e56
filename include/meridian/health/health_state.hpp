// The pure logic of active health checking (a backend's health_check): rise/fall counters with
// thresholds, the latency EWMA, the expected-status check and the interval jitter.
//
// Nothing here reads a clock, draws a random number or does I/O: the prober measures the
// round trip and draws the jitter, and hands the numbers in, so unit tests drive every rule
// with plain values. HealthChecker (health_checker.hpp) is the one caller in the server.
#pragma once

#include <chrono>
#include <cstdint>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"

namespace meridian::health {

// What a probe result did to the endpoint's health; the caller logs the transitions.
enum class Transition { none, became_healthy, became_unhealthy };

// Rise/fall counters of one endpoint, HAProxy style: the endpoint is healthy from the moment
// it is configured until `unhealthy_threshold` probes in a row fail; it is healthy again
// after `healthy_threshold` probes in a row succeed. Any success ends a run of failures and
// vice versa.
//
// Writes EndpointState::healthy on a transition and EndpointState::rtt_ewma_us on every
// success; workers only read those atomics. Thread: the health checker's (main) thread.
class HealthState {
 public:
  // Starts from `endpoint.healthy`: true for a newly configured endpoint, whatever it was for
  // an endpoint kept across a reload. Thresholds are >= 1 (the loader checks).
  HealthState(balancing::EndpointState& endpoint, std::uint32_t healthy_threshold,
              std::uint32_t unhealthy_threshold);

  // A reload may change the thresholds; the counters stay and the new thresholds apply from
  // the next result.
  void set_thresholds(std::uint32_t healthy_threshold, std::uint32_t unhealthy_threshold);

  // A probe answered with an expected status; `rtt` (request write start to response
  // complete) feeds the endpoint's latency EWMA.
  Transition record_success(std::chrono::microseconds rtt);
  // A probe failed: connect error, I/O error, timeout or unexpected status.
  Transition record_failure();

  bool healthy() const { return healthy_; }
  std::uint32_t consecutive_successes() const { return successes_; }
  std::uint32_t consecutive_failures() const { return failures_; }
  std::uint32_t healthy_threshold() const { return healthy_threshold_; }
  std::uint32_t unhealthy_threshold() const { return unhealthy_threshold_; }
  balancing::EndpointState& endpoint() const { return *endpoint_; }

 private:
  balancing::EndpointState* endpoint_;
  std::uint32_t healthy_threshold_;
  std::uint32_t unhealthy_threshold_;
  std::uint32_t successes_ = 0;
  std::uint32_t failures_ = 0;
  bool healthy_;
};

// Measured latency (steering's latency term): exponentially weighted moving average with alpha
// 0.3, in whole microseconds (rounded to nearest): next = 0.3 * sample + 0.7 * previous.
// `previous` 0 means no measurement yet, and the first sample is taken as is. The result is at
// least 1 (0 is reserved for "none") and saturates at UINT32_MAX (71 minutes).
std::uint32_t next_rtt_ewma_us(std::uint32_t previous_us, std::chrono::microseconds sample);

// True when `status` lies in the health check's expected_status range (inclusive).
inline bool is_expected_status(const config::HealthCheck& check, int status) {
  return check.expected_status.contains(status);
}

// The wait before the next probe: `interval` spread by +-10% so that probes of many
// endpoints (and of many nodes) do not fall into step. `unit` is a random number in [0, 1]
// (clamped): 0 gives 0.9 * interval, 0.5 the interval itself, 1 gives 1.1 * interval.
std::chrono::microseconds jittered_interval(config::Duration interval, double unit);

}  // namespace meridian::health
