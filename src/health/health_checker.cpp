#include "meridian/health/health_checker.hpp"

#include <random>
#include <string>
#include <utility>

#include "meridian/core/log.hpp"
#include "meridian/tls/client_context.hpp"

#include "health/active_check.hpp"

namespace meridian::health {

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
        tls_context = tls::make_client_context(*tls_settings, backend.config->protocol);
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
            log::info("health: ", detail::endpoint_name(*endpoint),
                      ": unhealthy -> healthy (health_check removed)");
          }
          // No probes, no measurement: the measured latency is 0 until the next one.
          endpoint->rtt_ewma_us.store(0, std::memory_order_relaxed);
          continue;
        }
        if (next.contains(key)) continue;
        const auto protocol = backend.config->protocol;
        if (auto it = checks_.find(key); it != checks_.end()) {
          if (it->second->protocol() == protocol) {
            it->second->reconfigure(*check);
            it->second->set_tls(tls_context, tls_settings);
            next.emplace(key, std::move(it->second));
            checks_.erase(it);
            continue;
          }
          // A reload changed the protocol: the probe is replaced (it stops below).
        }
        // A report left pending while the endpoint was not probed must not mute it now.
        endpoint->probe_requested.store(false, std::memory_order_relaxed);
        auto session =
            detail::make_check(protocol, ioc_, endpoint, *check, detail::splitmix64(seed_state_));
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
