// The admin listener (docs/admin-api.md): GET /health, /ready, /status and /metrics, POST /reload.
// Runs on the main thread's io_context, away from the workers, so a slow scrape never delays
// traffic. Not a hot path: it uses Beast's ready-made message types.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/net/acceptor.hpp"

namespace meridian::admin {

struct AdminHooks {
  // Why the node is not ready (draining, or a backend without an eligible region); empty
  // means ready (GET /ready answers 200).
  std::function<std::string()> not_ready_reason;
  // The JSON document of GET /status.
  std::function<std::string()> status_json;
  // POST /reload: reloads and says how it went (200 with the new generation, 400 with the
  // errors). `body` is a JSON document.
  struct ReloadAnswer {
    bool ok = false;
    std::string body;
  };
  std::function<ReloadAnswer()> reload;
  // GET /metrics: the Prometheus text exposition (docs/metrics.md).
  std::function<std::string()> metrics_text;
};

class AdminServer {
 public:
  // Throws boost::system::system_error when the address cannot be bound.
  AdminServer(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint,
              AdminHooks hooks);
  void start();
  void close();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  // Shared with sessions: set by close(), after which they answer with Connection: close.
  // Declared before acceptor_, whose accept handler holds a copy.
  std::shared_ptr<std::atomic<bool>> closed_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<net::Acceptor> acceptor_;
};

}  // namespace meridian::admin
