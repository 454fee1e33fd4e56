#include "meridian/balancing/endpoint_picker.hpp"

#include <bitset>

#include "meridian/balancing/steering.hpp"
#include "meridian/core/splitmix.hpp"

namespace meridian::balancing {

namespace {

// What a pick may take: endpoints that are healthy, not disabled, not full and not ejected,
// and, unless drain is allowed, not draining either.
struct Filter {
  std::uint32_t cap;
  std::int64_t now_ns;
  bool allow_drain;
};

bool usable(const EndpointState& e, const Filter& f) {
  if (!f.allow_drain && e.admin_state.load(std::memory_order_relaxed) == AdminState::drain) {
    return false;
  }
  return is_available(e, f.cap) && !e.is_ejected(f.now_ns);
}

const std::shared_ptr<EndpointState>* pick_least_conn(const RegionRuntime& region, const Filter& f,
                                                      const TriedEndpoints& tried,
                                                      std::uint64_t& rotation) {
  // Two passes, O(n), no allocation: find the lowest in_flight/weight, then take the
  // (rotation mod ties)-th endpoint at that load, so ties rotate evenly even when some
  // endpoints are skipped. a/wa < b/wb is compared as a*wb < b*wa (no division).
  std::uint64_t best_load = 0;
  std::uint64_t best_weight = 0;
  std::size_t ties = 0;
  for (const auto& e : region.endpoints) {
    if (tried.contains(e.get()) || !usable(*e, f)) continue;
    const std::uint64_t load = e->in_flight.load(std::memory_order_relaxed);
    if (ties == 0 || load * best_weight < best_load * e->weight) {
      best_load = load;
      best_weight = e->weight;
      ties = 1;
    } else if (load * best_weight == best_load * e->weight) {
      ++ties;
    }
  }
  if (ties == 0) return nullptr;
  std::size_t wanted = static_cast<std::size_t>(rotation++ % ties);
  for (const auto& e : region.endpoints) {
    if (tried.contains(e.get()) || !usable(*e, f)) continue;
    // in_flight may have moved since the first pass (other workers); an endpoint that is no
    // longer at the best load is passed over, and the last tie found is the fallback.
    const std::uint64_t load = e->in_flight.load(std::memory_order_relaxed);
    if (load * best_weight != best_load * e->weight) continue;
    if (wanted == 0) return &e;
    --wanted;
  }
  // Loads changed under us between the passes: fall back to the first available endpoint.
  for (const auto& e : region.endpoints) {
    if (!tried.contains(e.get()) && usable(*e, f)) return &e;
  }
  return nullptr;
}

const std::shared_ptr<EndpointState>* pick_weighted(const RegionRuntime& region, const Filter& f,
                                                    const TriedEndpoints& tried,
                                                    std::uint64_t ticket) {
  std::uint64_t total = 0;
  for (const auto& e : region.endpoints) {
    if (!tried.contains(e.get()) && usable(*e, f)) total += e->weight;
  }
  if (total == 0) return nullptr;
  std::uint64_t point = ticket % total;
  for (const auto& e : region.endpoints) {
    if (tried.contains(e.get()) || !usable(*e, f)) continue;
    if (point < e->weight) return &e;
    point -= e->weight;
  }
  return nullptr;
}

// The Maglev table probed again this many times for a key whose endpoint is not usable,
// each at a rehash of the key, before a weighted pick by the key takes over.
constexpr int kMaglevProbes = 16;

const std::shared_ptr<EndpointState>* pick_hashed(const RegionRuntime& region, const Filter& f,
                                                  const TriedEndpoints& tried, std::uint64_t key) {
  auto take = [&](std::uint32_t i) -> const std::shared_ptr<EndpointState>* {
    const auto& e = region.endpoints[i];
    return !tried.contains(e.get()) && usable(*e, f) ? &e : nullptr;
  };
  if (region.maglev && !region.maglev->empty()) {
    std::uint64_t h = key;
    for (int probe = 0; probe <= kMaglevProbes; ++probe) {
      if (const auto* e = take(region.maglev->lookup(h))) return e;
      h = splitmix64(key + static_cast<std::uint64_t>(probe + 1) * 0x9e3779b97f4a7c15ULL);
    }
  } else if (region.ring && !region.ring->empty()) {
    // Walk on from the key's point: the next endpoints in ring order, at most once around,
    // and no further than the point where every endpoint was seen (a region where nothing
    // can serve would otherwise cost a walk over all its points, under overload).
    const std::size_t start = region.ring->find(key);
    // The key's own endpoint, the common case, before any bookkeeping for the walk.
    if (const auto* e = take(region.ring->endpoint_at(start))) return e;
    constexpr std::size_t kTracked = 1024;  // endpoints remembered without allocating
    std::bitset<kTracked> seen;
    std::size_t distinct = 0;
    const bool tracked = region.endpoints.size() <= kTracked;
    for (std::size_t step = 0; step < region.ring->points(); ++step) {
      const std::uint32_t i = region.ring->endpoint_at(start + step);
      if (const auto* e = take(i)) return e;
      if (tracked && !seen[i]) {
        seen[i] = true;
        if (++distinct == region.endpoints.size()) break;
      }
    }
    return nullptr;
  }
  return pick_weighted(region, f, tried, key);
}

// Picks among the usable, untried endpoints (pick_endpoint without slow start).
const std::shared_ptr<EndpointState>* pick_any(const RegionRuntime& region, config::Balance balance,
                                               std::uint32_t max_connections_per_endpoint,
                                               const TriedEndpoints& tried, std::uint64_t& rotation,
                                               std::int64_t now_ns, bool allow_drain,
                                               std::uint64_t key_hash);

}  // namespace

bool usable_for_affinity(const EndpointState& e, std::uint32_t max_connections_per_endpoint,
                         std::int64_t now_ns) {
  return usable(e, Filter{max_connections_per_endpoint, now_ns, false});
}

bool is_available(const EndpointState& e, std::uint32_t max_connections_per_endpoint) {
  if (!e.healthy.load(std::memory_order_relaxed)) return false;
  if (e.admin_state.load(std::memory_order_relaxed) == AdminState::disabled) return false;
  return max_connections_per_endpoint == 0 ||
         e.in_flight.load(std::memory_order_relaxed) < max_connections_per_endpoint;
}

const std::shared_ptr<EndpointState>* pick_endpoint(const RegionRuntime& region,
                                                    config::Balance balance,
                                                    std::uint32_t max_connections_per_endpoint,
                                                    const TriedEndpoints& tried,
                                                    std::uint64_t& rotation, std::int64_t now_ns,
                                                    bool allow_drain, std::int64_t slow_start_ns,
                                                    std::uint64_t key_hash) {
  const auto* picked = pick_any(region, balance, max_connections_per_endpoint, tried, rotation,
                                now_ns, allow_drain, key_hash);
  if (slow_start_ns <= 0 || picked == nullptr) return picked;
  // Slow start: a ramping endpoint keeps the pick with the probability of its ramp, else the
  // pick is made again without it (and stays with it when nothing else is there). Only the
  // picked endpoint is looked at: two loads when it is not ramping.
  const EndpointState& e = **picked;
  const std::int64_t since = e.recovered_since(now_ns);
  if (since == 0 || now_ns - since >= slow_start_ns) return picked;
  const double ramp = ramp_at(since, slow_start_ns, now_ns);
  // The draw: from the rotation, or under consistent hashing from the key (which does not
  // rotate), so each key comes back to the recovering endpoint at its own point of the ramp.
  const bool hashed = balance == config::Balance::ring_hash || balance == config::Balance::maglev;
  const std::uint64_t draw = hashed ? key_hash : rotation;
  if (unit_interval(splitmix64(draw ^ reinterpret_cast<std::uintptr_t>(&e))) < ramp) {
    return picked;
  }
  TriedEndpoints without = tried;
  without.add(&e);
  // On a copy of the rotation: the turn the ramping endpoint passed up is not a turn of the
  // cycle, or round robin would offer it the next turn again.
  std::uint64_t again = rotation - 1;
  const auto* other = pick_any(region, balance, max_connections_per_endpoint, without, again,
                               now_ns, allow_drain, key_hash);
  return other != nullptr ? other : picked;
}

namespace {

const std::shared_ptr<EndpointState>* pick_any(const RegionRuntime& region, config::Balance balance,
                                               std::uint32_t max_connections_per_endpoint,
                                               const TriedEndpoints& tried, std::uint64_t& rotation,
                                               std::int64_t now_ns, bool allow_drain,
                                               std::uint64_t key_hash) {
  if (region.endpoints.empty()) return nullptr;
  // Draining endpoints are the last resort: a second pass admits them only when no active
  // one is left (rare, so the common pick walks the endpoints once or twice as before).
  for (const bool drain_ok : {false, true}) {
    if (drain_ok && !allow_drain) break;
    const Filter f{max_connections_per_endpoint, now_ns, drain_ok};
    const std::shared_ptr<EndpointState>* picked = nullptr;
    switch (balance) {
      case config::Balance::least_conn:
        picked = pick_least_conn(region, f, tried, rotation);
        break;
      case config::Balance::round_robin:
        // Weighted round robin: consecutive tickets walk the cumulative weight line, so each
        // endpoint gets `weight` turns out of every `total` requests on this worker.
        picked = pick_weighted(region, f, tried, rotation++);
        break;
      case config::Balance::random:
        picked = pick_weighted(region, f, tried, splitmix64(rotation++));
        break;
      case config::Balance::ring_hash:
      case config::Balance::maglev:
        picked = pick_hashed(region, f, tried, key_hash);
        break;
    }
    if (picked != nullptr) return picked;
  }
  return nullptr;
}

}  // namespace

}  // namespace meridian::balancing
