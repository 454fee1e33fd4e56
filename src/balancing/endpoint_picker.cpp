#include "meridian/balancing/endpoint_picker.hpp"

namespace meridian::balancing {

namespace {

// splitmix64: a cheap, well-mixed step for weighted random choices.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const std::shared_ptr<EndpointState>* pick_least_conn(const RegionRuntime& region, std::uint32_t cap,
                               const TriedEndpoints& tried, std::uint64_t& rotation) {
  const std::size_t n = region.endpoints.size();
  const std::size_t start = static_cast<std::size_t>(rotation++ % n);
  const std::shared_ptr<EndpointState>* best = nullptr;
  // Compare in_flight/weight without division: a/wa < b/wb  <=>  a*wb < b*wa.
  std::uint64_t best_load = 0;
  std::uint64_t best_weight = 1;
  for (std::size_t k = 0; k < n; ++k) {
    const auto& slot = region.endpoints[(start + k) % n];
    const EndpointState* e = slot.get();
    if (tried.contains(e) || !is_available(*e, cap)) continue;
    const std::uint64_t load = e->in_flight.load(std::memory_order_relaxed);
    if (best == nullptr || load * best_weight < best_load * e->weight) {
      best = &slot;
      best_load = load;
      best_weight = e->weight;
    }
  }
  return best;
}

const std::shared_ptr<EndpointState>* pick_weighted(const RegionRuntime& region, std::uint32_t cap,
                             const TriedEndpoints& tried, std::uint64_t ticket) {
  std::uint64_t total = 0;
  for (const auto& e : region.endpoints) {
    if (!tried.contains(e.get()) && is_available(*e, cap)) total += e->weight;
  }
  if (total == 0) return nullptr;
  std::uint64_t point = ticket % total;
  for (const auto& e : region.endpoints) {
    if (tried.contains(e.get()) || !is_available(*e, cap)) continue;
    if (point < e->weight) return &e;
    point -= e->weight;
  }
  return nullptr;
}

}  // namespace

bool is_available(const EndpointState& e, std::uint32_t max_connections_per_endpoint) {
  if (!e.healthy.load(std::memory_order_relaxed)) return false;
  return max_connections_per_endpoint == 0 ||
         e.in_flight.load(std::memory_order_relaxed) < max_connections_per_endpoint;
}

const std::shared_ptr<EndpointState>* pick_endpoint(const RegionRuntime& region, config::Balance balance,
                             std::uint32_t max_connections_per_endpoint,
                             const TriedEndpoints& tried, std::uint64_t& rotation) {
  if (region.endpoints.empty()) return nullptr;
  switch (balance) {
    case config::Balance::least_conn:
      return pick_least_conn(region, max_connections_per_endpoint, tried, rotation);
    case config::Balance::round_robin:
      // Weighted round robin: consecutive tickets walk the cumulative weight line, so each
      // endpoint gets `weight` turns out of every `total` requests on this worker.
      return pick_weighted(region, max_connections_per_endpoint, tried, rotation++);
    case config::Balance::random:
      return pick_weighted(region, max_connections_per_endpoint, tried, mix(rotation++));
  }
  return nullptr;
}

}  // namespace meridian::balancing
