// GET /status (docs/admin-api.md): the node, the configuration generation and the last
// reload's result, and per backend, region and endpoint: health, ejection, requests in
// flight and measured latency. Built on the main thread from the current snapshot's
// shared endpoint states.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

std::string status_json(const proxy::Snapshot& snapshot, const ReloadStatus& reload, bool draining,
                        StoreConnections store = {});

// The answer to POST /reload: {"result":"success"|"failure","generation":N,"errors":[...]}.
std::string reload_json(bool ok, std::uint64_t generation, const std::vector<std::string>& errors);

// Why the snapshot cannot serve every backend (a backend with no eligible region), or "".
std::string unready_reason(const proxy::Snapshot& snapshot);

}  // namespace meridian::server
