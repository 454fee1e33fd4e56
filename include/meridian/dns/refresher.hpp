// DNS re-resolution of endpoint host names (docs/configuration.md, endpoints[].resolve): every
// name that has `resolve` is looked up at once and then on its period (brought forward by a
// shorter TTL), on the main thread through dns::Resolver. A lookup whose address set differs
// from the last good one calls `on_change`, which rebuilds the backends from addresses()
// (build_backends keeps the state of addresses that stay). A failed lookup keeps the last good
// set. Nothing here is touched by the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/config/config.hpp"
#include "meridian/dns/resolved.hpp"
#include "meridian/dns/resolver.hpp"

namespace meridian::dns {

class Refresher {
 public:
  Refresher(boost::asio::io_context& ioc, std::function<void()> on_change);
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // The names `config` re-resolves, and the servers to ask (config.dns): names no longer
  // there are dropped, new ones looked up at once, kept ones keep their addresses and
  // schedule (a changed period applies from the next lookup). Main thread.
  void configure(const config::Config& config);
  // Stops every lookup and timer (the process is draining).
  void stop();

  // The last good addresses of every name that has had one.
  const ResolvedAddresses& addresses() const { return addresses_; }

  struct NameStatus {
    std::string host;
    std::chrono::milliseconds every{0};
    std::vector<boost::asio::ip::address> addresses;  // the last good set (may be empty)
    std::string last_result;                          // "success", "failure" or "pending"
    std::string last_error;                           // of the last failure
    std::chrono::seconds ttl{0};                      // of the last good answer
  };
  std::vector<NameStatus> status() const;
  // meridian_dns_resolutions_total{result}
  std::uint64_t succeeded() const { return succeeded_; }
  std::uint64_t failed() const { return failed_; }

  // The shortest wait between two lookups of one name, whatever the TTL says.
  static constexpr std::chrono::seconds kMinInterval{1};

 private:
  struct Name;
  void lookup(Name& name);
  void on_answer(const std::string& host, std::uint64_t id, Answer answer);
  void schedule(Name& name, std::chrono::milliseconds after);

  boost::asio::io_context& ioc_;
  std::function<void()> on_change_;
  std::unique_ptr<Resolver> resolver_;
  std::vector<std::string> servers_;  // those resolver_ was made with
  std::map<std::string, std::unique_ptr<Name>> names_;
  ResolvedAddresses addresses_;
  std::uint64_t next_id_ = 0;
  std::uint64_t succeeded_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace meridian::dns
