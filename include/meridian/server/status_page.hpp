// GET /status (docs/admin-api.md): the node, the configuration generation and the last
// reload's result, and per backend, region and endpoint: health, ejection, requests in
// flight and measured latency. Built on the main thread from the current snapshot's
// shared endpoint states.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/dns/refresher.hpp"
#include "meridian/proxy/snapshot.hpp"

namespace meridian::server {

struct ReloadStatus {
  std::uint64_t generation = 0;
  std::string last_result = "none";  // "none", "success" or "failure"
  std::string last_error;            // the errors of the last failed reload, one per line
  std::string last_time;             // RFC 3339 UTC, "" before the first reload
};

// Workers whose connection to the rate limit store is up, of all workers.
struct StoreConnections {
  std::uint32_t up = 0;
  std::size_t workers = 0;
};

// Where the node stands in its life: serving, in the first drain phase (drain_grace:
// /ready answers 503, the listeners still serve), or draining (no longer accepting).
enum class DrainPhase : std::uint8_t { serving, grace, draining };

struct NodeState {
  DrainPhase drain_phase = DrainPhase::serving;
  bool maintenance = false;  // POST /maintenance?state=on
  // admin.shared_state: redis -- the Redis followed ("" when off) and whether it is connected.
  std::string shared_state_redis;
  bool shared_state_connected = false;
};

std::string_view drain_phase_name(DrainPhase phase);

// `dns`: the names DNS re-resolution follows (dns::Refresher::status()), shown under "dns".
std::string status_json(const proxy::Snapshot& snapshot, const ReloadStatus& reload,
                        const NodeState& node, StoreConnections store = {},
                        const std::vector<dns::Refresher::NameStatus>& dns = {});

// The answer to POST /reload: {"result":"success"|"failure","generation":N,"errors":[...]}.
std::string reload_json(bool ok, std::uint64_t generation, const std::vector<std::string>& errors);

// The node's readiness, as GET /ready answers it: why it is not ready ("draining",
// "maintenance"), or "" when it is. It does not depend on the origins: every node of a fleet
// sees the same origins, so a readiness that followed them would withdraw every node at once.
std::string node_unready_reason(const NodeState& node);

// Whether `backend` can serve: one of its regions has an endpoint that is healthy, not
// ejected and not disabled (a full endpoint counts: being full passes, being down does not).
bool backend_available(const balancing::BackendRuntime& backend);

}  // namespace meridian::server
