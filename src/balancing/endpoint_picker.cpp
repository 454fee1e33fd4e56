#include "meridian/balancing/endpoint_picker.hpp"

#include <algorithm>

#include "meridian/balancing/steering.hpp"

namespace meridian::balancing {

namespace {

// splitmix64: a cheap, well-mixed step for weighted random choices.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// What a pick may take: endpoints that are healthy, not disabled, not full and not ejected,
// and, unless drain is allowed, not draining either; with kRamp, ramping endpoints (slow
// start) only when their draw says so. A template parameter, so that the common pick pays
// nothing for slow start.
struct Filter {
  std::uint32_t cap;
  std::int64_t now_ns;
  bool allow_drain;
  std::int64_t slow_start_ns = 0;  // > 0: ramping endpoints pass with their ramp's probability
  std::uint64_t ticket = 0;        // this pick's random draw (the same for both passes)
};

// The slow-start draw: whether a ramping endpoint takes part in this pick. Out of line: only
// backends with slow_start reach it.
[[gnu::noinline]] bool passes_ramp(const EndpointState& e, const Filter& f) {
  const double ramp = slow_start_ramp(e, f.slow_start_ns, f.now_ns);
  if (ramp >= 1.0) return true;
  // A draw per (pick, endpoint), fixed within the pick so both passes agree.
  const auto draw = mix(f.ticket ^ reinterpret_cast<std::uintptr_t>(&e));
  return static_cast<double>(draw >> 11) * 0x1.0p-53 < ramp;
}

template <bool kRamp>
bool usable(const EndpointState& e, const Filter& f) {
  if (!f.allow_drain && e.admin_state.load(std::memory_order_relaxed) == AdminState::drain) {
    return false;
  }
  if (!is_available(e, f.cap) || e.is_ejected(f.now_ns)) return false;
  if constexpr (kRamp) {
    // Most endpoints are not ramping: two loads tell, and only the others draw.
    const std::int64_t since = std::max(e.recovered_at_ns.load(std::memory_order_relaxed),
                                        e.ejected_until_ns.load(std::memory_order_relaxed));
    if (since != 0 && f.now_ns - since < f.slow_start_ns) return passes_ramp(e, f);
  }
  return true;
}

template <bool kRamp>
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
    if (tried.contains(e.get()) || !usable<kRamp>(*e, f)) continue;
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
    if (tried.contains(e.get()) || !usable<kRamp>(*e, f)) continue;
    // in_flight may have moved since the first pass (other workers); an endpoint that is no
    // longer at the best load is passed over, and the last tie found is the fallback.
    const std::uint64_t load = e->in_flight.load(std::memory_order_relaxed);
    if (load * best_weight != best_load * e->weight) continue;
    if (wanted == 0) return &e;
    --wanted;
  }
  // Loads changed under us between the passes: fall back to the first available endpoint.
  for (const auto& e : region.endpoints) {
    if (!tried.contains(e.get()) && usable<kRamp>(*e, f)) return &e;
  }
  return nullptr;
}

template <bool kRamp>
const std::shared_ptr<EndpointState>* pick_weighted(const RegionRuntime& region, const Filter& f,
                                                    const TriedEndpoints& tried,
                                                    std::uint64_t ticket) {
  std::uint64_t total = 0;
  for (const auto& e : region.endpoints) {
    if (!tried.contains(e.get()) && usable<kRamp>(*e, f)) total += e->weight;
  }
  if (total == 0) return nullptr;
  std::uint64_t point = ticket % total;
  for (const auto& e : region.endpoints) {
    if (tried.contains(e.get()) || !usable<kRamp>(*e, f)) continue;
    if (point < e->weight) return &e;
    point -= e->weight;
  }
  return nullptr;
}

// Draining endpoints are the last resort: a second pass admits them only when no active one
// is left (rare, so the common pick walks the endpoints once or twice as before).
// `f.allow_drain` says whether that second pass may happen.
template <bool kRamp>
const std::shared_ptr<EndpointState>* pick_in(const RegionRuntime& region, config::Balance balance,
                                              Filter f, const TriedEndpoints& tried,
                                              std::uint64_t& rotation) {
  const bool drain_allowed = f.allow_drain;
  for (const bool drain_ok : {false, true}) {
    if (drain_ok && !drain_allowed) break;
    f.allow_drain = drain_ok;
    const std::shared_ptr<EndpointState>* picked = nullptr;
    switch (balance) {
      case config::Balance::least_conn:
        picked = pick_least_conn<kRamp>(region, f, tried, rotation);
        break;
      case config::Balance::round_robin:
        // Weighted round robin: consecutive tickets walk the cumulative weight line, so each
        // endpoint gets `weight` turns out of every `total` requests on this worker.
        picked = pick_weighted<kRamp>(region, f, tried, rotation++);
        break;
      case config::Balance::random:
        picked = pick_weighted<kRamp>(region, f, tried, mix(rotation++));
        break;
    }
    if (picked != nullptr) return picked;
  }
  return nullptr;
}

}  // namespace

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
                                                    bool allow_drain, std::int64_t slow_start_ns) {
  if (region.endpoints.empty()) return nullptr;
  // Slow start first filters ramping endpoints by their draw; if that leaves nothing, the
  // same pick again without it (the region was chosen: a ramping endpoint beats none).
  if (slow_start_ns > 0) {
    const Filter f{max_connections_per_endpoint, now_ns, allow_drain, slow_start_ns,
                   mix(rotation ^ 0x5bd1e995ULL)};
    if (const auto* picked = pick_in<true>(region, balance, f, tried, rotation)) return picked;
  }
  return pick_in<false>(region, balance, Filter{max_connections_per_endpoint, now_ns, allow_drain},
                        tried, rotation);
}

}  // namespace meridian::balancing
