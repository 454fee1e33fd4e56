#include "meridian/balancing/backend_runtime.hpp"

namespace meridian::balancing {

namespace {

std::shared_ptr<EndpointState> find_previous(std::span<const BackendRuntime> previous,
                                             const std::string& backend, const std::string& region,
                                             const std::string& address) {
  for (const auto& b : previous) {
    if (b.config->name != backend) continue;
    for (const auto& r : b.regions) {
      if (r.config->name != region) continue;
      for (const auto& e : r.endpoints) {
        if (e->address == address) return e;
      }
    }
  }
  return nullptr;
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
      RegionRuntime region;
      region.config = &r;
      region.ordinal = ordinal++;
      region.endpoints.reserve(r.endpoints.size());
      for (const auto& e : r.endpoints) {
        auto state = find_previous(previous, b.name, r.name, e.address.text);
        // A kept endpoint whose address now resolves elsewhere or whose weight changed is a
        // new endpoint: its counts and health described the old target.
        if (!state || state->target != e.address.resolved || state->weight != e.weight) {
          state = std::make_shared<EndpointState>(b.name, r.name, e.address.text,
                                                  e.address.resolved, e.weight);
        }
        region.endpoints.push_back(std::move(state));
      }
      runtime.regions.push_back(std::move(region));
    }
    backends.push_back(std::move(runtime));
  }
  return backends;
}

}  // namespace meridian::balancing
