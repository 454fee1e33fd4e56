#include "meridian/health/health_checker.hpp"

#include <array>
#include <chrono>
#include <random>
#include <string>
#include <utility>

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "meridian/core/log.hpp"
#include "meridian/health/health_state.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/tls/client_context.hpp"

namespace meridian::health {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Clock = net::Clock;

namespace {

// splitmix64 (Steele, Lea, Flood 2014): 8 bytes of state per session is plenty for jitter.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A uniform number in [0, 1) from the top 53 bits.
double unit_random(std::uint64_t& state) {
  return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
}

std::string endpoint_name(const balancing::EndpointState& e) {
  return "backend " + e.backend + " region " + e.region + " endpoint " + e.address;
}

}  // namespace

namespace detail {

// One endpoint's checks: the schedule (first probe at once, then each interval +-10% after
// the previous probe ended, as Envoy does), the thresholds (HealthState), the counters and
// the transition log. Subclasses implement one probe. The session stays alive while an
// operation holds shared_from_this(); after stop() every pending handler returns at once.
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

}  // namespace detail

namespace {

// HTTP/1.1 probe: GET <path> with Host and User-Agent on a kept-alive connection, reused
// from one probe to the next and dialled again after an error or a response that closes it.
// The whole probe (connect, write, read) runs under one deadline, health_check.timeout.
// Success: a complete response whose status is in expected_status. The body is read into a
// small scratch buffer and dropped, so a large health page costs no memory.
class HttpCheck final : public detail::ActiveCheck {
 public:
  using ActiveCheck::ActiveCheck;

  // A backend with `tls`: probes go over TLS too, verified like requests (from the next
  // connection on when a reload changes it).
  void set_tls(std::shared_ptr<asio::ssl::context> context, const config::UpstreamTls* settings) {
    tls_context_ = std::move(context);
    tls_settings_ = settings != nullptr ? *settings : config::UpstreamTls{};
  }

 private:
  std::shared_ptr<HttpCheck> self() {
    return std::static_pointer_cast<HttpCheck>(shared_from_this());
  }

  void start_probe() override {
    deadline_ = Clock::now() + check().timeout;
    retried_ = false;
    request_ = {bhttp::verb::get, check().path, 11};
    request_.set(bhttp::field::host, check().host.empty() ? endpoint().address : check().host);
    request_.set(bhttp::field::user_agent, "meridian-health");
    if (connected_) {
      reused_ = true;
      stream_->expires_at(deadline_);
      write();
    } else {
      connect();
    }
  }

  void on_stop() override { close(); }
  void reset_connection() override { close(); }

  void connect() {
    // Only called with no operation in progress, so the old stream can go.
    tls_.reset();
    stream_.emplace(ioc_);
    buffer_.clear();
    reused_ = false;
    stream_->expires_at(deadline_);
    stream_->async_connect(endpoint().target, [self = self()](const beast::error_code& ec) {
      if (self->stopped()) return;
      if (ec) return self->io_failed("connect", ec);
      if (self->tls_context_) return self->handshake();
      self->connected_ = true;
      self->write();
    });
  }

  void handshake() {
    tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(*stream_, *tls_context_);
    tls::prepare_client(tls_->native_handle(), tls_settings_, endpoint().address);
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = self()](const beast::error_code& ec) {
                            if (self->stopped()) return;
                            if (ec) return self->io_failed("TLS handshake", ec);
                            self->connected_ = true;
                            self->write();
                          });
  }

  // The probe's stream: TLS over the TCP stream for a backend with `tls`.
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*stream_);
    }
  }

  void write() {
    write_start_ = Clock::now();
    with_stream([this](auto& s) {
      bhttp::async_write(s, request_, [self = self()](const beast::error_code& ec, std::size_t) {
        if (self->stopped()) return;
        if (ec) return self->io_failed("write", ec);
        self->parser_.emplace();
        self->read();
      });
    });
  }

  void read() {
    auto& body = parser_->get().body();
    body.data = scratch_.data();
    body.size = scratch_.size();
    with_stream([this](auto& s) {
      bhttp::async_read(s, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t) {
        if (self->stopped()) return;
        if (ec == bhttp::error::need_buffer) return self->read();  // drop body
        if (ec) return self->io_failed("read", ec);
        self->response_complete();
      });
    });
  }

  void response_complete() {
    const auto rtt =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - write_start_);
    const int status = static_cast<int>(parser_->get().result_int());
    if (!parser_->keep_alive()) close();
    parser_.reset();
    if (is_expected_status(check(), status)) return probe_succeeded(rtt);
    probe_failed("status " + std::to_string(status));
  }

  void io_failed(const char* what, const beast::error_code& ec) {
    close();
    // The origin may have closed the idle connection just as the probe went out; that says
    // nothing about its health, so a reused connection gets one fresh retry in the time left.
    if (reused_ && !retried_ && ec != beast::error::timeout && Clock::now() < deadline_) {
      retried_ = true;
      return connect();
    }
    if (ec == beast::error::timeout) {
      probe_failed(std::string(what) + ": timeout after " +
                   std::to_string(check().timeout.count()) + "ms");
    } else {
      probe_failed(std::string(what) + ": " + ec.message());
    }
  }

  void close() {
    connected_ = false;
    if (stream_) stream_->close();
  }

  std::optional<beast::tcp_stream> stream_;
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls_;  // over stream_, or null
  std::shared_ptr<asio::ssl::context> tls_context_;
  config::UpstreamTls tls_settings_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::empty_body> request_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  std::array<char, 4096> scratch_{};
  Clock::time_point deadline_{};
  Clock::time_point write_start_{};
  bool connected_ = false;
  bool reused_ = false;
  bool retried_ = false;
};

}  // namespace

HealthChecker::HealthChecker(asio::io_context& ioc)
    : HealthChecker(ioc, [] {
        std::random_device rd;
        return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
      }()) {}

HealthChecker::HealthChecker(asio::io_context& ioc, std::uint64_t seed)
    : ioc_(ioc), seed_state_(seed) {}

HealthChecker::~HealthChecker() {
  stop();
}

void HealthChecker::update(std::shared_ptr<const void> owner,
                           std::span<const balancing::BackendRuntime> backends) {
  std::unordered_map<const balancing::EndpointState*, std::shared_ptr<detail::ActiveCheck>> next;
  for (const auto& backend : backends) {
    const auto& check = backend.config->health_check;
    std::shared_ptr<asio::ssl::context> tls_context;
    const config::UpstreamTls* tls_settings = nullptr;
    if (check && backend.config->tls) {
      tls_settings = &*backend.config->tls;
      try {
        tls_context = tls::make_client_context(*tls_settings);
      } catch (const std::exception& e) {
        // The snapshot was built from the same settings, so this is not expected.
        log::error("health: backend ", backend.config->name, ": tls: ", e.what());
      }
    }
    for (const auto& region : backend.regions) {
      for (const auto& endpoint : region.endpoints) {
        const balancing::EndpointState* key = endpoint.get();
        if (!check) {
          // Not checked (no health_check): counts as healthy, even if checks had marked it down.
          if (!endpoint->healthy.exchange(true, std::memory_order_relaxed)) {
            log::info("health: ", endpoint_name(*endpoint),
                      ": unhealthy -> healthy (health_check removed)");
          }
          // No probes, no measurement: the measured latency is 0 until the next one.
          endpoint->rtt_ewma_us.store(0, std::memory_order_relaxed);
          continue;
        }
        if (next.contains(key)) continue;
        if (auto it = checks_.find(key); it != checks_.end()) {
          it->second->reconfigure(*check);
          static_cast<HttpCheck&>(*it->second).set_tls(tls_context, tls_settings);
          next.emplace(key, std::move(it->second));
          checks_.erase(it);
          continue;
        }
        // A report left pending while the endpoint was not probed must not mute it now.
        endpoint->probe_requested.store(false, std::memory_order_relaxed);
        auto session = std::make_shared<HttpCheck>(ioc_, endpoint, *check, splitmix64(seed_state_));
        session->set_tls(tls_context, tls_settings);
        session->start();
        next.emplace(key, std::move(session));
      }
    }
  }
  // What is left was removed from the configuration or lost its health_check.
  for (auto& [key, session] : checks_)
    session->stop();
  checks_ = std::move(next);
  owner_ = std::move(owner);
  log::debug("health: checking ", checks_.size(), " endpoints");
}

void HealthChecker::stop() {
  for (auto& [key, session] : checks_)
    session->stop();
  checks_.clear();
  owner_.reset();
}

void HealthChecker::passive_failure(const balancing::EndpointState* endpoint) {
  const auto it = checks_.find(endpoint);
  if (it != checks_.end()) it->second->passive_failure();
}

std::optional<EndpointCheckStats> HealthChecker::stats(
    const balancing::EndpointState& endpoint) const {
  const auto it = checks_.find(&endpoint);
  if (it == checks_.end()) return std::nullopt;
  return it->second->stats();
}

}  // namespace meridian::health
