// One endpoint's active health checks (internal to the health module): the schedule, the
// thresholds, the counters and the transition log, shared by the probes of each protocol
// (http_check.cpp: HTTP/1.1; h2_check.cpp: HTTP/2 and h2c).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"
#include "meridian/core/log.hpp"
#include "meridian/health/health_checker.hpp"
#include "meridian/health/health_state.hpp"
#include "meridian/net/deadline_list.hpp"

namespace meridian::health {

namespace asio = boost::asio;
using Clock = net::Clock;

namespace detail {

// splitmix64 (Steele, Lea, Flood 2014): 8 bytes of state per session is plenty for jitter.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A uniform number in [0, 1) from the top 53 bits.
inline double unit_random(std::uint64_t& state) {
  return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
}

inline std::string endpoint_name(const balancing::EndpointState& e) {
  return "backend " + e.backend + " region " + e.region + " endpoint " + e.address;
}

// One endpoint's checks: the schedule (first probe at once, then each interval +-10% after
// the previous probe ended, as Envoy does), the thresholds (HealthState), the counters and
// the transition log. Subclasses implement one probe. The session stays alive while an
// operation holds shared_from_this(); after stop() every pending handler returns at once.
//
// The probe interval of an endpoint that is still healthy but has failed its last probe(s).
constexpr config::Duration kFastInterval{200};

class ActiveCheck : public std::enable_shared_from_this<ActiveCheck> {
 public:
  ActiveCheck(asio::io_context& ioc, std::shared_ptr<balancing::EndpointState> endpoint,
              const config::HealthCheck& check, std::uint64_t seed)
      : ioc_(ioc),
        endpoint_(std::move(endpoint)),
        check_(check),
        state_(*endpoint_, check.healthy_threshold, check.unhealthy_threshold),
        timer_(ioc),
        rng_(seed) {}
  virtual ~ActiveCheck() = default;
  ActiveCheck(const ActiveCheck&) = delete;
  ActiveCheck& operator=(const ActiveCheck&) = delete;

  void start() { arm(Clock::now()); }  // the first probe goes out at once, not after an interval

  // A reload kept the endpoint: new settings apply from the next probe, and a shorter
  // interval also shortens the wait in progress.
  void reconfigure(const config::HealthCheck& check) {
    const bool shorter = check.interval < check_.interval;
    check_ = check;
    state_.set_thresholds(check.healthy_threshold, check.unhealthy_threshold);
    if (shorter && !probing_ && !stopped_) {
      const auto when = Clock::now() + jittered_interval(check_.interval, unit_random(rng_));
      if (when < timer_.expiry()) arm(when);
    }
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    ++wait_seq_;
    timer_.cancel();
    on_stop();
  }

  // The data path could not connect to the endpoint. That counts as a failed probe, and the
  // next probe goes out at once rather than after the interval, so a dead endpoint is down
  // within about one probe timeout instead of unhealthy_threshold intervals. Coming back
  // stays the probes' business (healthy_threshold). One report counts until the probe it
  // triggered has answered, so a burst of failed requests is one failure, not a flap.
  // The probe dials a new connection, as the request did (a kept-alive probe connection
  // would pass where new ones fail, e.g. a full accept queue), and comes kFastInterval after
  // the previous probe at the earliest, so an endpoint that accepts probes but refuses
  // requests is probed at the fast rate, not back to back.
  void passive_failure() {
    if (stopped_ || !state_.healthy()) {
      endpoint_->probe_requested.store(false, std::memory_order_relaxed);
      return;
    }
    if (state_.consecutive_failures() == 0) {
      log::info("health: ", endpoint_name(*endpoint_),
                ": a request could not connect; probing now");
    }
    record_failure("a request could not connect");
    if (probing_) return;  // the probe in progress answers the report
    reset_connection();
    const auto when = std::max(Clock::now(), last_probe_end_ + kFastInterval);
    if (when < timer_.expiry()) arm(when);
  }

  // What the probe speaks (backends[].protocol); a reload that changes it replaces the check.
  virtual config::UpstreamProtocol protocol() const = 0;
  // A backend with `tls`: probes go over TLS too, verified like requests (from the next
  // connection on when a reload changes it). Null context: plain.
  virtual void set_tls(std::shared_ptr<asio::ssl::context> context,
                       const config::UpstreamTls* settings) = 0;

  EndpointCheckStats stats() const {
    return EndpointCheckStats{successes_,
                              failures_,
                              state_.consecutive_successes(),
                              state_.consecutive_failures(),
                              state_.healthy(),
                              last_failure_};
  }

 protected:
  // Starts one probe, which ends in exactly one call to probe_succeeded() or probe_failed()
  // unless the session is stopped first.
  virtual void start_probe() = 0;
  // Closes connections; operations in progress complete later, and must then return
  // without side effects when stopped() is true.
  virtual void on_stop() = 0;
  // Between probes: the next probe dials a new connection.
  virtual void reset_connection() = 0;

  void probe_succeeded(std::chrono::microseconds rtt) {
    probing_ = false;
    last_probe_end_ = Clock::now();
    if (stopped_) return;
    answer_report();
    ++successes_;
    endpoint_->checks_succeeded.fetch_add(1, std::memory_order_relaxed);
    if (state_.record_success(rtt) == Transition::became_healthy) {
      const auto n = state_.consecutive_successes();
      log::info("health: ", endpoint_name(*endpoint_), ": unhealthy -> healthy (", n,
                n == 1 ? " success)" : " successes)");
    }
    schedule_next();
  }

  void probe_failed(std::string reason) {
    probing_ = false;
    last_probe_end_ = Clock::now();
    if (stopped_) return;
    answer_report();
    ++failures_;
    endpoint_->checks_failed.fetch_add(1, std::memory_order_relaxed);
    log::debug("health: ", endpoint_name(*endpoint_), ": probe failed: ", reason);
    record_failure(std::move(reason));
    schedule_next();
  }

  const config::HealthCheck& check() const { return check_; }
  const balancing::EndpointState& endpoint() const { return *endpoint_; }
  bool stopped() const { return stopped_; }

  asio::io_context& ioc_;

 private:
  void record_failure(std::string reason) {
    if (state_.record_failure() == Transition::became_unhealthy) {
      const auto n = state_.consecutive_failures();
      log::info("health: ", endpoint_name(*endpoint_), ": healthy -> unhealthy (", n,
                n == 1 ? " failure: " : " failures: ", reason, ")");
    }
    last_failure_ = std::move(reason);
  }

  // A probe has answered: the data path may report again.
  void answer_report() {
    if (endpoint_->probe_requested.load(std::memory_order_relaxed)) {
      endpoint_->probe_requested.store(false, std::memory_order_relaxed);
    }
  }

  // While a healthy endpoint has failures in a row (on its way down, or a blip), the next
  // probe comes after kFastInterval rather than the interval (HAProxy's fastinter), so the
  // verdict takes one probe timeout or so, not unhealthy_threshold intervals.
  void schedule_next() {
    auto interval = check_.interval;
    if (state_.healthy() && state_.consecutive_failures() > 0) {
      interval = std::min(interval, kFastInterval);
    }
    arm(Clock::now() + jittered_interval(interval, unit_random(rng_)));
  }

  // Re-arming cancels the previous wait; the sequence number makes a wait that had already
  // completed (its handler queued) harmless too.
  void arm(Clock::time_point when) {
    timer_.expires_at(when);
    const std::uint64_t seq = ++wait_seq_;
    timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
      if (ec || seq != self->wait_seq_ || self->stopped_) return;
      self->probing_ = true;
      self->start_probe();
    });
  }

  std::shared_ptr<balancing::EndpointState> endpoint_;
  config::HealthCheck check_;
  HealthState state_;
  asio::steady_timer timer_;
  std::uint64_t rng_;
  std::uint64_t wait_seq_ = 0;
  bool probing_ = false;
  bool stopped_ = false;
  Clock::time_point last_probe_end_{};
  std::uint64_t successes_ = 0;
  std::uint64_t failures_ = 0;
  std::string last_failure_;
};

// The probe for `protocol`: HTTP/1.1 for http1, HTTP/2 for h2 and h2c.
std::shared_ptr<ActiveCheck> make_check(config::UpstreamProtocol protocol, asio::io_context& ioc,
                                        std::shared_ptr<balancing::EndpointState> endpoint,
                                        const config::HealthCheck& check, std::uint64_t seed);
std::shared_ptr<ActiveCheck> make_http_check(asio::io_context& ioc,
                                             std::shared_ptr<balancing::EndpointState> endpoint,
                                             const config::HealthCheck& check, std::uint64_t seed);
std::shared_ptr<ActiveCheck> make_h2_check(config::UpstreamProtocol protocol, asio::io_context& ioc,
                                           std::shared_ptr<balancing::EndpointState> endpoint,
                                           const config::HealthCheck& check, std::uint64_t seed);

}  // namespace detail

}  // namespace meridian::health
