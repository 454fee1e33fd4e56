// The WebSocket tunnel of an HTTP/1.1 connection (H1Session, h1_session.hpp): after the
// origin's 101, the connection relays bytes both ways unchanged.
#include <boost/asio/buffer.hpp>

#include "meridian/proxy/h1_session.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kTunnelBuffer = 16 * 1024;  // each way

}  // namespace

// WebSocket tunnel: after the 101, bytes are relayed both ways unchanged, each direction a
// loop of one read and one write with its own buffer (backpressure: a side is read again
// only once the other side took the last bytes). A FIN is passed on as a half-close; the
// connection ends when both sides finished, on any error, or after idle_timeout without a
// byte either way.

void H1Session::start_tunnel() {
  auto upgraded = rq_->exchange.take_upgraded();
  if (!upgraded.connection) {
    close();
    return;
  }
  state_ = State::tunnel;
  rq_->tunnel = std::move(upgraded.connection);
  rq_->tunnel_in_flight = std::move(upgraded.in_flight);
  // A tunnel lasts as long as the client wants, often quiet, with no idle point at which
  // the session could give OpenSSL's record buffers back: OpenSSL frees them after each
  // record instead (a malloc and free per record, which a tunnel's few messages do not feel).
  if (client_.is_tls()) client_.tls().release_buffers_between_records();
  rq_->tunnel_down = std::move(upgraded.pending);  // what the origin sent after its 101
  rq_->tunnel_down.reserve(kTunnelBuffer);
  // Keeps what the client sent after its handshake (never while a read fills the buffer).
  if (!client_read_pending_) rq_->in.reserve(kTunnelBuffer);
  touch_tunnel();
  tunnel_to_origin();
  tunnel_to_client();
}

void H1Session::touch_tunnel() {
  arm(net::Clock::now() + snapshot_->config->limits.idle_timeout);
}

void H1Session::tunnel_to_origin() {
  if (state_ != State::tunnel) return;
  auto& r = *rq_;
  if (!r.in.empty()) {
    rq_->tunnel->transport.async_write(
        asio::buffer(r.in.data().data(), r.in.size()),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (self->state_ != State::tunnel) return;
          if (ec) {
            self->close();
            return;
          }
          self->rq_->in.consume(n);
          self->touch_tunnel();
          self->tunnel_to_origin();
        });
    return;
  }
  if (r.client_eof) {
    r.tunnel->transport.shutdown_send();
    if (r.origin_eof) close();  // both directions are done
    return;
  }
  if (!client_read_pending_) read_client();
}

void H1Session::tunnel_to_client() {
  if (state_ != State::tunnel) return;
  auto& r = *rq_;
  if (!r.tunnel_down.empty()) {
    client_.async_write(asio::buffer(r.tunnel_down.data().data(), r.tunnel_down.size()),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          if (self->state_ != State::tunnel) return;
                          if (ec) {
                            self->close();
                            return;
                          }
                          self->rq_->tunnel_down.consume(n);
                          self->rq_->bytes_out += n;
                          self->touch_tunnel();
                          self->tunnel_to_client();
                        });
    return;
  }
  if (r.origin_eof) {
    client_.shutdown_send();
    if (r.client_eof) close();  // both directions are done
    return;
  }
  if (r.tunnel_down.tail_size() == 0) r.tunnel_down.compact();
  r.tunnel->transport.async_read_some(
      asio::buffer(r.tunnel_down.tail(), r.tunnel_down.tail_size()),
      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        if (self->state_ != State::tunnel) return;
        if (ec == asio::error::eof) {
          self->rq_->origin_eof = true;
        } else if (ec) {
          self->close();
          return;
        } else {
          self->rq_->tunnel_down.commit(n);
          self->touch_tunnel();
        }
        self->tunnel_to_client();
      });
}

}  // namespace meridian::proxy
