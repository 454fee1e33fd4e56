// The HTTP/2 probe of an endpoint (backends[].protocol h2 or h2c): the same GET as the
// HTTP/1.1 probe, on a connection of its own for each probe (TCP, then TLS with ALPN h2 for
// h2), spoken with http::h2::ClientCodec. The whole probe runs under
// health_check.timeout. Success: the response's :status is in expected_status; the body is
// not waited for (the stream is reset and the connection closed once the head is in).
#include <cstring>
#include <optional>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/ssl.h>

#include "meridian/http/h2/codec.hpp"
#include "meridian/net/transport.hpp"
#include "meridian/tls/client_context.hpp"

#include "health/active_check.hpp"

namespace meridian::health::detail {

namespace {

using tcp = asio::ip::tcp;

class H2Check final : public ActiveCheck, private http::h2::Events {
 public:
  H2Check(config::UpstreamProtocol protocol, asio::io_context& ioc,
          std::shared_ptr<balancing::EndpointState> endpoint, const config::HealthCheck& check,
          std::uint64_t seed)
      : ActiveCheck(ioc, std::move(endpoint), check, seed), timer_(ioc), protocol_(protocol) {}

  config::UpstreamProtocol protocol() const override { return protocol_; }

  void set_tls(std::shared_ptr<asio::ssl::context> context,
               const config::UpstreamTls* settings) override {
    tls_context_ = std::move(context);
    tls_settings_ = settings != nullptr ? *settings : config::UpstreamTls{};
  }

 private:
  std::shared_ptr<H2Check> self() { return std::static_pointer_cast<H2Check>(shared_from_this()); }

  void start_probe() override {
    ++probe_;
    status_ = 0;
    done_ = false;
    // A new transport each probe; the previous one lives on in its handlers until they ran
    // (a TLS stream's aborted operations touch it when they complete).
    transport_ = std::make_shared<net::Transport>(ioc_);
    http::h2::Events& events = *this;
    codec_.emplace(events, http::h2::Settings{});
    timer_.expires_after(check().timeout);
    timer_.async_wait([self = self(), probe = probe_](const boost::system::error_code& ec) {
      if (ec || probe != self->probe_ || self->done_) return;
      self->fail("timeout after " + std::to_string(check_timeout_ms(*self)) + "ms");
    });
    transport_->socket().async_connect(
        endpoint().target,
        [self = self(), t = transport_, probe = probe_](const boost::system::error_code& ec) {
          if (probe != self->probe_ || self->done_ || self->stopped()) return;
          if (ec) return self->fail("connect: " + ec.message());
          boost::system::error_code ignored;
          self->transport_->socket().set_option(tcp::no_delay(true), ignored);
          if (!self->tls_context_) return self->send();
          self->handshake();
        });
  }

  static long long check_timeout_ms(const H2Check& c) { return c.check().timeout.count(); }

  void handshake() {
    auto& stream = transport_->start_tls(*tls_context_, net::TlsRole::client);
    tls::prepare_client(stream.native_handle(), tls_settings_, endpoint().address);
    stream.async_handshake(
        [self = self(), t = transport_, probe = probe_](const boost::system::error_code& ec) {
          if (probe != self->probe_ || self->done_ || self->stopped()) return;
          if (ec) return self->fail("TLS handshake: " + ec.message());
          const unsigned char* p = nullptr;
          unsigned int n = 0;
          SSL_get0_alpn_selected(self->transport_->tls().native_handle(), &p, &n);
          if (n != 2 || std::memcmp(p, "h2", 2) != 0) {
            return self->fail("the endpoint did not choose h2 by ALPN");
          }
          self->send();
        });
  }

  void send() {
    http::h2::FieldBlock fields;
    fields.add(":method", "GET");
    fields.add(":scheme", tls_context_ ? "https" : "http");
    fields.add(":authority", check().host.empty() ? endpoint().address : check().host);
    fields.add(":path", check().path);
    fields.add("user-agent", "meridian-health");
    if (!codec_->ok() || codec_->submit_request(fields, false, this) <= 0) {
      return fail("HTTP/2 session setup failed");
    }
    write_start_ = Clock::now();
    flush();
    read();
  }

  void flush() {
    if (writing_ || done_) return;
    out_.clear();
    if (!codec_->produce(out_, 16 * 1024)) return fail("HTTP/2: " + std::string(codec_->error()));
    if (out_.empty()) return;
    writing_ = true;
    transport_->async_write(asio::buffer(out_),
                            [self = self(), t = transport_, probe = probe_](
                                const boost::system::error_code& ec, std::size_t) {
                              self->writing_ = false;
                              if (probe != self->probe_ || self->done_ || self->stopped()) return;
                              if (ec) return self->fail("write: " + ec.message());
                              self->flush();
                            });
  }

  void read() {
    transport_->async_read_some(
        asio::buffer(in_), [self = self(), t = transport_, probe = probe_](
                               const boost::system::error_code& ec, std::size_t n) {
          if (probe != self->probe_ || self->done_ || self->stopped()) return;
          if (ec) return self->fail("read: " + ec.message());
          const auto fed = self->codec_->feed(reinterpret_cast<const std::uint8_t*>(self->in_), n);
          if (self->done_) return;
          if (fed != http::h2::Feed::ok) {
            return self->fail("HTTP/2: " + std::string(self->codec_->error()));
          }
          self->flush();
          self->read();
        });
  }

  // -- http::h2::Events: only the response head matters
  bool on_stream_open(std::int32_t) override { return false; }
  void on_field(void*, http::h2::Block block, std::string_view name,
                std::string_view value) override {
    if (block != http::h2::Block::response || name != ":status") return;
    status_ = 0;
    for (char c : value)
      status_ = status_ * 10 + (c - '0');
  }
  void on_block_end(void*, http::h2::Block block, bool) override {
    if (block != http::h2::Block::response || done_) return;
    const auto rtt =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - write_start_);
    finish();
    if (is_expected_status(check(), status_)) return probe_succeeded(rtt);
    probe_failed("status " + std::to_string(status_));
  }
  void on_data(void*, const std::uint8_t*, std::size_t) override {}
  void on_end_stream(void*) override {}
  void on_sent_end(void*) override {}
  void on_peer_reset(void*, std::uint32_t code) override {
    if (!done_) fail("stream reset (error code " + std::to_string(code) + ")");
  }
  void on_stream_closed(void*, std::uint32_t) override {}
  http::h2::Pull pull(void*, std::uint8_t*, std::size_t) override { return {}; }

  void fail(std::string reason) {
    if (done_) return;
    finish();
    probe_failed(std::move(reason));
  }

  // The probe's connection ends with it; handlers still pending see done_ (or a newer probe_).
  void finish() {
    done_ = true;
    timer_.cancel();
    if (transport_) transport_->close();
  }

  void on_stop() override {
    done_ = true;
    timer_.cancel();
    if (transport_) transport_->close();
  }
  void reset_connection() override {}  // every probe dials its own connection

  asio::steady_timer timer_;
  const config::UpstreamProtocol protocol_;
  std::shared_ptr<net::Transport> transport_;
  std::optional<http::h2::ClientCodec> codec_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  config::UpstreamTls tls_settings_;
  std::string out_;
  char in_[4096];
  Clock::time_point write_start_{};
  std::uint64_t probe_ = 0;
  int status_ = 0;
  bool done_ = false;
  bool writing_ = false;
};

}  // namespace

std::shared_ptr<ActiveCheck> make_h2_check(config::UpstreamProtocol protocol, asio::io_context& ioc,
                                           std::shared_ptr<balancing::EndpointState> endpoint,
                                           const config::HealthCheck& check, std::uint64_t seed) {
  return std::make_shared<H2Check>(protocol, ioc, std::move(endpoint), check, seed);
}

}  // namespace meridian::health::detail
