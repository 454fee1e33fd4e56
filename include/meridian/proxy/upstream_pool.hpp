// Idle keep-alive connections to upstream endpoints, per worker (never shared across workers,
// so lending and returning take no lock). An idle connection is closed after
// keepalive.idle_timeout or when the origin closes it or sends anything unexpected.
//
// How many stay pooled follows demand, as HAProxy's idle pools do: an endpoint keeps up to
// keepalive.max_idle_per_endpoint idle connections for keepalive.idle_timeout whatever the
// traffic, and beyond that every connection a request gives back, for as long as it is used
// again within kSurplusIdle. Each HTTP/1.1 request in flight holds a connection of its own, so
// a fixed cap below the concurrency -- 100 streams of HTTP/2 clients against the default 64 --
// would close connections at every release and dial them again at the next request. Lent
// most recently used first, the connections a burst needs keep circulating; once demand falls,
// the ones it no longer needs sit idle at the front and the sweep closes them beyond
// max_idle_per_endpoint after kSurplusIdle. No count of requests is kept for this: a worker
// never has more connections to an endpoint than it had requests to it at once, and never
// keeps more than that. `0` still pools nothing.
//
// Watching for that close is a read on the idle socket, which with Asio costs a system call
// when it is started (a speculative recv that finds nothing) and another when it is
// cancelled and replaced by the next request's read. Under load a connection is idle for
// microseconds, so the watch starts only at the worker's next sweep (every 100 ms): busy
// connections are never watched, idle ones within a tick. A close that lands in that window
// is met by the exchange's one free retry on a fresh connection (as nginx does).
// Thread: the owning worker only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/net/socket.hpp"
#include "meridian/net/transport.hpp"

namespace meridian::proxy {

struct UpstreamConnection {
  explicit UpstreamConnection(boost::asio::io_context& ioc,
                              std::shared_ptr<balancing::EndpointState> e)
      : transport(ioc), endpoint(std::move(e)) {}

  // TLS for a backend with `tls`, from the handshake on.
  net::Transport transport;
  // Keeps the endpoint's state alive while the connection exists, even across a reload that
  // removed the endpoint; also the pool's key.
  std::shared_ptr<balancing::EndpointState> endpoint;
  std::uint64_t requests = 0;    // served on this connection
  std::uint64_t idle_token = 0;  // changes each time it enters or leaves the pool
  char probe = 0;                // one-byte buffer for the idle read that detects a close
  bool watched = false;          // that read is pending (see UpstreamPool::sweep)
};

class UpstreamPool {
 public:
  // A pooled connection to `endpoint`, most recently used first, or null.
  std::shared_ptr<UpstreamConnection> acquire(const balancing::EndpointState* endpoint);

  // Returns a connection whose last exchange ended cleanly. Closed instead when `max_idle` is
  // 0 or `idle_timeout` not positive.
  void release(std::shared_ptr<UpstreamConnection> conn, std::uint32_t max_idle,
               std::chrono::milliseconds idle_timeout);

  // Closes idle connections whose idle timeout passed and those beyond max_idle idle for
  // kSurplusIdle, and starts watching those that have been idle since the previous sweep.
  // O(idle connections).
  void sweep(net::Clock::time_point now);
  // Closes every idle connection (drain).
  void clear();

  std::size_t idle_count() const { return idle_total_; }
  // How long a connection beyond max_idle_per_endpoint stays idle before it is closed.
  static constexpr std::chrono::seconds kSurplusIdle{5};
  // Connections dialled by this pool's owner. Only counted so far: neither /status nor a test
  // reads it yet.
  std::uint64_t connects = 0;

 private:
  struct Idle {
    std::shared_ptr<UpstreamConnection> conn;
    net::Clock::time_point since;  // given back then
  };
  // The backend's keepalive settings as of the last release (a reload applies from then).
  struct EndpointPool {
    std::vector<Idle> idle;  // release order: least recently used first
    std::uint32_t max_idle = 0;
    std::chrono::milliseconds idle_timeout{0};
  };
  void watch(const std::shared_ptr<UpstreamConnection>& conn);
  void remove(const UpstreamConnection* conn);
  void close_front(EndpointPool& pool, std::size_t n);

  std::unordered_map<const balancing::EndpointState*, EndpointPool> pools_;
  std::size_t idle_total_ = 0;
  std::uint64_t next_token_ = 1;
};

}  // namespace meridian::proxy
