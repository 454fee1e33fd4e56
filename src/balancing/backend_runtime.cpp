#include "meridian/balancing/backend_runtime.hpp"

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

std::vector<BackendRuntime> build_backends(const config::Config& config,
                                           std::span<const BackendRuntime> previous) {
  std::vector<BackendRuntime> backends;
  backends.reserve(config.backends.size());
  std::size_t ordinal = 0;
  for (const auto& b : config.backends) {
    BackendRuntime runtime;
    runtime.config = &b;
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
      region.state = before != nullptr ? before->state : std::make_shared<RegionState>();
      region.endpoints.reserve(r.endpoints.size());
      for (const auto& e : r.endpoints) {
        auto state = find_previous(before, e.address.text);
        // A kept endpoint whose address now resolves elsewhere or whose weight changed is a
        // new endpoint: its counts and health described the old target. An operator's
        // override names the endpoint, so it stays.
        if (!state || state->target != e.address.resolved || state->weight != e.weight) {
          auto fresh = std::make_shared<EndpointState>(b.name, r.name, e.address.text,
                                                       e.address.resolved, e.weight);
          if (state) fresh->own_admin_state.store(state->own_admin_state.load());
          state = std::move(fresh);
        }
        region.endpoints.push_back(std::move(state));
      }
      apply_admin_state(region);
      runtime.regions.push_back(std::move(region));
    }
    backends.push_back(std::move(runtime));
  }
  return backends;
}

void apply_admin_state(const RegionRuntime& region) {
  for (const auto& e : region.endpoints) {
    e->admin_state.store(stronger(region.state->admin_state, e->own_admin_state.load()),
                         std::memory_order_relaxed);
  }
}

}  // namespace meridian::balancing
