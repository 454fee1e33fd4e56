#include "meridian/balancing/steering.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/core/splitmix.hpp"

namespace meridian::balancing {

namespace {

constexpr double kEarthRadiusKm = 6371.0;
// Light in fibre covers about 100 km of round trip per millisecond.
constexpr double kKmPerMs = 100.0;
// Slow start begins at this share of the full weight (HAProxy's slowstart begins near 0,
// Envoy's at its min_weight_percent, 10% by default).
constexpr double kSlowStartFloor = 0.1;

// Whether `code` (a client's country or continent, "" when unknown) is in `codes`.
bool listed(std::string_view code, const std::vector<std::string>& codes) {
  if (code.empty()) return false;
  return std::any_of(codes.begin(), codes.end(),
                     [code](const std::string& c) { return std::string_view(c) == code; });
}

// A NUL-terminated code in a char[3]; a full array (no NUL) is read as 3 characters.
std::string_view code_of(const char (&code)[3]) {
  std::size_t len = 0;
  while (len < sizeof code && code[len] != '\0')
    ++len;
  return {code, len};
}

// The first rule that covers the client (first match wins), or nullptr.
const config::GeoRule* matching_rule(const config::Steering& steering,
                                     const geo::ClientLocation& client) {
  const std::string_view country = code_of(client.country);
  const std::string_view continent = code_of(client.continent);
  if (country.empty() && continent.empty()) return nullptr;
  for (const auto& rule : steering.rules) {
    if (listed(country, rule.countries) || listed(continent, rule.continents)) return &rule;
  }
  return nullptr;
}

bool uses_geo(config::SteeringPolicy p) {
  return p == config::SteeringPolicy::nearest || p == config::SteeringPolicy::geo;
}

bool uses_latency(config::SteeringPolicy p) {
  return p == config::SteeringPolicy::nearest || p == config::SteeringPolicy::latency;
}

// How far down the order a region goes, whatever its score: a region that keeps only part
// of its catchment and this client is outside it (shed), one at its capacity (full), one
// that can serve only from draining endpoints (a region or endpoints in `drain` take new
// requests only when nothing else can).
enum class Tier : std::uint8_t { normal, shed, full, draining };

// Sort key of one considered region: tier, then fenced regions (group 0) before the others
// (group 1), then score, then configuration index, so equal scores keep the listed order.
struct Candidate {
  Tier tier = Tier::normal;
  std::uint8_t group = 1;
  double score = 0;
  std::uint16_t index = 0;
};

bool before(const Candidate& a, const Candidate& b) {
  if (a.tier != b.tier) return a.tier < b.tier;
  if (a.group != b.group) return a.group < b.group;
  if (a.score != b.score) return a.score < b.score;
  return a.index < b.index;
}

}  // namespace

double haversine_km(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = std::numbers::pi / 180.0;
  const double phi1 = lat1 * kRad;
  const double phi2 = lat2 * kRad;
  const double dphi = (lat2 - lat1) * kRad;
  const double dlambda = (lon2 - lon1) * kRad;
  const double s1 = std::sin(dphi / 2);
  const double s2 = std::sin(dlambda / 2);
  double a = s1 * s1 + std::cos(phi1) * std::cos(phi2) * s2 * s2;
  a = std::clamp(a, 0.0, 1.0);  // rounding can push antipodal points just past 1
  return 2 * kEarthRadiusKm * std::asin(std::sqrt(a));
}

namespace {

// Mean rtt_ewma_us in ms over the endpoints with a measurement; only the healthy, not-ejected
// ones unless `every_endpoint`.
double mean_rtt_ms(const RegionRuntime& region, std::int64_t now_ns, bool every_endpoint) {
  std::uint64_t sum_us = 0;
  std::uint64_t n = 0;
  for (const auto& e : region.endpoints) {
    if (!every_endpoint && (!e->healthy.load(std::memory_order_relaxed) || e->is_ejected(now_ns))) {
      continue;
    }
    const std::uint32_t rtt = e->rtt_ewma_us.load(std::memory_order_relaxed);
    if (rtt == 0) continue;  // no measurement yet
    sum_us += rtt;
    ++n;
  }
  if (n == 0) return 0;
  return static_cast<double>(sum_us) / static_cast<double>(n) / 1000.0;
}

}  // namespace

double region_measured_ms(const RegionRuntime& region, std::int64_t now_ns) {
  return mean_rtt_ms(region, now_ns, false);
}

std::uint64_t client_hash(const unsigned char* bytes, std::size_t n) {
  // FNV-1a over the address bytes, then a splitmix64 finish so nearby addresses spread.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ bytes[i]) * 0x100000001b3ULL;
  }
  return splitmix64(h);
}

double slow_start_ramp(const EndpointState& e, std::int64_t slow_start_ns, std::int64_t now_ns) {
  return ramp_at(e.recovered_since(now_ns), slow_start_ns, now_ns);
}

double ramp_at(std::int64_t since, std::int64_t slow_start_ns, std::int64_t now_ns) {
  if (since == 0 || slow_start_ns <= 0) return 1.0;
  const std::int64_t elapsed = now_ns - since;
  if (elapsed >= slow_start_ns) return 1.0;
  if (elapsed <= 0) return kSlowStartFloor;
  return kSlowStartFloor + (1.0 - kSlowStartFloor) * static_cast<double>(elapsed) /
                               static_cast<double>(slow_start_ns);
}

RegionView region_view(const RegionRuntime& region, const config::Backend& backend,
                       std::int64_t now_ns) {
  RegionView view;
  view.availability = region_availability(region, backend.max_connections_per_endpoint, now_ns);
  view.healthy = region.state->healthy_endpoints.load(std::memory_order_relaxed);
  if (backend.slow_start.count() > 0 && view.healthy == 0 &&
      view.availability != RegionAvailability::none) {
    // Down at the last count, eligible now: it came back within the last period, and
    // ramp_since_ns does not know it yet.
    view.ramp = kSlowStartFloor;
  } else if (backend.slow_start.count() > 0) {
    view.ramp = ramp_at(
        region.state->ramp_since_ns.load(std::memory_order_relaxed),
        std::chrono::duration_cast<std::chrono::nanoseconds>(backend.slow_start).count(), now_ns);
  }
  return view;
}

bool region_full(const RegionRuntime& region) {
  const std::uint32_t capacity = region.config->capacity;
  if (capacity == 0) return false;
  std::uint64_t in_flight = 0;
  for (const auto& e : region.endpoints) {
    in_flight += e->in_flight.load(std::memory_order_relaxed);
  }
  return in_flight >= capacity;
}

double region_keep_share(const RegionRuntime& region, const RegionView& view) {
  const double configured = static_cast<double>(region.endpoints.size());
  double share = region.config->traffic_dial * view.ramp;
  // 0 published while the region is eligible: it is coming back and the count is up to a
  // period old. Nothing is shed on that (slow start, if set, covers the return).
  if (configured > 0 && view.healthy != 0) {
    const double shed = 0.5 - static_cast<double>(view.healthy) / configured;
    if (shed > 0) share *= 1.0 - shed;
  }
  return share;
}

RegionAvailability region_availability(const RegionRuntime& region,
                                       std::uint32_t max_connections_per_endpoint,
                                       std::int64_t now_ns) {
  auto found = RegionAvailability::none;
  for (const auto& e : region.endpoints) {
    if (!is_available(*e, max_connections_per_endpoint) || e->is_ejected(now_ns)) continue;
    if (e->admin_state.load(std::memory_order_relaxed) != AdminState::drain) {
      return RegionAvailability::active;
    }
    found = RegionAvailability::drain_only;
  }
  return found;
}

bool region_eligible(const RegionRuntime& region, std::uint32_t max_connections_per_endpoint,
                     std::int64_t now_ns) {
  return region_availability(region, max_connections_per_endpoint, now_ns) !=
         RegionAvailability::none;
}

RegionOrder order_regions(const BackendRuntime& backend, const geo::ClientLocation& client,
                          const std::optional<config::Location>& node_location, std::int64_t now_ns,
                          std::uint64_t client_hash) {
  const config::Backend& cfg = *backend.config;
  const config::Steering& steering = cfg.steering;
  if (backend.regions.size() == 1 && steering.rules.empty()) {
    // One region and no fencing: nothing to order or score (the common single-region
    // backend pays for one eligibility check only).
    RegionOrder order;
    order.count = region_eligible(backend.regions[0], cfg.max_connections_per_endpoint, now_ns);
    return order;
  }
  const std::size_t n = std::min(backend.regions.size(), RegionOrder::kMax);

  // Geo-fencing: mark the matched rule's regions (by name, among the regions considered).
  std::array<bool, RegionOrder::kMax> fenced{};
  const config::GeoRule* rule = matching_rule(steering, client);
  bool any_fenced = false;
  if (rule != nullptr) {
    for (const auto& name : rule->regions) {
      for (std::size_t i = 0; i < n; ++i) {
        if (backend.regions[i].config->name == name) {
          fenced[i] = true;
          any_fenced = true;
          break;
        }
      }
    }
  }
  const bool strict = rule != nullptr && rule->strict;

  // The reference point for the geo term: the client's location, else the node's.
  std::optional<config::Location> reference;
  if (client.has_coordinates) {
    reference = config::Location{client.lat, client.lon};
  } else if (node_location) {
    reference = node_location;
  }
  const bool geo_term = uses_geo(steering.policy) && reference.has_value();
  const bool latency_term = uses_latency(steering.policy);

  // Score every considered candidate, eligible or not: the ineligible ones still tell which
  // region would have come first had every region been eligible (the failover reason). When
  // an ineligible region has no healthy measured endpoint left, its latency term is taken
  // over all its measured endpoints instead: a dead region must not look fast (measured 0)
  // and turn every other choice into a "failover". This affects the reason only, never the
  // order of eligible regions. Eligible ones are insertion-sorted into `sorted` as they come
  // (stable: a candidate moves only past strictly worse ones).
  std::array<Candidate, RegionOrder::kMax> sorted{};
  // Each considered region's tier; regions that are not eligible stay `draining` here,
  // which names them failover if they were the ideal.
  std::array<Tier, RegionOrder::kMax> tiers;
  tiers.fill(Tier::draining);
  std::size_t count = 0;
  bool have_ideal = false;
  Candidate ideal;
  for (std::size_t i = 0; i < n; ++i) {
    if (strict && !fenced[i]) continue;
    const RegionRuntime& region = backend.regions[i];
    const RegionView view = region_view(region, cfg, now_ns);
    const bool eligible = view.availability != RegionAvailability::none;
    Candidate c;
    c.group = fenced[i] ? 0 : 1;
    c.index = static_cast<std::uint16_t>(i);
    if (geo_term && region.config->location) {
      const config::Location& loc = *region.config->location;
      c.score += steering.geo_weight *
                 (haversine_km(reference->lat, reference->lon, loc.lat, loc.lon) / kKmPerMs);
    }
    if (latency_term) {
      double ms = mean_rtt_ms(region, now_ns, false);
      if (ms == 0 && !eligible) ms = mean_rtt_ms(region, now_ns, true);
      c.score += steering.latency_weight * ms;
    }

    if (!have_ideal || before(c, ideal)) {
      ideal = c;
      have_ideal = true;
    }
    if (!eligible) continue;
    // Tiers order the eligible regions only: the ideal stays the region that would serve had
    // every region been active with room, so traffic pushed off a draining region counts as
    // failover, off a full one as overflow, off a shedding one as shed.
    if (view.availability == RegionAvailability::drain_only) {
      c.tier = Tier::draining;
    } else if (region.config->traffic_dial < 1.0 || view.ramp < 1.0 ||
               (view.healthy != 0 && 2 * std::uint64_t{view.healthy} < region.endpoints.size())) {
      const double keep = region_keep_share(region, view);
      // The client's place in [0, 1) for this region: below `keep` it stays. Salted with the
      // region so that two shedding regions do not shed the same clients.
      if (unit_interval(splitmix64(client_hash ^ region.salt)) >= keep) c.tier = Tier::shed;
    }
    tiers[i] = c.tier;
    std::size_t slot = count++;
    while (slot > 0 && before(c, sorted[slot - 1])) {
      sorted[slot] = sorted[slot - 1];
      --slot;
    }
    sorted[slot] = c;
  }

  // Capacity, looked at lazily: only the head of the order takes this request, so only it is
  // summed. A full head region moves behind every region with room (before the draining
  // ones) and the next one is looked at; when all are full, the best of them serves.
  std::size_t full = 0;
  while (full < count && sorted[full].tier != Tier::draining &&
         region_full(backend.regions[sorted[full].index])) {
    tiers[sorted[full].index] = Tier::full;
    ++full;
  }
  RegionOrder order;
  order.count = count;
  std::size_t k = 0;
  std::size_t first_draining = full;
  while (first_draining < count && sorted[first_draining].tier != Tier::draining) {
    ++first_draining;
  }
  for (std::size_t i = full; i < first_draining; ++i)
    order.index[k++] = sorted[i].index;
  for (std::size_t i = 0; i < full; ++i)
    order.index[k++] = sorted[i].index;
  for (std::size_t i = first_draining; i < count; ++i)
    order.index[k++] = sorted[i].index;
  if (count == 0) return order;
  if (order.index[0] != ideal.index) {
    switch (tiers[ideal.index]) {
      case Tier::full:
        order.reason = RegionOrder::Reason::overflow;
        break;
      case Tier::shed:
        order.reason = RegionOrder::Reason::shed;
        break;
      default:  // not eligible, or draining
        order.reason = RegionOrder::Reason::failover;
    }
  } else if (any_fenced && fenced[order.index[0]]) {
    order.reason = RegionOrder::Reason::fenced;
  } else {
    order.reason = RegionOrder::Reason::nearest;
  }
  return order;
}

}  // namespace meridian::balancing
