#include "meridian/dns/resolver.hpp"

#include <algorithm>
#include <ares.h>
#include <cstring>
#include <limits>
#include <mutex>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>

#include <boost/asio/post.hpp>

namespace meridian::dns {

namespace asio = boost::asio;

// One socket c-ares asked us to watch. The descriptor is c-ares' own: released, never
// closed, when the watch ends.
struct Resolver::Watch {
  Watch(asio::io_context& ioc, int fd, std::uint64_t watch_id)
      : descriptor(ioc, fd), id(watch_id) {}
  ~Watch() {
    boost::system::error_code ec;
    descriptor.cancel(ec);
    descriptor.release();
  }
  asio::posix::stream_descriptor descriptor;
  std::uint64_t id;  // tells a handler of a replaced watch on the same fd apart
  bool readable = false;
  bool writable = false;
  bool read_pending = false;
  bool write_pending = false;
};

namespace {

std::once_flag library_once;

struct Lookup {
  asio::io_context* ioc;
  std::shared_ptr<bool> alive;
  std::function<void(Answer)> done;
};

void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(arg));
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || !*lookup->alive) {
    if (result != nullptr) ares_freeaddrinfo(result);
    return;
  }
  Answer answer;
  if (status != ARES_SUCCESS || result == nullptr) {
    answer.error = ares_strerror(status);
  } else {
    int ttl = std::numeric_limits<int>::max();
    for (auto* node = result->nodes; node != nullptr; node = node->ai_next) {
      if (node->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(node->ai_addr);
        asio::ip::address_v4::bytes_type bytes;
        std::memcpy(bytes.data(), &sin->sin_addr, bytes.size());
        answer.addresses.emplace_back(asio::ip::address_v4(bytes));
      } else if (node->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(node->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &sin6->sin6_addr, bytes.size());
        answer.addresses.emplace_back(asio::ip::address_v6(bytes));
      } else {
        continue;
      }
      ttl = std::min(ttl, node->ai_ttl);
    }
    std::sort(answer.addresses.begin(), answer.addresses.end());
    answer.addresses.erase(std::unique(answer.addresses.begin(), answer.addresses.end()),
                           answer.addresses.end());
    answer.ok = !answer.addresses.empty();
    if (!answer.ok) answer.error = "no A or AAAA records";
    answer.ttl = std::chrono::seconds(ttl == std::numeric_limits<int>::max() ? 0 : ttl);
  }
  if (result != nullptr) ares_freeaddrinfo(result);
  // Never inside resolve() (c-ares may answer at once, from /etc/hosts say).
  asio::post(*lookup->ioc, [alive = lookup->alive, done = std::move(lookup->done),
                            answer = std::move(answer)]() mutable {
    if (*alive) done(std::move(answer));
  });
}

}  // namespace

Resolver::Resolver(asio::io_context& ioc, const std::vector<std::string>& servers)
    : ioc_(ioc), timer_(ioc) {
  std::call_once(library_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  ares_options options{};
  options.sock_state_cb = &Resolver::on_socket_state;
  options.sock_state_cb_data = this;
  options.timeout = 2000;  // ms per try (ARES_OPT_TIMEOUTMS)
  options.tries = 2;
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (const int rc = ares_init_options(&channel_, &options, mask); rc != ARES_SUCCESS) {
    throw std::runtime_error(std::string("dns: cannot start the resolver: ") + ares_strerror(rc));
  }
  if (!servers.empty()) {
    std::string csv;
    for (const auto& s : servers) {
      if (!csv.empty()) csv += ',';
      csv += s;
    }
    if (const int rc = ares_set_servers_ports_csv(channel_, csv.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::runtime_error("dns: bad servers \"" + csv + "\": " + ares_strerror(rc));
    }
  }
}

Resolver::~Resolver() {
  *alive_ = false;  // lookups cancelled below do not call back
  timer_.cancel();
  ares_destroy(channel_);  // may call on_socket_state: the watches are still there
  watches_.clear();
}

void Resolver::resolve(const std::string& host, std::function<void(Answer)> done) {
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &on_addrinfo,
                   new Lookup{&ioc_, alive_, std::move(done)});
  arm_timer();
}

void Resolver::on_socket_state(void* self, int fd, int readable, int writable) {
  static_cast<Resolver*>(self)->watch(fd, readable != 0, writable != 0);
}

void Resolver::watch(int fd, bool readable, bool writable) {
  if (!readable && !writable) {
    watches_.erase(fd);
    return;
  }
  auto& w = watches_[fd];
  if (!w) w = std::make_unique<Watch>(ioc_, fd, ++next_watch_id_);
  w->readable = readable;
  w->writable = writable;
  arm(*w);
}

void Resolver::arm(Watch& w) {
  const int fd = w.descriptor.native_handle();
  auto handler = [this, alive = alive_, fd, id = w.id](bool read, boost::system::error_code ec) {
    if (!*alive) return;
    const auto it = watches_.find(fd);
    if (it == watches_.end() || it->second->id != id) return;  // gone or replaced
    (read ? it->second->read_pending : it->second->write_pending) = false;
    if (ec) return;
    process(read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
    // c-ares may have stopped watching the socket meanwhile.
    const auto again = watches_.find(fd);
    if (again != watches_.end() && again->second->id == id) arm(*again->second);
  };
  if (w.readable && !w.read_pending) {
    w.read_pending = true;
    w.descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                            [handler](boost::system::error_code ec) { handler(true, ec); });
  }
  if (w.writable && !w.write_pending) {
    w.write_pending = true;
    w.descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                            [handler](boost::system::error_code ec) { handler(false, ec); });
  }
}

void Resolver::process(int read_fd, int write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  arm_timer();
}

void Resolver::arm_timer() {
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
  timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares retries or gives up what timed out
  });
}

}  // namespace meridian::dns
