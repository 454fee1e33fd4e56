#include "meridian/proxy/snapshot.hpp"

namespace meridian::proxy {

namespace {

std::shared_ptr<ratelimit::RouteLimit> find_limit(const ListenerRuntime& listener,
                                                  const std::string& listener_name,
                                                  const std::string& route_name,
                                                  const config::RateLimit& limit) {
  for (const auto& l : listener.limits) {
    if (l && l->same_as(listener_name, route_name, limit)) return l;
  }
  return nullptr;
}

}  // namespace

int Snapshot::listener_index(const std::string& name) const {
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    if (listeners[i].config->name == name) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<const Snapshot> Snapshot::build(std::shared_ptr<const config::Config> config,
                                                const Snapshot* previous, std::uint64_t generation,
                                                metrics::Registry& registry, std::string& error,
                                                const dns::ResolvedAddresses* resolved) {
  auto s = std::make_shared<Snapshot>();
  s->config = std::move(config);
  if (!s->config->geoip.database.empty()) {
    s->geo = geo::GeoLocator::open(s->config->geoip.database, error);
    if (!s->geo) {
      error = "geoip.database: " + error;
      return nullptr;
    }
  }
  s->generation = generation;
  s->via = "1.1 " + s->config->node.name;
  s->access_log_on = s->config->access_log.path != "off";
  s->listeners.reserve(s->config->listeners.size());
  bool client_keys = false;
  for (const auto& l : s->config->listeners) {
    ListenerRuntime runtime{&l, http::Router(l.routes), {}, {}, 0, 0, nullptr};
    if (l.tls) {
      try {
        runtime.tls = tls::ServerContext::build(*l.tls);
      } catch (const tls::TicketKeyFileError& e) {
        error = "listener " + l.name + ": tls.ticket_keys: " + e.what();
        return nullptr;
      } catch (const std::exception& e) {
        error = "listener " + l.name + ": tls.certificates: " + e.what();
        return nullptr;
      }
    }
    runtime.connections_series = registry.listener_series(l.name);
    runtime.no_route_series = registry.request_series({l.name, "", "", ""});
    const ListenerRuntime* before = nullptr;
    if (previous != nullptr) {
      const int index = previous->listener_index(l.name);
      if (index >= 0) before = &previous->listeners[static_cast<std::size_t>(index)];
    }
    for (const auto& route : l.routes) {
      std::shared_ptr<ratelimit::RouteLimit> limit;
      if (route.rate_limit) {
        if (before != nullptr) limit = find_limit(*before, l.name, route.name, *route.rate_limit);
        if (!limit) {
          limit = std::make_shared<ratelimit::RouteLimit>(l.name, route.name, *route.rate_limit);
          // A changed limit starts with full buckets, but its refusal count goes on
          // (meridian_rate_limited_total is a counter).
          for (const auto& old : before != nullptr ? before->limits : runtime.limits) {
            if (old && old->name == limit->name) limit->limited.store(old->limited.load());
          }
        }
        client_keys = client_keys || (route.rate_limit->scope == config::RateLimitScope::local &&
                                      route.rate_limit->key != config::RateLimitKey::route);
      }
      runtime.limits.push_back(std::move(limit));
      auto& per_backend = runtime.series.emplace_back();
      if (route.redirect) {
        per_backend.push_back({registry.request_series({l.name, route.name, "", ""}), {}});
      }
      for (const auto& entry : route.backends) {
        const auto& backend = s->config->backends[entry.index];
        RouteSeries& series = per_backend.emplace_back();
        series.local = registry.request_series({l.name, route.name, backend.name, ""});
        for (const auto& region : backend.regions) {
          series.regions.push_back(
              registry.request_series({l.name, route.name, backend.name, region.name}));
        }
      }
    }
    s->listeners.push_back(std::move(runtime));
  }
  if (client_keys) {
    const std::uint64_t max_keys = s->config->limits.max_rate_limit_keys;
    if (previous != nullptr && previous->buckets && previous->buckets->max_keys() == max_keys) {
      s->buckets = previous->buckets;
    } else {
      s->buckets = std::make_shared<ratelimit::LocalBuckets>(static_cast<std::size_t>(max_keys));
    }
  }
  for (const auto& b : s->config->backends) {
    auto& ids = s->region_series.emplace_back();
    for (const auto& r : b.regions)
      ids.push_back(registry.region_series({b.name, r.name}));
  }
  s->backends = balancing::build_backends(
      *s->config,
      previous != nullptr ? std::span<const balancing::BackendRuntime>(previous->backends)
                          : std::span<const balancing::BackendRuntime>(),
      resolved);
  for (const auto& b : s->config->backends) {
    std::shared_ptr<boost::asio::ssl::context> context;
    if (b.tls) {
      try {
        context = tls::make_client_context(*b.tls, b.protocol);
      } catch (const std::exception& e) {
        error = "backend " + b.name + ": tls: " + e.what();
        return nullptr;
      }
    }
    s->upstream_tls.push_back(std::move(context));
  }
  return s;
}

std::shared_ptr<const Snapshot> Snapshot::with_resolved(
    const dns::ResolvedAddresses& resolved) const {
  auto s = std::make_shared<Snapshot>(*this);
  s->backends = balancing::build_backends(*config, backends, &resolved);
  return s;
}

}  // namespace meridian::proxy
