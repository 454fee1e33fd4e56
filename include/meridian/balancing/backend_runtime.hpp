// A backend as the data path sees it: its configuration plus the shared run-time state of
// each endpoint, grouped backend -> regions -> endpoints (SPEC 2). Built on the main thread
// with each configuration snapshot and immutable afterwards; the EndpointState objects are
// shared with the previous snapshot when an endpoint survives a reload.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"

namespace meridian::balancing {

struct RegionRuntime {
  const config::Region* config = nullptr;
  std::vector<std::shared_ptr<EndpointState>> endpoints;
};

struct BackendRuntime {
  const config::Backend* config = nullptr;
  std::vector<RegionRuntime> regions;  // in configuration order
};

// Builds the run-time view of `config`'s backends. Endpoints that `previous` (may be null)
// already has, by (backend, region, address), keep their EndpointState.
std::vector<BackendRuntime> build_backends(const config::Config& config,
                                           std::span<const BackendRuntime> previous);

}  // namespace meridian::balancing
