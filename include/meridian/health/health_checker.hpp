// Active health checks (a backend's health_check): one prober per node, on the main thread's
// io_context, whatever the number of workers, so N workers do not multiply probe traffic. The
// checker publishes its verdicts through the EndpointState atomics (healthy, rtt_ewma_us) that
// every worker reads; nothing else crosses threads.
//
// Shape after Envoy's health checkers: a base session per endpoint owns the schedule (first
// probe at once, then every interval +-10% jitter), the thresholds (HealthState) and the
// counters; the probe itself (HTTP/1.1 GET over a kept-alive connection) is a subclass, the
// seam where another probe type would go.
//
// Thread: every member function must be called on the thread that runs the io_context.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include <boost/asio/io_context.hpp>

#include "meridian/balancing/backend_runtime.hpp"

namespace meridian::health {

namespace detail {
class ActiveCheck;
}

// Probe counts of one endpoint, kept across reloads while the endpoint is (they feed
// meridian_health_checks_total{result} and /status).
struct EndpointCheckStats {
  std::uint64_t successes = 0;
  std::uint64_t failures = 0;
  std::uint32_t consecutive_successes = 0;
  std::uint32_t consecutive_failures = 0;
  bool healthy = true;
  std::string last_failure;  // reason of the latest failed probe; "" when none yet
};

class HealthChecker {
 public:
  explicit HealthChecker(boost::asio::io_context& ioc);
  // `seed` fixes the jitter sequence (tests); the other constructor seeds from the OS.
  HealthChecker(boost::asio::io_context& ioc, std::uint64_t seed);
  ~HealthChecker();  // stop()
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts checking `backends` (at start-up and after each reload). `owner` keeps `backends`
  // alive (e.g. the Snapshot that holds them); it is held until the next update() or stop().
  // - Every endpoint of a backend with a health_check is probed; the first probe goes out
  //   at once, not after one interval.
  // - An endpoint kept across the reload (the same EndpointState) keeps its counters and its
  //   connection; the new settings apply from its next probe.
  // - Endpoints of backends without health_check are not probed and count as healthy (an
  //   endpoint whose backend lost its health_check becomes healthy again).
  // - Endpoints no longer present stop being probed; their connections close.
  void update(std::shared_ptr<const void> owner,
              std::span<const balancing::BackendRuntime> backends);

  // Stops every probe and closes every connection. update() may start again afterwards.
  void stop();

  // A worker could not connect to `endpoint` (EndpointState::probe_requested was set for
  // this report): counted as a failed probe of the endpoint, which is probed again at once.
  // Ignored for an endpoint that is not probed (no health_check) or already unhealthy. The
  // pointer is only compared, never followed, so a report that outlived its endpoint is
  // harmless.
  void passive_failure(const balancing::EndpointState* endpoint);

  // Counters of `endpoint`, or nullopt when it is not being probed.
  std::optional<EndpointCheckStats> stats(const balancing::EndpointState& endpoint) const;
  // Number of endpoints being probed.
  std::size_t size() const { return checks_.size(); }

 private:
  boost::asio::io_context& ioc_;
  std::uint64_t seed_state_;  // splitmix64 state; seeds each session's own jitter source
  std::shared_ptr<const void> owner_;
  std::unordered_map<const balancing::EndpointState*, std::shared_ptr<detail::ActiveCheck>> checks_;
};

}  // namespace meridian::health
