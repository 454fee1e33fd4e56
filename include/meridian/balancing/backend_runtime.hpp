// A backend as the data path sees it: its configuration plus the shared run-time state of
// each endpoint, grouped backend -> regions -> endpoints as in the configuration. Built on the
// main thread with each configuration snapshot and immutable afterwards; the EndpointState
// objects are shared with the previous snapshot when an endpoint survives a reload.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"

namespace meridian::balancing {

// A region's runtime override (POST /state), shared by the snapshots that have the region
// and kept across reloads with its name. Main thread only: the data path reads the
// endpoints' admin_state, which apply_admin_state() derives from it.
struct RegionState {
  AdminState admin_state = AdminState::active;
};

struct RegionRuntime {
  const config::Region* config = nullptr;
  std::vector<std::shared_ptr<EndpointState>> endpoints;
  std::shared_ptr<RegionState> state = std::make_shared<RegionState>();  // never null
  // Numbers the regions of all backends of one snapshot 0, 1, 2, ...: the index of this
  // region's per-worker balancing counter (WorkerContext::rotation), so that round robin and
  // least_conn ties rotate per region whatever traffic the worker's other regions see.
  std::size_t ordinal = 0;
};

struct BackendRuntime {
  const config::Backend* config = nullptr;
  std::vector<RegionRuntime> regions;  // in configuration order
  // Whether steering looks at where the client is: it has fencing rules, or several regions
  // and a policy with a geo term. When false the data path skips the GeoIP lookup.
  bool uses_client_location = false;
};

// Builds the run-time view of `config`'s backends. Endpoints that `previous` (may be null)
// already has, by (backend, region, address), keep their EndpointState, and regions, by
// (backend, region), their RegionState; an endpoint replaced because its target or weight
// changed keeps its own override. Main thread.
std::vector<BackendRuntime> build_backends(const config::Config& config,
                                           std::span<const BackendRuntime> previous);

// Sets every endpoint's admin_state to the stronger of its own override and the region's.
// Main thread, after either changed.
void apply_admin_state(const RegionRuntime& region);

}  // namespace meridian::balancing
