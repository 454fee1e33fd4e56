// Run-time state of one endpoint, shared by every worker and kept across reloads for an
// endpoint present in both configurations. Workers read and update it only through atomics;
// nothing here takes a lock. Counts are node-wide (least_conn counts across all workers).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace meridian::balancing {

// steady_clock "now" in nanoseconds since its epoch: the time base of ejections.
inline std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The line size that keeps the hot in-flight counter apart from the read-mostly fields
// (x86-64 and common ARM64 cores; a constant rather than
// std::hardware_destructive_interference_size, whose value GCC warns may change).
inline constexpr std::size_t kCacheLineBytes = 64;

// A runtime override of a region or an endpoint (POST /state, docs/admin-api.md), in order
// of strength: `drain` takes new requests only when nothing else is eligible (requests in
// flight finish either way), `disabled` never.
enum class AdminState : std::uint8_t { active = 0, drain = 1, disabled = 2 };

std::string_view admin_state_name(AdminState state);
std::optional<AdminState> parse_admin_state(std::string_view text);

struct EndpointState {
  EndpointState(std::string backend_name, std::string region_name, std::string address_text,
                boost::asio::ip::tcp::endpoint target_endpoint, std::uint32_t endpoint_weight)
      : backend(std::move(backend_name)),
        region(std::move(region_name)),
        address(std::move(address_text)),
        target(target_endpoint),
        weight(endpoint_weight) {}

  const std::string backend;
  const std::string region;
  const std::string address;  // as configured, e.g. "10.0.1.10:8080"; names it in logs and metrics
  const boost::asio::ip::tcp::endpoint target;
  const std::uint32_t weight;  // >= 1
  // For an address found by re-resolving a name (endpoints[].resolve): the name as written,
  // "host:port"; "" otherwise. Set when the endpoint is built, read-only afterwards.
  std::string resolved_from;

  // Requests in flight to this endpoint across all workers (for least_conn). Written by
  // every request on every worker, so it has a cache line of its own: the fields below are
  // read by every pick and written rarely, and must not be invalidated by each increment.
  alignas(kCacheLineBytes) std::atomic<std::uint32_t> in_flight{0};
  // Active health (healthy from the moment it is configured, as in HAProxy). Written by the
  // health checker (main thread), read by every worker.
  alignas(kCacheLineBytes) std::atomic<bool> healthy{true};
  // The override steering and balancing obey: the stronger of this endpoint's own (below)
  // and its region's (RegionState). Written on the main thread (POST /state, a reload),
  // read by every worker.
  std::atomic<AdminState> admin_state{AdminState::active};
  // This endpoint's own override, as set by POST /state; kept across reloads with its name.
  std::atomic<AdminState> own_admin_state{AdminState::active};
  // Set by a worker whose connect to the endpoint failed or timed out, when it tells the
  // health checker (which re-probes at once); cleared by the checker when that probe has
  // answered. A burst of failures so reaches the checker once.
  std::atomic<bool> probe_requested{false};
  // Measured latency (steering's latency term): EWMA, alpha 0.3, of health-check round trips,
  // in microseconds; 0 until the first measurement. Written by the health checker only.
  std::atomic<std::uint32_t> rtt_ewma_us{0};
  // Passive outlier detection (the backend's outlier_detection): failures in a row as
  // seen by all workers, and the steady_clock time (ns since its epoch) until which the
  // endpoint is ejected; 0 = not ejected.
  std::atomic<std::uint32_t> consecutive_failures{0};
  std::atomic<std::int64_t> ejected_until_ns{0};
  // Slow start (the backend's slow_start): the steady_clock time (ns) the endpoint last
  // became usable again -- its checks turned healthy, or it was added by a reload or a DNS
  // refresh while the node was serving; 0 = usable since the start. An ejection's end
  // (ejected_until_ns in the past) counts as a recovery too. Written on the main thread.
  std::atomic<std::int64_t> recovered_at_ns{0};
  // Active health check results (meridian_health_checks_total), written by the health
  // checker on the main thread; kept across reloads with the endpoint.
  std::atomic<std::uint64_t> checks_succeeded{0};
  std::atomic<std::uint64_t> checks_failed{0};

  bool is_ejected(std::int64_t now_ns) const {
    return ejected_until_ns.load(std::memory_order_relaxed) > now_ns;
  }
  // Slow start: when the endpoint last became usable again as of `now_ns` -- the later of
  // recovered_at_ns and the end of an ejection that has ended; 0 = usable since the start.
  std::int64_t recovered_since(std::int64_t now_ns) const {
    const std::int64_t recovered = recovered_at_ns.load(std::memory_order_relaxed);
    const std::int64_t ejection_end = ejected_until_ns.load(std::memory_order_relaxed);
    return ejection_end <= now_ns && ejection_end > recovered ? ejection_end : recovered;
  }
};

// Counts one request in flight for as long as it lives (RAII over in_flight).
class InFlightGuard {
 public:
  InFlightGuard() = default;
  explicit InFlightGuard(EndpointState* e) : endpoint_(e) {
    endpoint_->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  InFlightGuard(InFlightGuard&& other) noexcept : endpoint_(other.endpoint_) {
    other.endpoint_ = nullptr;
  }
  InFlightGuard& operator=(InFlightGuard&& other) noexcept {
    if (this != &other) {
      reset();
      endpoint_ = other.endpoint_;
      other.endpoint_ = nullptr;
    }
    return *this;
  }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;
  ~InFlightGuard() { reset(); }

  void reset() {
    if (endpoint_ != nullptr) endpoint_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    endpoint_ = nullptr;
  }
  EndpointState* get() const { return endpoint_; }

 private:
  EndpointState* endpoint_ = nullptr;
};

}  // namespace meridian::balancing
