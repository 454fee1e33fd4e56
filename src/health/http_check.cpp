// The HTTP/1.1 probe of an endpoint (backends[].protocol http1).
#include <array>
#include <optional>
#include <string>

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "meridian/tls/client_context.hpp"

#include "health/active_check.hpp"

namespace meridian::health::detail {

namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

// HTTP/1.1 probe: GET <path> with Host and User-Agent on a kept-alive connection, reused
// from one probe to the next and dialled again after an error or a response that closes it.
// The whole probe (connect, write, read) runs under one deadline, health_check.timeout.
// Success: a complete response whose status is in expected_status. The body is read into a
// small scratch buffer and dropped, so a large health page costs no memory.
class HttpCheck final : public ActiveCheck {
 public:
  using ActiveCheck::ActiveCheck;

  config::UpstreamProtocol protocol() const override { return config::UpstreamProtocol::http1; }

  void set_tls(std::shared_ptr<asio::ssl::context> context,
               const config::UpstreamTls* settings) override {
    tls_context_ = std::move(context);
    tls_settings_ = settings != nullptr ? *settings : config::UpstreamTls{};
  }

 private:
  std::shared_ptr<HttpCheck> self() {
    return std::static_pointer_cast<HttpCheck>(shared_from_this());
  }

  void start_probe() override {
    deadline_ = Clock::now() + check().timeout;
    retried_ = false;
    request_ = {bhttp::verb::get, check().path, 11};
    request_.set(bhttp::field::host, check().host.empty() ? endpoint().address : check().host);
    request_.set(bhttp::field::user_agent, "meridian-health");
    if (connected_) {
      reused_ = true;
      stream_->expires_at(deadline_);
      write();
    } else {
      connect();
    }
  }

  void on_stop() override { close(); }
  void reset_connection() override { close(); }

  void connect() {
    // Only called with no operation in progress, so the old stream can go.
    tls_.reset();
    stream_.emplace(ioc_);
    buffer_.clear();
    reused_ = false;
    stream_->expires_at(deadline_);
    stream_->async_connect(endpoint().target, [self = self()](const beast::error_code& ec) {
      if (self->stopped()) return;
      if (ec) return self->io_failed("connect", ec);
      if (self->tls_context_) return self->handshake();
      self->connected_ = true;
      self->write();
    });
  }

  void handshake() {
    tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(*stream_, *tls_context_);
    tls::prepare_client(tls_->native_handle(), tls_settings_, endpoint().address);
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = self()](const beast::error_code& ec) {
                            if (self->stopped()) return;
                            if (ec) return self->io_failed("TLS handshake", ec);
                            self->connected_ = true;
                            self->write();
                          });
  }

  // The probe's stream: TLS over the TCP stream for a backend with `tls`.
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*stream_);
    }
  }

  void write() {
    write_start_ = Clock::now();
    with_stream([this](auto& s) {
      bhttp::async_write(s, request_, [self = self()](const beast::error_code& ec, std::size_t) {
        if (self->stopped()) return;
        if (ec) return self->io_failed("write", ec);
        self->parser_.emplace();
        self->read();
      });
    });
  }

  void read() {
    auto& body = parser_->get().body();
    body.data = scratch_.data();
    body.size = scratch_.size();
    with_stream([this](auto& s) {
      bhttp::async_read(s, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t) {
        if (self->stopped()) return;
        if (ec == bhttp::error::need_buffer) return self->read();  // drop body
        if (ec) return self->io_failed("read", ec);
        self->response_complete();
      });
    });
  }

  void response_complete() {
    const auto rtt =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - write_start_);
    const int status = static_cast<int>(parser_->get().result_int());
    if (!parser_->keep_alive()) close();
    parser_.reset();
    if (is_expected_status(check(), status)) return probe_succeeded(rtt);
    probe_failed("status " + std::to_string(status));
  }

  void io_failed(const char* what, const beast::error_code& ec) {
    close();
    // The origin may have closed the idle connection just as the probe went out; that says
    // nothing about its health, so a reused connection gets one fresh retry in the time left.
    if (reused_ && !retried_ && ec != beast::error::timeout && Clock::now() < deadline_) {
      retried_ = true;
      return connect();
    }
    if (ec == beast::error::timeout) {
      probe_failed(std::string(what) + ": timeout after " +
                   std::to_string(check().timeout.count()) + "ms");
    } else {
      probe_failed(std::string(what) + ": " + ec.message());
    }
  }

  void close() {
    connected_ = false;
    if (stream_) stream_->close();
  }

  std::optional<beast::tcp_stream> stream_;
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls_;  // over stream_, or null
  std::shared_ptr<asio::ssl::context> tls_context_;
  config::UpstreamTls tls_settings_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::empty_body> request_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  std::array<char, 4096> scratch_{};
  Clock::time_point deadline_{};
  Clock::time_point write_start_{};
  bool connected_ = false;
  bool reused_ = false;
  bool retried_ = false;
};

}  // namespace

std::shared_ptr<ActiveCheck> make_http_check(asio::io_context& ioc,
                                             std::shared_ptr<balancing::EndpointState> endpoint,
                                             const config::HealthCheck& check, std::uint64_t seed) {
  return std::make_shared<HttpCheck>(ioc, std::move(endpoint), check, seed);
}

std::shared_ptr<ActiveCheck> make_check(config::UpstreamProtocol protocol, asio::io_context& ioc,
                                        std::shared_ptr<balancing::EndpointState> endpoint,
                                        const config::HealthCheck& check, std::uint64_t seed) {
  if (protocol == config::UpstreamProtocol::http1) {
    return make_http_check(ioc, std::move(endpoint), check, seed);
  }
  return make_h2_check(protocol, ioc, std::move(endpoint), check, seed);
}

}  // namespace meridian::health::detail
