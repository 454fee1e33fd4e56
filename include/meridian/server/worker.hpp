// One worker: a thread running its own io_context with its own SO_REUSEPORT listening
// sockets, sessions and upstream pool (thread per core, shared-nothing). The main
// thread talks to it only by posting: a new snapshot, or the order to drain.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/net/acceptor.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/snapshot.hpp"
#include "meridian/proxy/worker_context.hpp"

namespace meridian::server {

class Worker {
 public:
  // The counters are node-wide, owned by the server and shared by every worker.
  Worker(std::size_t index, std::atomic<std::uint64_t>& node_connections,
         std::atomic<std::uint32_t>& store_connections, metrics::WorkerCounters& counters,
         accesslog::AccessLog& access_log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Main thread, before start(): opens this worker's socket for `listener` on `endpoint`.
  // Throws boost::system::system_error when the address cannot be bound.
  void open_listener(const std::string& listener, const boost::asio::ip::tcp::endpoint& endpoint);
  boost::asio::ip::tcp::endpoint listener_endpoint(std::size_t i) const;

  void start(std::shared_ptr<const proxy::Snapshot> snapshot);
  // Before start(): how a failed upstream connect reaches the health checker
  // (WorkerContext::report_connect_failure). Called on this worker's thread.
  void set_connect_failure_report(
      std::function<void(const balancing::EndpointState* endpoint)> report) {
    ctx_.report_connect_failure = std::move(report);
  }
  // Any thread: the snapshot new requests use from now on.
  void publish(std::shared_ptr<const proxy::Snapshot> snapshot);

  // A reload's listener changes for this worker: sockets opened on the main thread with
  // open_socket() (so that a bind error fails the reload before anything changed), and the
  // names of listeners to close. Kept listeners are not touched.
  struct ListenerChanges {
    std::vector<std::string> removed;
    std::vector<std::pair<std::string, net::TcpAcceptor>> added;
  };
  // Main thread: a listening socket on this worker's io_context. Throws system_error.
  net::TcpAcceptor open_socket(const boost::asio::ip::tcp::endpoint& endpoint);
  // Any thread: closes the removed listeners, starts the added ones, then installs
  // `snapshot`, all in one step on the worker.
  void publish(std::shared_ptr<const proxy::Snapshot> snapshot, ListenerChanges changes);
  // Any thread: stop accepting, close idle connections, let requests in flight finish; the
  // thread ends when the last session is gone.
  void drain();
  // Any thread: stop at once (drain_timeout passed).
  void stop();
  void join();
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  // Worker thread (or main before start): the snapshot in force, and the rate limit store
  // connection it asks for.
  void install(std::shared_ptr<const proxy::Snapshot> snapshot);
  void tick();
  void on_accept(const std::string* listener, net::TcpSocket socket,
                 const boost::asio::ip::tcp::endpoint& peer);

  std::size_t index_;
  // One thread runs it. UNSAFE_IO drops the reactor's per-socket locks (every socket is used
  // by this thread alone: the main thread only registers sockets, at a reload, and posts),
  // while posting and registration stay locked, as cross-thread posts need.
  boost::asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  proxy::WorkerContext ctx_;
  proxy::ActiveRequestPool requests_{ctx_};
  boost::asio::steady_timer ticker_;
  std::vector<std::shared_ptr<net::Acceptor>> acceptors_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::atomic<std::uint32_t>& store_connections_;
};

}  // namespace meridian::server
