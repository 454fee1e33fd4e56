// An asynchronous DNS resolver on an Asio io_context: c-ares (libc-ares) does the protocol,
// Asio waits on its sockets and its timeouts, so a lookup never blocks the thread that asked.
// Used on the main thread to re-resolve endpoint host names (dns/refresher.hpp); the data
// path never resolves anything.
//
// Lookups follow the system's configuration (/etc/resolv.conf, /etc/hosts) unless
// `servers` names the DNS servers to ask. Thread: the io_context's (one) thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

struct ares_channeldata;

namespace meridian::dns {

struct Answer {
  bool ok = false;
  std::string error;                                // why not, when !ok
  std::vector<boost::asio::ip::address> addresses;  // every A and AAAA record, sorted
  std::chrono::seconds ttl{0};                      // the smallest TTL among them
};

class Resolver {
 public:
  // `servers`: "ip" or "ip:port" (IPv6 in brackets with a port), empty = the system's.
  // Throws std::runtime_error when c-ares cannot start or a server is not an address.
  Resolver(boost::asio::io_context& ioc, const std::vector<std::string>& servers);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Looks `host` up (A and AAAA); `done` runs later on the io_context's thread, never
  // inside this call, and never after the Resolver is destroyed (pending lookups are
  // cancelled then, without calling `done`).
  void resolve(const std::string& host, std::function<void(Answer)> done);

 private:
  struct Watch;
  static void on_socket_state(void* self, int fd, int readable, int writable);
  void watch(int fd, bool readable, bool writable);
  void arm(Watch& w);
  void process(int read_fd, int write_fd);
  void arm_timer();

  boost::asio::io_context& ioc_;
  ares_channeldata* channel_ = nullptr;
  std::map<int, std::unique_ptr<Watch>> watches_;
  std::uint64_t next_watch_id_ = 0;  // tells a handler of a replaced watch on one fd apart
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meridian::dns
