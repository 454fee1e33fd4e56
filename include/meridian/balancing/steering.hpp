// Steering across regions (docs/http-behaviour.md, steering and balancing): for one request,
// the order in which a backend's regions should be tried, best first, and why the first one was
// chosen (meridian_region_selected_total{reason}).
//
// Threads: called by any worker for every request. It reads the configuration (immutable) and
// the endpoints' atomics only (relaxed loads), takes no lock and allocates nothing; the result
// is a small value on the caller's stack.
//
// Complexity: O(R × E + G + N × R + R²) per call, R = regions considered (at most
// RegionOrder::kMax), E = endpoints per region (eligibility and the latency mean walk a
// region's endpoints a bounded number of times), G = the country/continent codes of the rules
// scanned until the first match, N = the matched rule's region names (resolved by string
// compare), and R² the insertion sort over at most kMax entries. One haversine per region.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "meridian/balancing/backend_runtime.hpp"
#include "meridian/config/config.hpp"
#include "meridian/geo/client_location.hpp"

namespace meridian::balancing {

struct RegionOrder {
  // Regions considered per backend. A backend with more regions has only its first kMax
  // (in configuration order) scored and ordered; the rest are ignored as if not configured.
  // Keeps the result a fixed-size value (no allocation on the data path).
  static constexpr std::size_t kMax = 32;

  // Indices into BackendRuntime::regions, best first; only eligible regions that are
  // candidates (a strict geo-fencing rule leaves only its own regions).
  std::array<std::uint16_t, kMax> index{};
  // 0: no eligible region; the caller answers 503 with Retry-After: 1.
  std::size_t count = 0;

  // The meridian_region_selected_total `reason` for index[0] (meaningless when count is 0):
  //   failover — index[0] is not the region that would have come first had every region been
  //              eligible (the preferred region is down, ejected or full). Takes precedence:
  //              a fenced client pushed from its best fenced region to another counts here.
  //   fenced   — a geo-fencing rule matched the client and index[0] is one of its regions.
  //   nearest  — otherwise: index[0] is simply the best-scoring region.
  //   overflow — the region that would have come first is at its `capacity`.
  //   shed     — the region that would have come first keeps only a share of its catchment
  //              (traffic_dial, too few healthy endpoints, slow start) and this client is
  //              not in it.
  enum class Reason : std::uint8_t { nearest, failover, fenced, overflow, shed };
  static constexpr std::size_t kReasons = 5;
  Reason reason = Reason::nearest;

  bool empty() const { return count == 0; }
};

// The steering decision for a request from `client` to `backend`.
//
// 1. Eligible regions have an endpoint that is healthy, not ejected at `now_ns` (steady_clock
//    ns, as EndpointState::ejected_until_ns), below max_connections_per_endpoint and not
//    disabled by an operator. Regions that can serve only from draining endpoints come
//    after all others, whatever their score or fencing.
// 2. The first steering rule whose continents or countries list holds the client's continent
//    or country matches (an unknown, empty, code matches nothing). Its regions come first,
//    ordered among themselves by score, then the other regions by score; a strict rule drops
//    the other regions altogether. Rule names that are not regions of the backend (or lie
//    beyond kMax) are ignored.
// 3. Score, lower is better: geo_weight * geo_ms + latency_weight * measured_ms, where
//    geo_ms = haversine_km(reference, region) / 100 with the reference point being the
//    client's coordinates, else `node_location`, else none (geo term 0); a region without a
//    location also has geo term 0. measured_ms = region_measured_ms. Policy geo keeps only
//    the geo term, latency only the latency term, nearest both; failover scores every region
//    0 so the configuration order stands. Ties keep configuration order.
//
// Preconditions: backend.config and every region's config are non-null (build_backends).
//
// 4. Spill-over and shedding (docs/http-behaviour.md): an eligible region at its `capacity`
//    (in-flight requests, node-wide) comes after every region with room; a region keeps
//    only region_keep_share() of its catchment, and a client outside that share (decided by
//    `client_hash` and the region, so a client does not bounce) finds the region after the
//    regions that keep it. Order of the tiers: normal, shed, full, drain-only; within a
//    tier, fencing group, then score.
RegionOrder order_regions(const BackendRuntime& backend, const geo::ClientLocation& client,
                          const std::optional<config::Location>& node_location, std::int64_t now_ns,
                          std::uint64_t client_hash = 0);

// A client address folded into the 64-bit value order_regions() sheds by.
std::uint64_t client_hash(const unsigned char* bytes, std::size_t n);

// Slow start: the share of its weight an endpoint has `now_ns`, from 0.1 when it recovered
// (EndpointState::recovered_at_ns, or the end of an ejection) rising linearly to 1 over
// `slow_start_ns`; 1 when slow start is off or over.
double slow_start_ramp(const EndpointState& e, std::int64_t slow_start_ns, std::int64_t now_ns);
// The same ramp for a recovery at `since` (0 = none: 1).
double ramp_at(std::int64_t since, std::int64_t slow_start_ns, std::int64_t now_ns);

// What steering knows of a region for one request (region_view(), below).
struct RegionView;

// The share of its own catchment a region keeps (docs/http-behaviour.md, shedding):
//   traffic_dial × (1 − shed) × ramp,  shed = max(0, 0.5 − healthy / configured)
// where healthy counts the endpoints that are healthy, not ejected and active, and ramp
// is the largest slow-start ramp among them. A region with 2 of 8 endpoints healthy sheds
// a quarter of its clients, 1 of 8 three eighths; at half or more it sheds nothing.
double region_keep_share(const RegionRuntime& region, const RegionView& view);

// Great-circle distance in km between two points in degrees (haversine, Earth radius 6371 km).
double haversine_km(double lat1, double lon1, double lat2, double lon2);

// The latency this node measures to `region` (the score's measured_ms), in milliseconds: the
// mean of rtt_ewma_us over the region's healthy, not-ejected endpoints that have a measurement
// (rtt_ewma_us != 0). 0 when there is none. Ejected endpoints are left out as Envoy treats
// outlier-ejected hosts as unhealthy: the mean describes the endpoints a request may reach.
// Full endpoints count (being full is momentary, not a property of the path). O(endpoints).
double region_measured_ms(const RegionRuntime& region, std::int64_t now_ns);

// Whether a region can take a request: `active` when an endpoint that is healthy, not
// ejected at now_ns, not full (max_connections_per_endpoint, 0 = unlimited), not disabled
// and not draining can; `drain_only` when only draining endpoints (or the region itself is
// draining) can, which order_regions puts after every active region; `none` otherwise.
// O(endpoints), stops at the first active one.
enum class RegionAvailability : std::uint8_t { none, drain_only, active };

struct RegionView {
  RegionAvailability availability = RegionAvailability::none;
  // Healthy, not ejected, active endpoints (full ones count), as last published
  // (RegionState::healthy_endpoints, at most kPublishPeriod old); kNotCounted sheds nothing.
  std::uint32_t healthy = RegionState::kNotCounted;
  double ramp = 1.0;  // slow start: the largest ramp among the healthy endpoints
};
// region_availability (which stops at the first active endpoint) and the published health.
RegionView region_view(const RegionRuntime& region, const config::Backend& backend,
                       std::int64_t now_ns);

// The region has a `capacity` and as many requests in flight (summed over its endpoints,
// node-wide). O(endpoints); order_regions asks only for the regions at the head of its
// order, and Exchange::dispatch for the regions a retry would go to.
bool region_full(const RegionRuntime& region);

RegionAvailability region_availability(const RegionRuntime& region,
                                       std::uint32_t max_connections_per_endpoint,
                                       std::int64_t now_ns);

// Eligible: region_availability is not `none`.
bool region_eligible(const RegionRuntime& region, std::uint32_t max_connections_per_endpoint,
                     std::int64_t now_ns);

}  // namespace meridian::balancing
