#include "meridian/proxy/snapshot.hpp"

namespace meridian::proxy {

int Snapshot::listener_index(const std::string& name) const {
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    if (listeners[i].config->name == name) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<const Snapshot> Snapshot::build(std::shared_ptr<const config::Config> config,
                                                const Snapshot* previous, std::uint64_t generation,
                                                std::string& error) {
  auto s = std::make_shared<Snapshot>();
  s->config = std::move(config);
  if (!s->config->geoip.database.empty()) {
    s->geo = geo::GeoLocator::open(s->config->geoip.database, error);
    if (!s->geo) return nullptr;
  }
  s->generation = generation;
  s->via = "1.1 " + s->config->node.name;
  s->listeners.reserve(s->config->listeners.size());
  for (const auto& l : s->config->listeners) {
    s->listeners.push_back(ListenerRuntime{&l, http::Router(l.routes)});
  }
  s->backends = balancing::build_backends(
      *s->config, previous != nullptr
                      ? std::span<const balancing::BackendRuntime>(previous->backends)
                      : std::span<const balancing::BackendRuntime>());
  return s;
}

}  // namespace meridian::proxy
