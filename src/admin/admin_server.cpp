#include "meridian/admin/admin_server.hpp"

#include <atomic>
#include <chrono>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "meridian/admin/query.hpp"
#include "meridian/admin/status_page_html.hpp"
#include "meridian/core/log.hpp"
#include "meridian/net/acceptor.hpp"

namespace meridian::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kAdminTimeout{10};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, const AdminHooks& hooks,
               std::shared_ptr<const std::atomic<bool>> closed)
      : stream_(std::move(socket)), hooks_(hooks), closed_(std::move(closed)) {}

  void start() { read(); }

 private:
  void read() {
    request_ = {};
    stream_.expires_after(kAdminTimeout);
    bhttp::async_read(stream_, buffer_, request_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->shutdown();
                        self->answer();
                      });
  }

  void answer() {
    response_ = {};
    response_.version(11);
    response_.set(bhttp::field::content_type, "text/plain");
    response_.set(bhttp::field::cache_control, "no-store");
    const auto target = request_.target();
    const auto path = target_path(target);
    const auto method = request_.method();
    const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
    const bool post = method == bhttp::verb::post;
    if (path == "/" || path == "/ui") {
      if (!get) return refuse_method("GET, HEAD");
      response_.result(bhttp::status::ok);
      response_.set(bhttp::field::content_type, "text/html; charset=utf-8");
      // Everything the page needs is in it or on this listener: nothing else may load.
      response_.set("Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                    "form-action 'none'; frame-ancestors 'self'");
      response_.set("X-Content-Type-Options", "nosniff");
      response_.body() = std::string(status_page_html());
    } else if (path == "/health" || path == "/ready" || path == "/status" || path == "/metrics") {
      if (!get) return refuse_method("GET, HEAD");
      if (path == "/health") {
        set({200, "ok\n"});
      } else if (path == "/ready") {
        set(hooks_.ready(query_param(target, "backend")));
      } else if (path == "/status") {
        set({200, hooks_.status_json(), true});
      } else {
        response_.result(bhttp::status::ok);
        response_.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        response_.body() = hooks_.metrics_text();
      }
    } else if (path == "/reload" || path == "/maintenance" || path == "/state") {
      if (!post) return refuse_method("POST");
      if (path == "/reload") {
        set(hooks_.reload());
      } else if (path == "/maintenance") {
        set(hooks_.maintenance(query_param(target, "state").value_or("")));
      } else {
        set_state(target);
      }
    } else {
      set({404,
           "unknown admin path; try / (the status page), /health, /ready, /status, /metrics or "
           "POST /reload, "
           "/maintenance, /state\n"});
    }
    send();
  }

  void set_state(std::string_view target) {
    StateRequest request;
    std::string missing;
    for (const auto& [name, value] :
         {std::pair{"backend", &request.backend}, std::pair{"region", &request.region},
          std::pair{"state", &request.state}}) {
      if (auto v = query_param(target, name)) {
        *value = std::move(*v);
      } else {
        missing += missing.empty() ? name : std::string(", ") + name;
      }
    }
    if (!missing.empty()) return set({400, "missing parameter: " + missing + "\n"});
    request.endpoint = query_param(target, "endpoint");
    set(hooks_.set_state(request));
  }

  void set(const AdminAnswer& answer) {
    response_.result(static_cast<bhttp::status>(answer.status));
    if (answer.json) response_.set(bhttp::field::content_type, "application/json");
    response_.body() = answer.body;
  }

  void refuse_method(std::string_view allowed) {
    response_.result(bhttp::status::method_not_allowed);
    response_.set(bhttp::field::allow, allowed);
    response_.body() = allowed == "POST" ? "use POST\n" : "use GET\n";
    send();
  }

  void send() {
    // Once the admin listener is closed (drain), every answer ends its connection, so that
    // no kept-alive monitor holds the main loop open.
    response_.keep_alive(request_.keep_alive() && !closed_->load());
    response_.prepare_payload();
    if (request_.method() == bhttp::verb::head) response_.body().clear();
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec || !self->response_.keep_alive()) return self->shutdown();
                         self->read();
                       });
  }

  void shutdown() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  AdminHooks hooks_;
  std::shared_ptr<const std::atomic<bool>> closed_;
  beast::flat_buffer buffer_{8192};
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
};

}  // namespace

namespace {

net::TcpAcceptor open_admin_listener(asio::io_context& ioc, const tcp::endpoint& endpoint) {
  // No SO_REUSEPORT here: a second process on the same admin address must fail to bind.
  net::TcpAcceptor acceptor(ioc);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  return acceptor;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& ioc, const tcp::endpoint& endpoint, AdminHooks hooks)
    // net::Acceptor's loop pauses on accept errors (EMFILE) instead of spinning the main
    // thread, which also runs the health checker.
    : acceptor_(std::make_shared<net::Acceptor>(
          open_admin_listener(ioc, endpoint), "admin",
          [hooks = std::move(hooks), closed = closed_](net::TcpSocket socket,
                                                       const tcp::endpoint&) {
            std::make_shared<AdminSession>(tcp::socket(std::move(socket)), hooks, closed)->start();
          })) {}

void AdminServer::start() {
  acceptor_->start();
}

void AdminServer::close() {
  closed_->store(true);
  acceptor_->close();
}

tcp::endpoint AdminServer::local_endpoint() const {
  return acceptor_->local_endpoint();
}

}  // namespace meridian::admin
