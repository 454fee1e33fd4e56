// The admin listener (docs/admin-api.md): GET /health, /ready, /status and /metrics, POST
// /reload, /maintenance and /state.
// Runs on the main thread's io_context, away from the workers, so a slow scrape never delays
// traffic. Not a hot path: it uses Beast's ready-made message types.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/net/acceptor.hpp"

namespace meridian::admin {

// An answer the server side computes: status and body, JSON or plain text.
struct AdminAnswer {
  unsigned status = 200;
  std::string body;
  bool json = false;
};

// POST /state: a runtime override of a region or of one endpoint of it (docs/admin-api.md).
struct StateRequest {
  std::string backend;
  std::string region;
  std::optional<std::string> endpoint;  // absent: the region itself
  std::string state;                    // as given: "active", "drain" or "disabled"
};

struct AdminHooks {
  // GET /ready: the node's readiness (200 or 503 with the reason); with ?backend=NAME, that
  // backend's (404 for an unknown name).
  std::function<AdminAnswer(const std::optional<std::string>& backend)> ready;
  // The JSON document of GET /status.
  std::function<std::string()> status_json;
  // POST /reload: reloads and says how it went (200 with the new generation, 400 with the
  // errors), as JSON.
  std::function<AdminAnswer()> reload;
  // GET /metrics: the Prometheus text exposition (docs/metrics.md).
  std::function<std::string()> metrics_text;
  // POST /maintenance?state=on|off.
  std::function<AdminAnswer(std::string_view state)> maintenance;
  // POST /state?backend=B&region=R[&endpoint=ADDR]&state=S.
  std::function<AdminAnswer(const StateRequest&)> set_state;
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
