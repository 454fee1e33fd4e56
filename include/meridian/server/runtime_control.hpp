// Runtime control through the admin API (docs/admin-api.md): POST /state overrides of regions
// and endpoints, and GET /ready?backend=NAME. Main thread, against the snapshot in force; an
// override lives in the shared region and endpoint states, so workers see it at their next
// pick and it survives reloads for the names that stay.
#pragma once

#include <string_view>

#include "meridian/admin/admin_server.hpp"
#include "meridian/proxy/snapshot.hpp"

namespace meridian::server {

// Applies `request` to the snapshot's region or endpoint: 200 with the new state as JSON,
// 404 naming what does not exist, 400 for a state other than active, drain or disabled.
// A change is logged, naming `source` ("POST /state", "the fleet").
admin::AdminAnswer set_runtime_state(const proxy::Snapshot& snapshot,
                                     const admin::StateRequest& request,
                                     std::string_view source = "POST /state");

// GET /ready?backend=NAME: 200 when the backend can serve (backend_available), 503 when it
// cannot, 404 for an unknown name.
admin::AdminAnswer backend_readiness(const proxy::Snapshot& snapshot, std::string_view backend);

}  // namespace meridian::server
