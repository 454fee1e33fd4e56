// One access log line per request (docs/operations.md, access log): `json`, an object per line
// with at least time (RFC 3339, milliseconds, UTC), client, method, host, path, status,
// bytes_out, duration_ms, route, backend, region, endpoint and request_id; or `combined`, the
// Apache/nginx combined format that log tools already parse. Pure formatting into a caller's
// buffer (reused, so no allocation once it has grown), called on the worker that served the
// request.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "meridian/config/config.hpp"

namespace meridian::accesslog {

struct Entry {
  std::chrono::system_clock::time_point time;  // when the request completed
  std::string_view client;                     // the settled client address
  std::string_view method;                     // "" when the request line was unreadable
  std::string_view host;
  std::string_view target;  // as received, query included (combined's request line)
  std::string_view path;    // target without the query (json)
  unsigned version = 11;
  unsigned status = 0;
  std::uint64_t bytes_out = 0;  // bytes sent to the client for this response, head included
  double duration_ms = 0;       // first byte of the request to the last of the response
  std::string_view listener;
  std::string_view route;  // "" when no route matched
  std::string_view backend;
  std::string_view region;
  std::string_view endpoint;
  std::string_view request_id;
  std::string_view trace_id;  // tracing.propagate: w3c; empty otherwise
  std::string_view span_id;
  std::string_view user_agent;
  std::string_view referer;
};

// Caches the formatted second, so that most lines only append milliseconds (h2o and nginx
// keep "now" the same way). One per worker.
struct TimeCache {
  std::int64_t second = -1;
  char rfc3339[24] = {};  // "2026-11-27T14:39:01"
  char clf[32] = {};      // "27/Nov/2026:14:39:01 +0000"
};

// Appends the line, '\n' included, to `out` (cleared first).
void format(config::AccessLogFormat format, const Entry& entry, TimeCache& cache, std::string& out);

}  // namespace meridian::accesslog
