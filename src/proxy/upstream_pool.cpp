#include "meridian/proxy/upstream_pool.hpp"

#include <boost/asio/buffer.hpp>

namespace meridian::proxy {

std::shared_ptr<UpstreamConnection> UpstreamPool::acquire(
    const balancing::EndpointState* endpoint) {
  auto it = idle_.find(endpoint);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto conn = std::move(it->second.back().conn);
  it->second.pop_back();
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
  auto& list = idle_[conn->endpoint.get()];
  if (list.size() >= max_idle || idle_timeout.count() <= 0) {
    conn->transport.close();
    return;
  }
  conn->idle_token = next_token_++;
  conn->watched = false;
  list.push_back(Idle{std::move(conn), net::Clock::now() + idle_timeout});
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
  auto it = idle_.find(conn->endpoint.get());
  if (it == idle_.end()) return;
  auto& list = it->second;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].conn.get() == conn) {
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      --idle_total_;
      break;
    }
  }
  if (list.empty()) idle_.erase(it);
}

void UpstreamPool::sweep(net::Clock::time_point now) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    // Entries are in release order, so the expired ones are at the front.
    std::size_t expired = 0;
    while (expired < list.size() && list[expired].expires <= now) {
      auto& c = list[expired].conn;
      c->idle_token = next_token_++;
      c->transport.close();
      ++expired;
    }
    if (expired > 0) {
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(expired));
      idle_total_ -= expired;
    }
    for (auto& idle : list) {
      if (!idle.conn->watched) watch(idle.conn);
    }
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

void UpstreamPool::clear() {
  for (auto& [endpoint, list] : idle_) {
    for (auto& idle : list) {
      idle.conn->idle_token = next_token_++;
      idle.conn->transport.close();
    }
  }
  idle_.clear();
  idle_total_ = 0;
}

}  // namespace meridian::proxy
