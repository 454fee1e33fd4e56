#include "meridian/server/status_page.hpp"

#include <cstdio>
#include <iterator>

#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/balancing/steering.hpp"
#include "meridian/core/json.hpp"
#include "meridian/metrics/registry.hpp"

namespace meridian::server {

namespace {

void append_number(std::string& out, double v) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%.3f", v);
  out.append(digits);
}

// Where a client of each inhabited continent is steered now (the status page's "who goes
// where"): steering run for a client at the continent's rough centre, with its continent code
// so that fencing rules apply. A client's country can fence it differently; this is the
// continent's view.
struct ContinentProbe {
  const char* code;
  double lat, lon;
};
constexpr ContinentProbe kContinents[] = {{"NA", 40.0, -100.0}, {"SA", -15.0, -60.0},
                                          {"EU", 50.0, 10.0},   {"AF", 2.0, 17.0},
                                          {"AS", 34.0, 100.0},  {"OC", -25.0, 135.0}};

void append_steering(std::string& out, const proxy::Snapshot& snapshot,
                     const balancing::BackendRuntime& b, std::int64_t now) {
  out.append(",\"steering\":[");
  for (std::size_t i = 0; i < std::size(kContinents); ++i) {
    const auto& c = kContinents[i];
    geo::ClientLocation client;
    client.has_coordinates = true;
    client.lat = c.lat;
    client.lon = c.lon;
    client.continent[0] = c.code[0];
    client.continent[1] = c.code[1];
    const auto order = balancing::order_regions(b, client, snapshot.config->node.location, now, 0);
    if (i > 0) out.push_back(',');
    out.append("{\"continent\":");
    json::append_string(out, c.code);
    out.append(",\"region\":");
    if (order.count == 0) {
      out.append("null,\"reason\":null}");
      continue;
    }
    json::append_string(out, b.regions[order.index[0]].config->name);
    out.append(",\"reason\":");
    json::append_string(out, metrics::kSelectReasonNames[static_cast<std::size_t>(order.reason)]);
    out.push_back('}');
  }
  out.push_back(']');
}

}  // namespace

std::string_view drain_phase_name(DrainPhase phase) {
  switch (phase) {
    case DrainPhase::serving:
      return "serving";
    case DrainPhase::grace:
      return "grace";
    case DrainPhase::draining:
      return "draining";
  }
  return "serving";
}

std::string status_json(const proxy::Snapshot& snapshot, const ReloadStatus& reload,
                        const NodeState& node, StoreConnections store,
                        const std::vector<dns::Refresher::NameStatus>& dns) {
  const auto now = balancing::steady_now_ns();
  std::string out;
  out.reserve(4096);
  out.append("{\"node\":");
  json::append_string(out, snapshot.config->node.name);
  out.append(",\"generation\":");
  out.append(std::to_string(reload.generation));
  out.append(",\"draining\":");
  out.append(node.drain_phase != DrainPhase::serving ? "true" : "false");
  out.append(",\"drain_phase\":");
  json::append_string(out, drain_phase_name(node.drain_phase));
  out.append(",\"maintenance\":");
  out.append(node.maintenance ? "true" : "false");
  out.append(",\"ready\":");
  out.append(node_unready_reason(node).empty() ? "true" : "false");
  out.append(",\"shared_state\":");
  if (node.shared_state_redis.empty()) {
    out.append("null");
  } else {
    out.append("{\"redis\":");
    json::append_string(out, node.shared_state_redis);
    out.append(",\"connected\":");
    out.append(node.shared_state_connected ? "true" : "false");
    out.push_back('}');
  }
  out.append(",\"last_reload\":{\"result\":");
  json::append_string(out, reload.last_result);
  out.append(",\"time\":");
  json::append_string(out, reload.last_time);
  out.append(",\"errors\":");
  json::append_string(out, reload.last_error);
  out.append("},\"backends\":[");
  bool first_backend = true;
  for (const auto& b : snapshot.backends) {
    if (!first_backend) out.push_back(',');
    first_backend = false;
    out.append("{\"name\":");
    json::append_string(out, b.config->name);
    out.append(",\"regions\":[");
    bool first_region = true;
    for (const auto& r : b.regions) {
      if (!first_region) out.push_back(',');
      first_region = false;
      out.append("{\"name\":");
      json::append_string(out, r.config->name);
      out.append(",\"eligible\":");
      out.append(balancing::region_eligible(r, b.config->max_connections_per_endpoint, now)
                     ? "true"
                     : "false");
      out.append(",\"latency_ms\":");
      append_number(out, balancing::region_measured_ms(r, now));
      out.append(",\"state\":");
      json::append_string(out, balancing::admin_state_name(r.state->admin_state));
      out.append(",\"location\":");
      if (r.config->location) {
        out.append("{\"lat\":");
        append_number(out, r.config->location->lat);
        out.append(",\"lon\":");
        append_number(out, r.config->location->lon);
        out.push_back('}');
      } else {
        out.append("null");
      }
      out.append(",\"endpoints\":[");
      bool first_endpoint = true;
      for (const auto& e : r.endpoints) {
        if (!first_endpoint) out.push_back(',');
        first_endpoint = false;
        out.append("{\"address\":");
        json::append_string(out, e->address);
        if (!e->resolved_from.empty()) {
          out.append(",\"resolved_from\":");
          json::append_string(out, e->resolved_from);
        }
        out.append(",\"healthy\":");
        out.append(e->healthy.load(std::memory_order_relaxed) ? "true" : "false");
        out.append(",\"ejected\":");
        out.append(e->is_ejected(now) ? "true" : "false");
        out.append(",\"in_flight\":");
        out.append(std::to_string(e->in_flight.load(std::memory_order_relaxed)));
        out.append(",\"latency_ms\":");
        append_number(out, e->rtt_ewma_us.load(std::memory_order_relaxed) / 1000.0);
        out.append(",\"weight\":");
        out.append(std::to_string(e->weight));
        out.append(",\"state\":");
        json::append_string(out, balancing::admin_state_name(e->own_admin_state.load()));
        out.append(",\"state_in_force\":");
        json::append_string(out, balancing::admin_state_name(e->admin_state.load()));
        out.push_back('}');
      }
      out.append("]}");
    }
    out.push_back(']');
    append_steering(out, snapshot, b, now);
    out.push_back('}');
  }
  out.append("],\"rate_limits\":{\"keys\":");
  out.append(std::to_string(snapshot.buckets ? snapshot.buckets->size() : 0));
  out.append(",\"max_keys\":");
  out.append(std::to_string(snapshot.config->limits.max_rate_limit_keys));
  if (snapshot.config->rate_limit_store) {
    out.append(",\"store\":{\"address\":");
    json::append_string(out, snapshot.config->rate_limit_store->redis.text);
    out.append(",\"workers_connected\":");
    out.append(std::to_string(store.up));
    out.append(",\"workers\":");
    out.append(std::to_string(store.workers));
    out.push_back('}');
  }
  out.append(",\"routes\":[");
  bool first_limit = true;
  for (const auto& l : snapshot.listeners) {
    for (const auto& limit : l.limits) {
      if (!limit) continue;
      if (!first_limit) out.push_back(',');
      first_limit = false;
      out.append("{\"route\":");
      json::append_string(out, limit->name);
      out.append(",\"scope\":");
      out.append(limit->config.scope == config::RateLimitScope::global ? "\"global\""
                                                                       : "\"local\"");
      out.append(",\"limited\":");
      out.append(std::to_string(limit->limited.load(std::memory_order_relaxed)));
      out.push_back('}');
    }
  }
  out.append("]},\"dns\":[");
  for (std::size_t i = 0; i < dns.size(); ++i) {
    const auto& name = dns[i];
    if (i > 0) out.push_back(',');
    out.append("{\"name\":");
    json::append_string(out, name.host);
    out.append(",\"every_ms\":");
    out.append(std::to_string(name.every.count()));
    out.append(",\"addresses\":[");
    for (std::size_t k = 0; k < name.addresses.size(); ++k) {
      if (k > 0) out.push_back(',');
      json::append_string(out, name.addresses[k].to_string());
    }
    out.append("],\"ttl_s\":");
    out.append(std::to_string(name.ttl.count()));
    out.append(",\"last_result\":");
    json::append_string(out, name.last_result);
    out.append(",\"last_error\":");
    json::append_string(out, name.last_error);
    out.push_back('}');
  }
  out.append("]}\n");
  return out;
}

std::string reload_json(bool ok, std::uint64_t generation, const std::vector<std::string>& errors) {
  std::string out = ok ? "{\"result\":\"success\"" : "{\"result\":\"failure\"";
  out.append(",\"generation\":");
  out.append(std::to_string(generation));
  out.append(",\"errors\":[");
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out.push_back(',');
    json::append_string(out, errors[i]);
  }
  out.append("]}\n");
  return out;
}

std::string node_unready_reason(const NodeState& node) {
  if (node.drain_phase != DrainPhase::serving) return "draining";
  if (node.maintenance) return "maintenance";
  return {};
}

bool backend_available(const balancing::BackendRuntime& backend) {
  const auto now = balancing::steady_now_ns();
  for (const auto& r : backend.regions) {
    for (const auto& e : r.endpoints) {
      if (balancing::is_available(*e, 0) && !e->is_ejected(now)) return true;
    }
  }
  return false;
}

}  // namespace meridian::server
