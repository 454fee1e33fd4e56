#include "meridian/health/health_state.hpp"

#include <algorithm>
#include <limits>

namespace meridian::health {

HealthState::HealthState(balancing::EndpointState& endpoint, std::uint32_t healthy_threshold,
                         std::uint32_t unhealthy_threshold)
    : endpoint_(&endpoint),
      healthy_threshold_(std::max<std::uint32_t>(1, healthy_threshold)),
      unhealthy_threshold_(std::max<std::uint32_t>(1, unhealthy_threshold)),
      healthy_(endpoint.healthy.load(std::memory_order_relaxed)) {}

void HealthState::set_thresholds(std::uint32_t healthy_threshold,
                                 std::uint32_t unhealthy_threshold) {
  healthy_threshold_ = std::max<std::uint32_t>(1, healthy_threshold);
  unhealthy_threshold_ = std::max<std::uint32_t>(1, unhealthy_threshold);
}

Transition HealthState::record_success(std::chrono::microseconds rtt) {
  failures_ = 0;
  if (successes_ < std::numeric_limits<std::uint32_t>::max()) ++successes_;
  auto& ewma = endpoint_->rtt_ewma_us;
  ewma.store(next_rtt_ewma_us(ewma.load(std::memory_order_relaxed), rtt),
             std::memory_order_relaxed);
  if (healthy_ || successes_ < healthy_threshold_) return Transition::none;
  healthy_ = true;
  // Stored before `healthy`: a worker that sees the endpoint healthy also sees it ramping.
  endpoint_->recovered_at_ns.store(balancing::steady_now_ns(), std::memory_order_relaxed);
  endpoint_->healthy.store(true, std::memory_order_release);
  return Transition::became_healthy;
}

Transition HealthState::record_failure() {
  successes_ = 0;
  if (failures_ < std::numeric_limits<std::uint32_t>::max()) ++failures_;
  if (!healthy_ || failures_ < unhealthy_threshold_) return Transition::none;
  healthy_ = false;
  endpoint_->healthy.store(false, std::memory_order_relaxed);
  return Transition::became_unhealthy;
}

std::uint32_t next_rtt_ewma_us(std::uint32_t previous_us, std::chrono::microseconds sample) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint32_t>::max();
  const std::uint64_t s = std::min<std::uint64_t>(
      kMax, static_cast<std::uint64_t>(std::max<std::int64_t>(0, sample.count())));
  // Integer arithmetic keeps the values exact: 0.3 * s + 0.7 * p = (3 s + 7 p) / 10.
  const std::uint64_t p = previous_us;
  const std::uint64_t next = p == 0 ? s : (3 * s + 7 * p + 5) / 10;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(next, 1, kMax));
}

std::chrono::microseconds jittered_interval(config::Duration interval, double unit) {
  const double u = std::clamp(unit, 0.0, 1.0);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(interval).count();
  return std::chrono::microseconds(
      static_cast<std::int64_t>(static_cast<double>(us) * (0.9 + 0.2 * u) + 0.5));
}

}  // namespace meridian::health
