// One configuration generation as the data path uses it: the validated Config plus what is
// derived from it once (routers, backend runtime state, the Via value). Built on the main
// thread, immutable afterwards, shared by all workers as shared_ptr<const Snapshot>; each
// exchange pins the snapshot it started with (as Envoy pins one per request), so a reload
// never changes a request in flight.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "meridian/balancing/backend_runtime.hpp"
#include "meridian/config/config.hpp"
#include "meridian/geo/geo_locator.hpp"
#include "meridian/http/router.hpp"
#include "meridian/metrics/registry.hpp"
#include "meridian/ratelimit/local_buckets.hpp"
#include "meridian/ratelimit/route_limit.hpp"
#include "meridian/tls/client_context.hpp"
#include "meridian/tls/server_context.hpp"

namespace meridian::proxy {

// The metric series a route's requests to one of its backends count in (labels resolved once
// per snapshot): `local` for answers given before a region was chosen (backend set, region
// ""), and one per region of the backend, parallel to BackendRuntime::regions. A redirect
// route has one, with backend "" and no regions.
struct RouteSeries {
  metrics::SeriesId local = 0;
  std::vector<metrics::SeriesId> regions;
};

struct ListenerRuntime {
  const config::Listener* config = nullptr;
  http::Router router;
  // Parallel to config->routes: each route's rate limit state, null without one.
  std::vector<std::shared_ptr<ratelimit::RouteLimit>> limits;
  // Parallel to config->routes, then to each route's backends (one for a redirect).
  std::vector<std::vector<RouteSeries>> series;
  metrics::SeriesId no_route_series = 0;  // route "", backend "", region ""
  metrics::SeriesId connections_series = 0;
  // The listener's certificates and TLS settings (its `tls`), null for plain HTTP.
  std::shared_ptr<tls::ServerContext> tls;
};

struct Snapshot : std::enable_shared_from_this<Snapshot> {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerRuntime> listeners;           // parallel to config->listeners
  std::vector<balancing::BackendRuntime> backends;  // parallel to config->backends
  // Parallel to backends: the client TLS context of a backend with `tls`, else null.
  std::vector<std::shared_ptr<boost::asio::ssl::context>> upstream_tls;
  // Parallel to backends, then to each backend's regions: retries and region selections.
  std::vector<std::vector<metrics::SeriesId>> region_series;
  std::string via;             // "1.1 <node.name>"
  bool access_log_on = false;  // access_log.path is not "off" (checked per request)
  // The GeoIP database, opened (mmap) once per generation and shared read-only by every
  // worker; null when geoip.database is "". A reload opens the file anew, so a replaced
  // database is picked up.
  std::shared_ptr<const geo::GeoLocator> geo;
  // The node-wide buckets of scope-local client keys, bounded by
  // limits.max_rate_limit_keys; null when no route needs them. Carried over from the
  // previous snapshot while the bound stays the same, like the route limits.
  std::shared_ptr<ratelimit::LocalBuckets> buckets;
  std::uint64_t generation = 0;

  // Index of the listener named `name`, or -1. O(listeners); used when a session first sees a
  // new snapshot, not per request.
  int listener_index(const std::string& name) const;

  // `previous` (may be null) lends its endpoint states to endpoints present in both, and its
  // rate limit state to routes (by listener and name) whose limit is unchanged. `registry`
  // numbers the metric series (and allocates their counters on every worker).
  // Returns null with `error` set when a resource cannot be opened (the GeoIP database).
  // `resolved`: the endpoint names DNS re-resolution knows (build_backends), or null.
  static std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> config,
                                               const Snapshot* previous, std::uint64_t generation,
                                               metrics::Registry& registry, std::string& error,
                                               const dns::ResolvedAddresses* resolved = nullptr);
  // The same snapshot with its backends rebuilt from `resolved` (a DNS answer changed):
  // everything else is shared with this one. Main thread.
  std::shared_ptr<const Snapshot> with_resolved(const dns::ResolvedAddresses& resolved) const;
};

}  // namespace meridian::proxy
