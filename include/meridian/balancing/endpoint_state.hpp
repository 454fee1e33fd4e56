// Run-time state of one endpoint, shared by every worker and kept across reloads for an
// endpoint present in both configurations (SPEC 9). Workers read and update it only through
// atomics; nothing here takes a lock. Counts are node-wide (SPEC 6: least_conn counts across
// all workers).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace meridian::balancing {

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

  // Requests in flight to this endpoint across all workers (SPEC 6 least_conn).
  std::atomic<std::uint32_t> in_flight{0};
  // Active health (SPEC 5: healthy from the moment it is configured). Written by the health
  // checker (issue 3), read by every worker.
  std::atomic<bool> healthy{true};
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
