// TLS over a connection's socket without Asio's ssl::stream: an OpenSSL SSL object whose BIO
// reads ciphertext from memory this class hands it and writes records straight to the
// socket (send(2)). Asio's stream keeps two 17 KiB buffers and a BIO pair of two more for
// as long as the connection lives; an idle connection here holds the SSL object and nothing
// else, as nginx's and HAProxy's do. OpenSSL's own record buffers (about 17 KiB each way)
// stay while the connection is busy -- SSL_MODE_RELEASE_BUFFERS would malloc and free them
// around every record -- and go when its session says it turned idle
// (release_idle_buffers()).
//
// Reading: a read completes from what is already here (bytes read before TLS started,
// records that arrived with the previous ones) or reads the socket into the caller's own
// buffer and decrypts there in place. That is safe from a record boundary, because a
// record's plaintext is shorter than its ciphertext and is written only after its ciphertext
// was consumed: the plaintext written so far never reaches ciphertext not read yet. When
// OpenSSL holds the start of a record already (the last read ended inside it), that record's
// plaintext may be longer than its rest in the buffer: the read then takes at most a record's
// worth and copies it to a per-thread buffer before decrypting. Ciphertext left over when the
// caller's buffer is full stays in `pending_`, an exact-size heap string that is empty (and freed)
// otherwise. Reads that have no buffer of their own (the handshake, a lingering close) wait
// for readability and recv(2) into a per-thread scratch buffer.
//
// Writing: a buffer sequence is written as records of up to 16 KiB; small buffers are
// gathered into a per-thread scratch buffer first so that a response head and its body go
// in one record and one send(2). A record that the socket does not take at once stays in
// OpenSSL, and the same bytes are offered again when the socket is writable (what OpenSSL
// asks of a retried SSL_write), gathered anew from the caller's buffers.
//
// Completion handlers run as Asio's do: never inside the initiating call (posted when an
// operation completes there). The socket and this object must outlive pending operations;
// the socket belongs to the caller (net::Transport). Thread: one owner.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <openssl/ssl.h>

#include "meridian/net/socket.hpp"

namespace meridian::net {

enum class TlsRole { client, server };

class TlsStream {
 public:
  // The most plaintext one record carries (TLS 1.2 and 1.3).
  static constexpr std::size_t kRecordPayload = 16384;
  // How much a read takes from the socket while OpenSSL holds part of a record: a record's
  // worth (those bytes are copied before decrypting).
  static constexpr std::size_t kReadCarried = kRecordPayload + 256;

  // Throws std::bad_alloc when OpenSSL cannot make the SSL object.
  TlsStream(TcpSocket& socket, SSL_CTX* context, TlsRole role);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* native_handle() const { return ssl_; }
  // The socket moved (with the Transport that holds both); no operation may be pending.
  void rebind(TcpSocket& socket) { socket_ = &socket; }

  // Ciphertext read before TLS started (the start of a ClientHello read while looking for a
  // PROXY header or the HTTP/2 preface): the handshake takes it first.
  void received(std::string_view bytes) { pending_.append(bytes); }

  // Input that a read would return without the socket: ciphertext or plaintext already
  // here. A connection waiting for readability must look at this first.
  bool has_buffered_input() const;

  // Gives OpenSSL's read and write record buffers back (about 34 KiB together; OpenSSL
  // allocates them again on the next read or write). For a connection that turned idle, not
  // between two records of a busy one: that would be the malloc and free per record that
  // SSL_MODE_RELEASE_BUFFERS costs. Nothing happens while a record is partly read or not
  // all written, during the handshake, or when the SSL object releases them itself (that
  // mode set on its context or by release_buffers_between_records()). True when freed.
  bool release_idle_buffers();
  // From here on OpenSSL frees its record buffers after each record (a WebSocket tunnel:
  // long-lived, and usually quiet, with no idle point of its own to release them at).
  void release_buffers_between_records();

  // A connection closed after its handshake counts as cleanly shut down for its session, so
  // that OpenSSL keeps the session in the cache (see Transport::close).
  void mark_clean_close();

  // One step of an operation: finished (`n` and `ec`), or waiting for the socket.
  enum class Want { nothing, read, write };
  struct Step {
    Step() = default;
    Step(Want w, std::size_t bytes = 0, boost::system::error_code e = {})
        : want(w), n(bytes), ec(e) {}
    Want want = Want::nothing;
    std::size_t n = 0;
    boost::system::error_code ec;
  };

  // The steps the operations below are made of.
  Step handshake();                         // reads the socket itself
  Step read_buffered(std::span<char> out);  // without the socket
  // Decrypts `received` bytes of ciphertext read into `buffer`, in place unless `carried`
  // (OpenSSL held part of a record when the read started; see ReadOp).
  Step read_in_place(std::span<char> buffer, std::size_t received, bool carried);
  bool holds_partial_record() const;
  Step read_now(std::span<char> out);  // buffered input, then the socket until it would block
  Step write(const char* data, std::size_t size);  // one SSL_write of `size` bytes (or retry)
  Step shutdown();                                 // sends close_notify
  // What a read reports when the socket ended: end of stream after the peer's
  // close_notify, stream_truncated (as Asio's stream says) without one.
  boost::system::error_code end_of_stream() const;

  static char* gather_buffer();  // kRecordPayload bytes, per thread

  // ---- Operations (Asio-style) -----------------------------------------------------------

  template <typename Handler>
  void async_handshake(Handler&& handler) {
    HandshakeOp<std::decay_t<Handler>>{this, std::forward<Handler>(handler)}.run(true);
  }

  // Reads some plaintext into `buffer` (a single buffer).
  template <typename Handler>
  void async_read_some(boost::asio::mutable_buffer buffer, Handler&& handler) {
    ReadOp<std::decay_t<Handler>>{this, buffer, std::forward<Handler>(handler)}.start(true);
  }

  // Reads and drops what arrives (a lingering close): completes with the number of bytes
  // dropped, or the error that ended the stream.
  template <typename Handler>
  void async_discard(Handler&& handler) {
    DiscardOp<std::decay_t<Handler>>{this, std::forward<Handler>(handler)}.run(true);
  }

  // Writes all of `buffers` (a const buffer sequence that outlives the operation).
  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    WriteOp<Buffers, std::decay_t<Handler>> op{this, buffers, std::forward<Handler>(handler)};
    op.total = boost::asio::buffer_size(buffers);
    op.run(true);
  }

  // close_notify, then reads until the peer's answer or the end of the stream.
  template <typename Handler>
  void async_shutdown(Handler&& handler) {
    ShutdownOp<std::decay_t<Handler>>{this, std::forward<Handler>(handler)}.run(true);
  }

 private:
  friend struct TlsBio;

  // Completes `handler(args...)`: posted when still inside the initiating call.
  template <typename Handler, typename... Args>
  void complete(bool initiating, Handler& handler, Args... args) {
    if (initiating) {
      boost::asio::post(socket_->get_executor(),
                        [h = std::move(handler), args...]() mutable { h(args...); });
    } else {
      handler(args...);
    }
  }

  template <typename Handler>
  struct HandshakeOp {
    TlsStream* s;
    Handler handler;
    void run(bool initiating) {
      const Step step = s->handshake();
      if (step.want == Want::nothing) return s->complete(initiating, handler, step.ec);
      s->wait(step.want, std::move(*this));
    }
    void operator()(boost::system::error_code ec) {
      if (ec) return handler(ec);
      run(false);
    }
  };

  template <typename Handler>
  struct ReadOp {
    TlsStream* s;
    boost::asio::mutable_buffer buffer;
    Handler handler;
    bool carried = false;  // OpenSSL held part of a record when the socket read started
    std::span<char> out() const { return {static_cast<char*>(buffer.data()), buffer.size()}; }
    void start(bool initiating) {
      const Step step = buffer.size() == 0 ? Step{} : s->read_buffered(out());
      if (step.want == Want::nothing) return s->complete(initiating, handler, step.ec, step.n);
      if (step.want == Want::write) return s->wait(Want::write, std::move(*this));
      read_socket();
    }
    void read_socket() {
      // Decrypting in place is safe only from a record boundary (see the header).
      carried = s->holds_partial_record();
      const std::size_t size = carried ? std::min(buffer.size(), kReadCarried) : buffer.size();
      s->socket_->async_read_some(boost::asio::mutable_buffer(buffer.data(), size),
                                  std::move(*this));
    }
    // The socket was read into the caller's buffer.
    void operator()(boost::system::error_code ec, std::size_t n) {
      if (ec == boost::asio::error::eof) ec = s->end_of_stream();
      if (ec) return handler(ec, std::size_t{0});
      const Step step = s->read_in_place(out(), n, carried);
      if (step.want == Want::nothing) return handler(step.ec, step.n);
      if (step.want == Want::write) return s->wait(Want::write, std::move(*this));
      read_socket();
    }
    // A record OpenSSL had to write while reading went out (rare: a key update's answer).
    void operator()(boost::system::error_code ec) {
      if (ec) return handler(ec, std::size_t{0});
      start(false);
    }
  };

  template <typename Handler>
  struct DiscardOp {
    TlsStream* s;
    Handler handler;
    void run(bool initiating) {
      thread_local char sink[4096];
      const Step step = s->read_now(sink);
      if (step.want == Want::nothing) return s->complete(initiating, handler, step.ec, step.n);
      s->wait(step.want, std::move(*this));
    }
    void operator()(boost::system::error_code ec) {
      if (ec) return handler(ec, std::size_t{0});
      run(false);
    }
  };

  template <typename Buffers, typename Handler>
  struct WriteOp {
    TlsStream* s;
    Buffers buffers;
    Handler handler;
    std::size_t total = 0;
    std::size_t written = 0;
    // The SSL_write in progress: `call_size` bytes from offset `written`, from the caller's
    // buffer directly (`direct`) or gathered.
    std::size_t call_size = 0;
    const char* direct = nullptr;

    void run(bool initiating) {
      for (;;) {
        if (call_size == 0) {
          if (written == total)
            return s->complete(initiating, handler, boost::system::error_code{}, written);
          plan();
        }
        const Step step = s->write(direct != nullptr ? direct : gather(), call_size);
        if (step.want != Want::nothing) return s->wait(step.want, std::move(*this));
        if (step.ec) return s->complete(initiating, handler, step.ec, written);
        written += call_size;
        call_size = 0;
      }
    }
    void operator()(boost::system::error_code ec) {
      if (ec) return handler(ec, written);
      run(false);
    }

   private:
    // The next SSL_write: the rest of the current buffer when it is large or the last one,
    // else up to a record's worth gathered from this buffer and the next ones.
    void plan() {
      std::size_t skip = written;
      auto it = boost::asio::buffer_sequence_begin(buffers);
      const auto end = boost::asio::buffer_sequence_end(buffers);
      for (; it != end; ++it) {
        const boost::asio::const_buffer b(*it);
        if (skip < b.size()) {
          const std::size_t rest = b.size() - skip;
          if (rest >= kRecordPayload || written + rest == total) {
            direct = static_cast<const char*>(b.data()) + skip;
            call_size = rest;
          } else {
            direct = nullptr;
            call_size = std::min(total - written, kRecordPayload);
          }
          return;
        }
        skip -= b.size();
      }
    }
    const char* gather() const {
      char* out = gather_buffer();
      std::size_t skip = written;
      std::size_t filled = 0;
      auto it = boost::asio::buffer_sequence_begin(buffers);
      const auto end = boost::asio::buffer_sequence_end(buffers);
      for (; it != end && filled < call_size; ++it) {
        const boost::asio::const_buffer b(*it);
        if (skip >= b.size()) {
          skip -= b.size();
          continue;
        }
        const std::size_t n = std::min(b.size() - skip, call_size - filled);
        std::memcpy(out + filled, static_cast<const char*>(b.data()) + skip, n);
        filled += n;
        skip = 0;
      }
      return out;
    }
  };

  template <typename Handler>
  struct ShutdownOp {
    TlsStream* s;
    Handler handler;
    bool sent = false;
    void run(bool initiating) {
      if (!sent) {
        const Step step = s->shutdown();
        if (step.want != Want::nothing) return s->wait(step.want, std::move(*this));
        if (step.ec || step.n == 1) return s->complete(initiating, handler, step.ec);
        sent = true;
      }
      // Wait for the peer's close_notify (end_of_stream), dropping what comes before it.
      for (;;) {
        thread_local char sink[4096];
        const Step step = s->read_now(sink);
        if (step.want != Want::nothing) return s->wait(step.want, std::move(*this));
        if (step.ec) {
          return s->complete(
              initiating, handler,
              step.ec == boost::asio::error::eof ? boost::system::error_code{} : step.ec);
        }
      }
    }
    void operator()(boost::system::error_code ec) {
      if (ec) return handler(ec);
      run(false);
    }
  };

  template <typename Op>
  void wait(Want want, Op&& op) {
    socket_->async_wait(want == Want::read ? TcpSocket::wait_read : TcpSocket::wait_write,
                        std::forward<Op>(op));
  }

  enum class Fill { data, would_block, end, error };
  Fill fill(boost::system::error_code& ec);  // recv(2) into the scratch buffer, fed next
  std::optional<Step> refill();       // fill(); nullopt when there is more to feed, else the answer
  Step decrypt(std::span<char> out);  // SSL_read_ex until `out` is full or input runs out
  boost::system::error_code error_of(int ssl_error);
  void settle();  // keeps the ciphertext OpenSSL has not consumed in pending_

  TcpSocket* socket_;
  int fd_;
  SSL* ssl_ = nullptr;
  std::string pending_;    // ciphertext received but not yet given to OpenSSL
  std::string_view feed_;  // what the BIO gives OpenSSL during one call
  int write_errno_ = 0;    // the send(2) error behind an SSL_ERROR_SYSCALL
};

}  // namespace meridian::net
