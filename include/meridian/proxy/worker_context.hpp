// What every session on one worker shares: the worker's io_context, its deadline list and
// upstream pool, the snapshot currently in force, and per-worker counters. Owned by the
// worker; touched only on the worker's thread (the snapshot pointer is replaced by a posted
// handler), so nothing here is synchronised.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "meridian/accesslog/access_log.hpp"
#include "meridian/accesslog/format.hpp"
#include "meridian/core/request_id.hpp"
#include "meridian/http/trace_context.hpp"
#include "meridian/metrics/registry.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/h2_upstream.hpp"
#include "meridian/proxy/snapshot.hpp"
#include "meridian/proxy/upstream_pool.hpp"
#include "meridian/ratelimit/redis_store.hpp"

namespace meridian::proxy {

class ActiveRequestPool;

struct WorkerContext {
  explicit WorkerContext(boost::asio::io_context& io) : ioc(io), h2_pool(io, deadlines) {}

  boost::asio::io_context& ioc;
  net::DeadlineList deadlines;
  UpstreamPool pool;
  H2UpstreamPool h2_pool;  // multiplexed connections to h2 and h2c backends
  // The state of requests in progress, lent to connections while they have one (owned by
  // the worker).
  ActiveRequestPool* requests = nullptr;
  std::shared_ptr<const Snapshot> snapshot;
  RequestIdGenerator request_ids;
  // Names each rate limit store request, so that a late answer finds no one waiting.
  std::uint64_t store_tags = 0;
  // Balancing counters (least_conn tie-breaks, round robin, random draws), one per region
  // of the snapshot, indexed by RegionRuntime::ordinal.
  std::vector<std::uint64_t> rotations;

  // The counter of the region with `ordinal`. Grows the vector the first time a snapshot
  // with more regions is used (the only allocation, once per reload at most); a request
  // pinned to an older snapshot reuses whatever counter its ordinal names, which is harmless.
  std::uint64_t& rotation(std::size_t ordinal) {
    if (ordinal >= rotations.size()) rotations.resize(ordinal + 1, 0);
    return rotations[ordinal];
  }

  // This worker's part of the request-path metric counters (owned by the server's
  // metrics::Registry).
  metrics::WorkerCounters* counters = nullptr;
  // The node's access log writer (owned by the server), null when access_log.path is off;
  // `index` is this worker's ring in it. The buffers are reused for every line.
  accesslog::AccessLog* access_log = nullptr;
  std::size_t index = 0;
  accesslog::TimeCache log_time;
  std::string log_line;

  // This worker's connection to the rate limit store (scope: global); null when the
  // snapshot in force has no rate_limit_store. Replaced when a reload changes the store.
  std::unique_ptr<ratelimit::RedisStore> redis;

  // Node-wide open downstream connections (limits.max_connections); shared by all workers.
  std::atomic<std::uint64_t>* node_connections = nullptr;

  // Listener names, each stored once for the worker's lifetime: a connection keeps a pointer
  // (8 bytes) to its listener's name, which outlives any reload that removes the listener.
  std::deque<std::string> listener_names;
  const std::string* intern(const std::string& name) {
    for (const auto& n : listener_names)
      if (n == name) return &n;
    return &listener_names.emplace_back(name);
  }

  // Tells the health checker (on the main thread) that a connect to `endpoint` failed or
  // timed out; see EndpointState::probe_requested. Empty in tests without a server.
  std::function<void(const balancing::EndpointState* endpoint)> report_connect_failure;

  // Where finished spans go (tracing.propagate: w3c), or null: the seam for a span exporter
  // (OTLP); none is built in yet, the access log carries the ids.
  http::SpanSink* spans = nullptr;

  // Requests mirrored (routes[].mirror) whose copy is still out (MirrorRequest::kMaxInFlight).
  std::size_t mirrors_in_flight = 0;

  bool draining = false;
  std::size_t sessions = 0;
  // Called when draining and the last session of this worker ended.
  std::function<void()> on_drained;
};

}  // namespace meridian::proxy
