#include "meridian/proxy/upstream_pool.hpp"

#include <boost/asio/buffer.hpp>

namespace meridian::proxy {

std::shared_ptr<UpstreamConnection> UpstreamPool::acquire(
    const balancing::EndpointState* endpoint) {
  auto it = pools_.find(endpoint);
  if (it == pools_.end() || it->second.idle.empty()) return nullptr;
  auto& idle = it->second.idle;
  auto conn = std::move(idle.back().conn);
  idle.pop_back();
  --idle_total_;
  conn->idle_token = next_token_++;  // the pending idle read now belongs to nobody
  if (conn->watched) {
    conn->watched = false;
    conn->transport.cancel();
  }
  return conn;
}

void UpstreamPool::release(std::shared_ptr<UpstreamConnection> conn, std::uint32_t max_idle,
                           std::chrono::milliseconds idle_timeout) {
  if (max_idle == 0 || idle_timeout.count() <= 0) {
    conn->transport.close();
    return;
  }
  auto& pool = pools_[conn->endpoint.get()];
  pool.max_idle = max_idle;
  pool.idle_timeout = idle_timeout;
  conn->idle_token = next_token_++;
  conn->watched = false;
  pool.idle.push_back(Idle{std::move(conn), net::Clock::now()});
  ++idle_total_;
}

void UpstreamPool::watch(const std::shared_ptr<UpstreamConnection>& conn) {
  // An idle HTTP/1.1 connection must stay silent: a readable event means the origin closed
  // it (or broke the protocol), so it leaves the pool before a request is lost on it.
  const std::uint64_t token = conn->idle_token;
  conn->watched = true;
  auto closed = [this, conn, token] {
    if (conn->idle_token != token) return;  // lent out or cleared meanwhile
    remove(conn.get());
    conn->transport.close();
  };
  if (conn->transport.is_tls()) {
    // Under TLS a byte read here would be lost to the record layer: wait for readability
    // instead (a close_notify or a FIN; anything else breaks HTTP/1.1 too).
    conn->transport.socket().async_wait(net::TcpSocket::wait_read,
                                        [closed](boost::system::error_code) { closed(); });
    return;
  }
  conn->transport.async_read_some(boost::asio::buffer(&conn->probe, 1),
                                  [closed](boost::system::error_code, std::size_t) { closed(); });
}

void UpstreamPool::remove(const UpstreamConnection* conn) {
  auto it = pools_.find(conn->endpoint.get());
  if (it == pools_.end()) return;
  auto& idle = it->second.idle;
  for (std::size_t i = 0; i < idle.size(); ++i) {
    if (idle[i].conn.get() == conn) {
      idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(i));
      --idle_total_;
      break;
    }
  }
  if (idle.empty()) pools_.erase(it);
}

void UpstreamPool::close_front(EndpointPool& pool, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    auto& c = pool.idle[i].conn;
    c->idle_token = next_token_++;
    c->transport.close();
  }
  pool.idle.erase(pool.idle.begin(), pool.idle.begin() + static_cast<std::ptrdiff_t>(n));
  idle_total_ -= n;
}

void UpstreamPool::sweep(net::Clock::time_point now) {
  for (auto it = pools_.begin(); it != pools_.end();) {
    auto& pool = it->second;
    auto& idle = pool.idle;
    // Entries are in release order: the least recently used, which expire first and which a
    // fallen demand no longer reaches, are at the front.
    std::size_t n = 0;
    while (n < idle.size()) {
      const auto idle_for = now - idle[n].since;
      const bool surplus = idle.size() - n > pool.max_idle;
      if (idle_for < pool.idle_timeout && !(surplus && idle_for >= kSurplusIdle)) break;
      ++n;
    }
    close_front(pool, n);
    for (auto& entry : idle) {
      if (!entry.conn->watched) watch(entry.conn);
    }
    it = idle.empty() ? pools_.erase(it) : std::next(it);
  }
}

void UpstreamPool::clear() {
  for (auto& [endpoint, pool] : pools_) {
    for (auto& entry : pool.idle) {
      entry.conn->idle_token = next_token_++;
      entry.conn->transport.close();
    }
  }
  pools_.clear();
  idle_total_ = 0;
}

}  // namespace meridian::proxy
