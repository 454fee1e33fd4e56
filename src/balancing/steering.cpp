#include "meridian/balancing/steering.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/balancing/endpoint_picker.hpp"

namespace meridian::balancing {

namespace {

constexpr double kEarthRadiusKm = 6371.0;
// Light in fibre covers about 100 km of round trip per millisecond.
constexpr double kKmPerMs = 100.0;

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

// Sort key of one considered region: regions that can serve from active endpoints before
// those that only have draining ones (a region or endpoints in `drain` take new requests
// only when nothing else can), fenced regions (group 0) before the others (group 1), then
// score, then configuration index, so equal scores keep the listed order.
struct Candidate {
  bool draining = false;
  std::uint8_t group = 1;
  double score = 0;
  std::uint16_t index = 0;
};

bool before(const Candidate& a, const Candidate& b) {
  if (a.draining != b.draining) return !a.draining;
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
                          const std::optional<config::Location>& node_location,
                          std::int64_t now_ns) {
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
  std::size_t count = 0;
  bool have_ideal = false;
  Candidate ideal;
  for (std::size_t i = 0; i < n; ++i) {
    if (strict && !fenced[i]) continue;
    const RegionRuntime& region = backend.regions[i];
    const auto availability = region_availability(region, cfg.max_connections_per_endpoint, now_ns);
    const bool eligible = availability != RegionAvailability::none;
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
    // Drain orders the eligible regions only: the ideal stays the region that would serve
    // had every region been active, so traffic pushed off a draining region counts as
    // failover.
    c.draining = availability == RegionAvailability::drain_only;
    std::size_t slot = count++;
    while (slot > 0 && before(c, sorted[slot - 1])) {
      sorted[slot] = sorted[slot - 1];
      --slot;
    }
    sorted[slot] = c;
  }

  RegionOrder order;
  order.count = count;
  for (std::size_t k = 0; k < count; ++k)
    order.index[k] = sorted[k].index;
  if (count == 0) return order;
  if (sorted[0].index != ideal.index) {
    order.reason = RegionOrder::Reason::failover;
  } else if (any_fenced && fenced[sorted[0].index]) {
    order.reason = RegionOrder::Reason::fenced;
  } else {
    order.reason = RegionOrder::Reason::nearest;
  }
  return order;
}

}  // namespace meridian::balancing
