// A connection's byte stream: plain TCP, or TLS over it from start_tls() on. The one I/O type
// of the data path -- downstream sessions (HTTP/1.1 and HTTP/2), upstream connections and
// WebSocket tunnels all read, write, shut down and close through it, so "TLS or not" is
// decided here once instead of at every call.
//
// The Transport owns the socket and, once TLS started, the TLS state (net::TlsStream, which
// works on the socket), so a Transport moves whole: an HTTP/1.1 session hands its connection,
// TLS state included, to the HTTP/2 session that ALPN or the h2c preface chose. It holds a
// socket and a pointer (48 bytes): what an idle connection costs stays small.
// Thread: one owner (a worker's io_context).
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>

#include "meridian/net/socket.hpp"
#include "meridian/net/tls_stream.hpp"

namespace meridian::net {

class Transport {
 public:
  explicit Transport(TcpSocket socket) : plain_(std::move(socket)) {}
  explicit Transport(boost::asio::io_context& ioc) : plain_(ioc) {}
  // Only between operations (a pending one holds the old address).
  Transport(Transport&& other) noexcept
      : plain_(std::move(other.plain_)), tls_(std::move(other.tls_)) {
    if (tls_) tls_->rebind(plain_);
  }
  Transport& operator=(Transport&& other) noexcept {
    plain_ = std::move(other.plain_);
    tls_ = std::move(other.tls_);
    if (tls_) tls_->rebind(plain_);
    return *this;
  }

  // From here on the bytes go through TLS; the caller runs the handshake on the stream.
  TlsStream& start_tls(boost::asio::ssl::context& context, TlsRole role) {
    tls_ = std::make_unique<TlsStream>(plain_, context.native_handle(), role);
    return *tls_;
  }
  bool is_tls() const { return tls_ != nullptr; }
  TlsStream& tls() { return *tls_; }
  TcpSocket& socket() { return plain_; }

  // Input a read would return without waiting for the socket (TLS records that came with
  // earlier ones): a connection that waits for readability looks here first.
  bool has_buffered_input() const { return tls_ != nullptr && tls_->has_buffered_input(); }

  // The connection turned idle: TLS gives OpenSSL's record buffers back (see
  // TlsStream::release_idle_buffers; a busy connection keeps them). Plain: nothing to do.
  void release_idle_buffers() {
    if (tls_) tls_->release_idle_buffers();
  }

  // Reads some bytes into `buffers` (its first buffer, for TLS).
  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(
          boost::asio::mutable_buffer(*boost::asio::buffer_sequence_begin(buffers)),
          std::forward<Handler>(handler));
    } else {
      plain_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Writes all of `buffers`.
  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write(buffers, std::forward<Handler>(handler));
    } else {
      boost::asio::async_write(plain_, buffers, std::forward<Handler>(handler));
    }
  }

  // Reads and drops what the peer still sends (a lingering close), into a buffer the
  // worker's connections share: nobody looks at the bytes. (TLS has to decrypt them to see
  // the end of the stream: it waits for readability and reads then, into its own scratch.)
  template <typename Handler>
  void async_discard(Handler&& handler) {
    if (tls_) {
      tls_->async_discard(std::forward<Handler>(handler));
      return;
    }
    thread_local char sink[4096];
    plain_.async_read_some(boost::asio::buffer(sink), std::forward<Handler>(handler));
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
    plain_.shutdown(boost::asio::socket_base::shutdown_send, ec);
    return !ec;
  }

  // Pending operations complete with operation_aborted (keep the Transport alive until they
  // have run: they use it).
  void close() {
    // A connection closed after its handshake finished counts as cleanly shut down for its
    // TLS session: without SSL_SENT_SHUTDOWN, SSL_free drops the session from the server's
    // cache (OpenSSL's ssl_clear_bad_session), and a TLS 1.2 client that closed first, or
    // that met an idle timeout, cannot resume by session ID. nginx does the same
    // (ngx_ssl_shutdown). A fatal alert has already evicted its session.
    if (tls_) tls_->mark_clean_close();
    boost::system::error_code ignored;
    plain_.close(ignored);
  }
  void cancel() {
    boost::system::error_code ignored;
    plain_.cancel(ignored);
  }

 private:
  TcpSocket plain_;
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace meridian::net
