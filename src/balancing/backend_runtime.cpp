#include "meridian/balancing/backend_runtime.hpp"

#include <algorithm>

#include "meridian/balancing/steering.hpp"
#include "meridian/core/units.hpp"

namespace meridian::balancing {

namespace {

const RegionRuntime* find_previous_region(std::span<const BackendRuntime> previous,
                                          const std::string& backend, const std::string& region) {
  for (const auto& b : previous) {
    if (b.config->name != backend) continue;
    for (const auto& r : b.regions) {
      if (r.config->name == region) return &r;
    }
  }
  return nullptr;
}

std::shared_ptr<EndpointState> find_previous(const RegionRuntime* region,
                                             const std::string& address) {
  if (region == nullptr) return nullptr;
  for (const auto& e : region->endpoints) {
    if (e->address == address) return e;
  }
  return nullptr;
}

AdminState stronger(AdminState a, AdminState b) {
  return static_cast<std::uint8_t>(a) > static_cast<std::uint8_t>(b) ? a : b;
}

}  // namespace

std::uint64_t affinity_id(const EndpointState& e) {
  // Per answer of a backend with affinity: no allocation (hash of "backend/address").
  return hash_bytes(e.backend, "/", e.address);
}

const AffinityEntry* BackendRuntime::find_affinity(std::uint64_t id) const {
  const auto it = std::lower_bound(
      affinity_index.begin(), affinity_index.end(), id,
      [](const AffinityEntry& entry, std::uint64_t wanted) { return entry.id < wanted; });
  return it != affinity_index.end() && it->id == id ? &*it : nullptr;
}

std::vector<BackendRuntime> build_backends(const config::Config& config,
                                           std::span<const BackendRuntime> previous,
                                           const dns::ResolvedAddresses* resolved) {
  std::vector<BackendRuntime> backends;
  backends.reserve(config.backends.size());
  std::size_t ordinal = 0;
  for (const auto& b : config.backends) {
    BackendRuntime runtime;
    runtime.config = &b;
    for (const auto& p : previous) {
      if (p.config->name == b.name) runtime.retry_budget = p.retry_budget;
    }
    const auto policy = b.steering.policy;
    runtime.uses_client_location =
        !b.steering.rules.empty() ||
        (b.regions.size() > 1 &&
         (policy == config::SteeringPolicy::nearest || policy == config::SteeringPolicy::geo));
    runtime.regions.reserve(b.regions.size());
    for (const auto& r : b.regions) {
      const RegionRuntime* before = find_previous_region(previous, b.name, r.name);
      RegionRuntime region;
      region.config = &r;
      region.ordinal = ordinal++;
      const std::string salt_text = b.name + '/' + r.name;
      region.salt =
          client_hash(reinterpret_cast<const unsigned char*>(salt_text.data()), salt_text.size());
      region.state = before != nullptr ? before->state : std::make_shared<RegionState>();
      region.endpoints.reserve(r.endpoints.size());
      auto add = [&](const std::string& text, const boost::asio::ip::tcp::endpoint& target,
                     std::uint32_t weight, const std::string& resolved_from) {
        auto state = find_previous(before, text);
        // A kept endpoint whose address now resolves elsewhere or whose weight changed is a
        // new endpoint: its counts and health described the old target. An operator's
        // override names the endpoint, so it stays.
        if (!state || state->target != target || state->weight != weight) {
          auto fresh = std::make_shared<EndpointState>(b.name, r.name, text, target, weight);
          fresh->resolved_from = resolved_from;
          if (state) fresh->own_admin_state.store(state->own_admin_state.load());
          // Added while the node serves (not at start): slow start ramps it up.
          if (!previous.empty()) fresh->recovered_at_ns.store(steady_now_ns());
          state = std::move(fresh);
        }
        region.endpoints.push_back(std::move(state));
      };
      for (const auto& e : r.endpoints) {
        if (!e.resolve_every) {
          add(e.address.text, e.address.resolved, e.weight, "");
          continue;
        }
        // Every address of the name, each an endpoint named by its address.
        const auto found = resolved != nullptr ? resolved->find(e.address.host)
                                               : dns::ResolvedAddresses::const_iterator{};
        // No answer yet (the first lookup is under way): no endpoint for the name.
        if (resolved == nullptr || found == resolved->end()) continue;
        for (const auto& address : found->second) {
          const boost::asio::ip::tcp::endpoint target(address, e.address.port);
          add(format_host_port(address, e.address.port), target, e.weight, e.address.text);
        }
      }
      if (b.balance == config::Balance::ring_hash || b.balance == config::Balance::maglev) {
        std::vector<HashedEndpoint> placed;
        placed.reserve(region.endpoints.size());
        for (const auto& e : region.endpoints)
          placed.push_back({e->address, e->weight});
        if (b.balance == config::Balance::ring_hash) {
          region.ring = std::make_shared<const HashRing>(placed);
        } else {
          region.maglev = std::make_shared<const MaglevTable>(placed);
        }
      }
      apply_admin_state(region);
      runtime.regions.push_back(std::move(region));
    }
    if (b.affinity) {
      for (std::size_t r = 0; r < runtime.regions.size(); ++r) {
        for (const auto& e : runtime.regions[r].endpoints) {
          runtime.affinity_index.push_back(
              {affinity_id(*e), static_cast<std::uint32_t>(r), e.get()});
        }
      }
      std::sort(runtime.affinity_index.begin(), runtime.affinity_index.end(),
                [](const AffinityEntry& x, const AffinityEntry& y) { return x.id < y.id; });
    }
    backends.push_back(std::move(runtime));
  }
  return backends;
}

void publish_region_health(const RegionRuntime& region, std::int64_t now_ns) {
  std::uint32_t healthy = 0;
  std::int64_t since = -1;  // the oldest recovery among the healthy ones
  for (const auto& e : region.endpoints) {
    if (!e->healthy.load(std::memory_order_relaxed) || e->is_ejected(now_ns)) continue;
    if (e->admin_state.load(std::memory_order_relaxed) != AdminState::active) continue;
    ++healthy;
    const std::int64_t recovered = e->recovered_since(now_ns);
    if (since < 0 || recovered < since) since = recovered;
  }
  region.state->healthy_endpoints.store(healthy, std::memory_order_relaxed);
  region.state->ramp_since_ns.store(since < 0 ? 0 : since, std::memory_order_relaxed);
}

void publish_region_health(std::span<const BackendRuntime> backends, std::int64_t now_ns) {
  for (const auto& b : backends) {
    for (const auto& r : b.regions)
      publish_region_health(r, now_ns);
  }
}

void apply_admin_state(const RegionRuntime& region) {
  for (const auto& e : region.endpoints) {
    e->admin_state.store(stronger(region.state->admin_state, e->own_admin_state.load()),
                         std::memory_order_relaxed);
  }
  publish_region_health(region, steady_now_ns());
}

}  // namespace meridian::balancing
