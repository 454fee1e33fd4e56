#include "meridian/server/runtime_control.hpp"

#include <string>

#include "meridian/core/json.hpp"
#include "meridian/core/log.hpp"
#include "meridian/server/status_page.hpp"

namespace meridian::server {

namespace {

const balancing::BackendRuntime* find_backend(const proxy::Snapshot& snapshot,
                                              std::string_view name) {
  for (const auto& b : snapshot.backends) {
    if (b.config->name == name) return &b;
  }
  return nullptr;
}

std::string state_json(const admin::StateRequest& request, balancing::AdminState state) {
  std::string out = "{\"backend\":";
  json::append_string(out, request.backend);
  out.append(",\"region\":");
  json::append_string(out, request.region);
  if (request.endpoint) {
    out.append(",\"endpoint\":");
    json::append_string(out, *request.endpoint);
  }
  out.append(",\"state\":");
  json::append_string(out, balancing::admin_state_name(state));
  out.append("}\n");
  return out;
}

}  // namespace

admin::AdminAnswer set_runtime_state(const proxy::Snapshot& snapshot,
                                     const admin::StateRequest& request, std::string_view source) {
  const auto state = balancing::parse_admin_state(request.state);
  if (!state) {
    return {400, "state must be active, drain or disabled, got \"" + request.state + "\"\n"};
  }
  const auto* backend = find_backend(snapshot, request.backend);
  if (backend == nullptr) return {404, "unknown backend \"" + request.backend + "\"\n"};
  const balancing::RegionRuntime* region = nullptr;
  for (const auto& r : backend->regions) {
    if (r.config->name == request.region) region = &r;
  }
  if (region == nullptr) {
    return {404,
            "unknown region \"" + request.region + "\" of backend \"" + request.backend + "\"\n"};
  }
  std::string what = "backend " + request.backend + " region " + request.region;
  balancing::AdminState before;
  if (request.endpoint) {
    balancing::EndpointState* endpoint = nullptr;
    for (const auto& e : region->endpoints) {
      if (e->address == *request.endpoint) endpoint = e.get();
    }
    if (endpoint == nullptr) {
      return {404, "unknown endpoint \"" + *request.endpoint + "\" in region \"" + request.region +
                       "\" of backend \"" + request.backend + "\"\n"};
    }
    what += " endpoint " + *request.endpoint;
    before = endpoint->own_admin_state.exchange(*state);
  } else {
    before = region->state->admin_state;
    region->state->admin_state = *state;
  }
  balancing::apply_admin_state(*region);
  if (before != *state) {
    log::info("runtime state (", source, "): ", what, ": ", balancing::admin_state_name(before),
              " -> ", balancing::admin_state_name(*state));
  }
  return {200, state_json(request, *state), true};
}

admin::AdminAnswer backend_readiness(const proxy::Snapshot& snapshot, std::string_view backend) {
  const auto* b = find_backend(snapshot, backend);
  if (b == nullptr) return {404, "unknown backend \"" + std::string(backend) + "\"\n"};
  if (backend_available(*b)) return {200, "ready\n"};
  return {503, "not ready: backend " + std::string(backend) + " has no eligible region\n"};
}

}  // namespace meridian::server
