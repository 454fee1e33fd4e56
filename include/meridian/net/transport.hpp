// A connection's byte stream: plain TCP, or TLS over it from start_tls() on. The one I/O type
// of the data path -- downstream sessions (HTTP/1.1 and HTTP/2), upstream connections and
// WebSocket tunnels all read, write, shut down and close through it, so "TLS or not" is
// decided here once instead of at every call.
//
// The TLS stream owns the socket, so a Transport moves whole: an HTTP/1.1 session hands its
// connection, TLS state included, to the HTTP/2 session that ALPN or the h2c preface chose.
// It holds a socket and a pointer (48 bytes): what an idle connection costs stays small.
// Thread: one owner (a worker's io_context).
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "meridian/net/socket.hpp"

namespace meridian::net {

class Transport {
 public:
  using TlsStream = boost::asio::ssl::stream<TcpSocket>;

  explicit Transport(TcpSocket socket) : plain_(std::move(socket)) {}
  explicit Transport(boost::asio::io_context& ioc) : plain_(ioc) {}

  // From here on the bytes go through TLS; the caller runs the handshake on the stream.
  TlsStream& start_tls(boost::asio::ssl::context& context) {
    tls_ = std::make_unique<TlsStream>(std::move(plain_), context);
    return *tls_;
  }
  bool is_tls() const { return tls_ != nullptr; }
  TlsStream& tls() { return *tls_; }
  TcpSocket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Writes all of `buffers`.
  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      boost::asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    } else {
      boost::asio::async_write(plain_, buffers, std::forward<Handler>(handler));
    }
  }

  // Reads and drops what the peer still sends (a lingering close), into a buffer the
  // worker's connections share: nobody looks at the bytes.
  template <typename Handler>
  void async_discard(Handler&& handler) {
    thread_local char sink[4096];
    async_read_some(boost::asio::buffer(sink), std::forward<Handler>(handler));
  }

  // Our side ends. TLS: close_notify, completing when the peer answers it or the socket
  // closes (a caller's deadline closes it). Plain: a FIN, at once; false when the socket
  // is gone already.
  template <typename Handler>
  void async_tls_shutdown(Handler&& handler) {
    tls_->async_shutdown(std::forward<Handler>(handler));
  }
  bool shutdown_send() {
    boost::system::error_code ec;
    socket().shutdown(boost::asio::socket_base::shutdown_send, ec);
    return !ec;
  }

  // Pending operations complete with operation_aborted (a TLS stream's touch the stream
  // then: keep the Transport alive until they have run).
  void close() {
    if (tls_) {
      // A connection closed after its handshake finished counts as cleanly shut down for
      // its TLS session: without SSL_SENT_SHUTDOWN, SSL_free drops the session from the
      // server's cache (OpenSSL's ssl_clear_bad_session), and a TLS 1.2 client that closed
      // first, or that met an idle timeout, cannot resume by session ID. nginx does the same
      // (ngx_ssl_shutdown). A fatal alert has already evicted its session.
      SSL* ssl = tls_->native_handle();
      if (SSL_is_init_finished(ssl) == 1) {
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      }
    }
    boost::system::error_code ignored;
    socket().close(ignored);
  }
  void cancel() {
    boost::system::error_code ignored;
    socket().cancel(ignored);
  }

 private:
  TcpSocket plain_;  // unused (moved into tls_) once TLS started
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace meridian::net
