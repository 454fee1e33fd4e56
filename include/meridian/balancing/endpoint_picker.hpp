// Choosing an endpoint inside one region (the backend's `balance`). Called on a worker for
// every request; reads only atomics, allocates nothing. `rotation` is the caller's per-worker
// counter that makes ties rotate (least_conn) and drives round robin without any shared write.
#pragma once

#include <cstdint>
#include <span>

#include "meridian/balancing/backend_runtime.hpp"

namespace meridian::balancing {

// The endpoints a request has already tried (and failed on); they are skipped on retry.
// Holds every attempt of one request: the first plus at most Route::kMaxRetries retries
// (the stale-connection retry reuses its endpoint and adds nothing).
struct TriedEndpoints {
  static constexpr std::size_t kMax = config::Route::kMaxRetries + 1;
  const EndpointState* items[kMax] = {};
  std::size_t count = 0;

  bool contains(const EndpointState* e) const {
    for (std::size_t i = 0; i < count; ++i) {
      if (items[i] == e) return true;
    }
    return false;
  }
  void add(const EndpointState* e) {
    if (count < kMax) items[count++] = e;
  }
};

// Whether an endpoint may take a request now: healthy and not at its connection cap
// (ejection, which needs the time, is checked by pick_endpoint and steering).
bool is_available(const EndpointState& e, std::uint32_t max_connections_per_endpoint);

// The endpoint to use in `region` (an element of region.endpoints), or nullptr when none is
// available (healthy, not full, not ejected at `now_ns`, steady_clock ns, not disabled) and
// untried. A draining endpoint is taken only when no active one is available, and never
// when `allow_drain` is false (the caller looks at the other regions first).
// least_conn: fewest in-flight requests divided by weight, ties rotating; O(n).
// round_robin: weighted round robin over the available endpoints (each endpoint takes
// `weight` consecutive turns of every cycle) driven by `rotation`.
// random: weighted random from `rotation` mixed through a PRNG step.
// ring_hash / maglev: the endpoint that owns `key_hash` in the region's ring or table; when
// it is not usable (or tried), the ring is walked on to the next endpoint, or the Maglev
// table probed again at rehashes of the key, so only that endpoint's keys move, spread over
// the others by weight.
// Slow start (`slow_start_ns` > 0): a picked endpoint whose ramp (slow_start_ramp) is below 1
// keeps the pick with that probability, else the pick is made again without it, so with any
// balance it gets about that share of what its weight would give it (and the pick when
// nothing else is available: the region was chosen, a ramping endpoint beats none).
const std::shared_ptr<EndpointState>* pick_endpoint(
    const RegionRuntime& region, config::Balance balance,
    std::uint32_t max_connections_per_endpoint, const TriedEndpoints& tried,
    std::uint64_t& rotation, std::int64_t now_ns = 0, bool allow_drain = true,
    std::int64_t slow_start_ns = 0, std::uint64_t key_hash = 0);

// Whether `e` may take a new request now from a client that asks for it by name (affinity):
// healthy, active (not draining, not disabled), not full and not ejected.
bool usable_for_affinity(const EndpointState& e, std::uint32_t max_connections_per_endpoint,
                         std::int64_t now_ns);

}  // namespace meridian::balancing
