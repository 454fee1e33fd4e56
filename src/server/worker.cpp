#include "meridian/server/worker.hpp"

#include <boost/asio/post.hpp>

#include "meridian/core/log.hpp"
#include "meridian/proxy/h1_session.hpp"

namespace meridian::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Worker::Worker(std::size_t index, std::atomic<std::uint64_t>& node_connections,
               std::atomic<std::uint32_t>& store_connections, metrics::WorkerCounters& counters,
               accesslog::AccessLog& access_log)
    : index_(index), ctx_(ioc_), ticker_(ioc_), store_connections_(store_connections) {
  ctx_.node_connections = &node_connections;
  ctx_.counters = &counters;
  ctx_.access_log = &access_log;
  ctx_.index = index;
  ctx_.requests = &requests_;
  ctx_.on_drained = [this] { ioc_.stop(); };
}

Worker::~Worker() {
  stop();
  join();
  // What is still open after a drain timeout goes down now, while ctx_ is alive: close
  // every session and connection, then run the aborted handlers that own them, so that no
  // session is left to be destroyed inside ~io_context after ctx_ is gone.
  ctx_.on_drained = nullptr;
  ticker_.cancel();
  for (auto& a : acceptors_)
    a->close();
  ctx_.pool.clear();
  ctx_.h2_pool.shutdown();
  ctx_.deadlines.abort_all();
  ctx_.redis.reset();  // answers what waits on it; the sessions are closed and ignore it
  try {
    ioc_.restart();
    ioc_.poll();
  } catch (const std::exception& e) {
    log::error("worker ", index_, ": shutdown: ", e.what());
  }
  ctx_.redis.reset();       // a snapshot installed by the poll above may have dialled again
  ctx_.requests = nullptr;  // a session destroyed later (there should be none) frees its own
}

void Worker::open_listener(const std::string& listener, const tcp::endpoint& endpoint) {
  auto acceptor = std::make_shared<net::Acceptor>(
      net::open_listener(ioc_, endpoint), listener,
      [this, name = ctx_.intern(listener)](net::TcpSocket socket, const tcp::endpoint& peer) {
        on_accept(name, std::move(socket), peer);
      });
  acceptors_.push_back(std::move(acceptor));
}

net::TcpAcceptor Worker::open_socket(const tcp::endpoint& endpoint) {
  return net::open_listener(ioc_, endpoint);
}

void Worker::publish(std::shared_ptr<const proxy::Snapshot> snapshot, ListenerChanges changes) {
  auto shared_changes = std::make_shared<ListenerChanges>(std::move(changes));
  asio::post(ioc_, [this, s = std::move(snapshot), c = std::move(shared_changes)]() mutable {
    for (const auto& name : c->removed) {
      for (auto it = acceptors_.begin(); it != acceptors_.end();) {
        if ((*it)->name() == name) {
          (*it)->close();
          it = acceptors_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& [name, socket] : c->added) {
      auto acceptor = std::make_shared<net::Acceptor>(
          std::move(socket), name,
          [this, interned = ctx_.intern(name)](net::TcpSocket client, const tcp::endpoint& peer) {
            on_accept(interned, std::move(client), peer);
          });
      if (ctx_.draining) {
        acceptor->close();  // a socket nobody accepts on would queue connections for nothing
        continue;
      }
      acceptor->start();
      acceptors_.push_back(std::move(acceptor));
    }
    install(std::move(s));
  });
}

tcp::endpoint Worker::listener_endpoint(std::size_t i) const {
  return acceptors_.at(i)->local_endpoint();
}

void Worker::install(std::shared_ptr<const proxy::Snapshot> snapshot) {
  ctx_.snapshot = std::move(snapshot);
  const auto& store = ctx_.snapshot->config->rate_limit_store;
  if (!store) {
    ctx_.redis.reset();
  } else if (!ctx_.redis || !ctx_.redis->serves(*store)) {
    ctx_.redis = std::make_unique<ratelimit::RedisStore>(ioc_, *store, &store_connections_);
  }
}

void Worker::start(std::shared_ptr<const proxy::Snapshot> snapshot) {
  install(std::move(snapshot));
  for (auto& a : acceptors_)
    a->start();
  tick();
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      // Nothing on the data path throws by design; reaching here is a bug worth a loud line.
      log::error("worker ", index_, ": stopped by an exception: ", e.what());
    }
    finished_.store(true, std::memory_order_release);
  });
}

void Worker::publish(std::shared_ptr<const proxy::Snapshot> snapshot) {
  asio::post(ioc_, [this, s = std::move(snapshot)]() mutable { install(std::move(s)); });
}

void Worker::drain() {
  asio::post(ioc_, [this] {
    if (ctx_.draining) return;
    ctx_.draining = true;
    for (auto& a : acceptors_)
      a->close();
    ctx_.pool.clear();
    ctx_.h2_pool.shutdown();
    ctx_.deadlines.drain_all();
    if (ctx_.sessions == 0) ioc_.stop();
  });
}

void Worker::stop() {
  ioc_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::tick() {
  ticker_.expires_after(net::DeadlineList::kTick);
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = net::Clock::now();
    ctx_.deadlines.sweep(now);
    ctx_.pool.sweep(now);
    ctx_.h2_pool.sweep();
    tick();
  });
}

void Worker::on_accept(const std::string* listener, net::TcpSocket socket,
                       const tcp::endpoint& peer) {
  const auto max = ctx_.snapshot->config->limits.max_connections;
  if (ctx_.draining ||
      (max != 0 && ctx_.node_connections->load(std::memory_order_relaxed) >= max)) {
    // limits.max_connections: accept and close, so the client learns at once.
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  std::make_shared<proxy::H1Session>(ctx_, std::move(socket), listener)->start(peer);
}

}  // namespace meridian::server
