// A backend as the data path sees it: its configuration plus the shared run-time state of
// each endpoint, grouped backend -> regions -> endpoints as in the configuration. Built on the
// main thread with each configuration snapshot and immutable afterwards; the EndpointState
// objects are shared with the previous snapshot when an endpoint survives a reload.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "meridian/balancing/consistent_hash.hpp"
#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"
#include "meridian/dns/resolved.hpp"

namespace meridian::balancing {

// A region's runtime override (POST /state) and health summary, shared by the snapshots that
// have the region and kept across reloads with its name.
struct RegionState {
  // Main thread only: the data path reads the endpoints' admin_state, which
  // apply_admin_state() derives from it.
  AdminState admin_state = AdminState::active;
  // What shedding and slow start need of the whole region, recounted by the main thread
  // every kPublishPeriod and whenever a snapshot is built (publish_region_health), so that
  // steering reads two atomics instead of walking every endpoint per request.
  static constexpr std::chrono::milliseconds kPublishPeriod{100};
  static constexpr std::uint32_t kNotCounted = 0xffffffff;  // never sheds
  // Endpoints that are healthy, not ejected and active.
  std::atomic<std::uint32_t> healthy_endpoints{kNotCounted};
  // Slow start: when the region's longest-serving healthy endpoint recovered (steady ns), 0
  // when one has served since the start; the region's ramp follows from it.
  std::atomic<std::int64_t> ramp_since_ns{0};
};

struct RegionRuntime {
  const config::Region* config = nullptr;
  std::vector<std::shared_ptr<EndpointState>> endpoints;
  std::shared_ptr<RegionState> state = std::make_shared<RegionState>();  // never null
  // Numbers the regions of all backends of one snapshot 0, 1, 2, ...: the index of this
  // region's per-worker balancing counter (WorkerContext::rotation), so that round robin and
  // least_conn ties rotate per region whatever traffic the worker's other regions see.
  std::size_t ordinal = 0;
  // Mixed into a client's hash when steering decides whether this region sheds the client
  // (traffic_dial, shedding, slow start): a hash of the backend and region names, so a
  // client's place survives reloads and differs between regions.
  std::uint64_t salt = 0;
  // balance ring_hash / maglev: the region's endpoints placed by address (consistent_hash.hpp),
  // indexes into `endpoints`; null for the other balances.
  std::shared_ptr<const HashRing> ring;
  std::shared_ptr<const MaglevTable> maglev;
};

// affinity: the endpoint a cookie value names. The id is a hash of the backend name and the
// endpoint's address (affinity_id()), the same on every node and across reloads.
struct AffinityEntry {
  std::uint64_t id = 0;
  std::uint32_t region = 0;  // index into BackendRuntime::regions
  const EndpointState* endpoint = nullptr;
};
std::uint64_t affinity_id(const EndpointState& e);

// Node-wide retry accounting of one backend (routes[].retry.budget), shared by the
// snapshots that have the backend and kept across reloads with its name. Touched only when
// a request retries, never on a request that does not.
struct RetryBudget {
  // Requests of the backend that have a retry scheduled or in flight (each counts once,
  // from its first retry to its end).
  std::atomic<std::uint32_t> retries_in_flight{0};
  std::atomic<std::uint64_t> exhausted{0};  // retries not made because of the budget
};

struct BackendRuntime {
  const config::Backend* config = nullptr;
  std::shared_ptr<RetryBudget> retry_budget = std::make_shared<RetryBudget>();  // never null
  std::vector<RegionRuntime> regions;  // in configuration order
  // Whether steering looks at where the client is: it has fencing rules, or several regions
  // and a policy with a geo term. When false the data path skips the GeoIP lookup.
  bool uses_client_location = false;
  // With `affinity`: every endpoint by its affinity id, sorted by id (find_affinity()).
  std::vector<AffinityEntry> affinity_index;
  const AffinityEntry* find_affinity(std::uint64_t id) const;
};

// Builds the run-time view of `config`'s backends. Endpoints that `previous` (may be null)
// already has, by (backend, region, address), keep their EndpointState, and regions, by
// (backend, region), their RegionState; an endpoint replaced because its target or weight
// changed keeps its own override. Main thread.
//
// An endpoint with `resolve` becomes one endpoint per address of its name in `resolved`
// (dns::Refresher's last good answers), each named by its address ("10.0.1.7:443") and kept
// across rebuilds by it; before the name's first answer it has none (a region may so have
// no endpoint for a moment: it is not eligible).
std::vector<BackendRuntime> build_backends(const config::Config& config,
                                           std::span<const BackendRuntime> previous,
                                           const dns::ResolvedAddresses* resolved = nullptr);

// Sets every endpoint's admin_state to the stronger of its own override and the region's,
// and publishes the region's health (below). Main thread, after either changed.
void apply_admin_state(const RegionRuntime& region);

// Recounts region.state's healthy_endpoints and ramp_since_ns from the endpoints. Main
// thread (build_backends, and every RegionState::kPublishPeriod).
void publish_region_health(const RegionRuntime& region, std::int64_t now_ns);
void publish_region_health(std::span<const BackendRuntime> backends, std::int64_t now_ns);

}  // namespace meridian::balancing
