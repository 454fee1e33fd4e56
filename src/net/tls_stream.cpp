#include "meridian/net/tls_stream.hpp"

#include <cerrno>
#include <new>
#include <optional>
#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>

namespace meridian::net {

namespace {

// SSL_get_error needs the thread's error queue empty before each SSL call (a stale entry
// would turn a WANT_READ into a failure). ERR_clear_error walks all 16 slots of the queue even
// when it is empty, as it nearly always is here: about 840 instructions in OpenSSL 3.0, three
// times per proxied request (2,500 of the 19,000 a TLS request cost). ERR_peek_error answers
// the same question for a small part of that, and is what SSL_get_error itself looks at.
void clear_error_queue() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Room for one record as it comes off the wire: its payload, header and AEAD overhead.
constexpr std::size_t kRecvScratch = TlsStream::kRecordPayload + 512;
static_assert(TlsStream::kReadCarried <= kRecvScratch);

char* recv_buffer() {
  thread_local char scratch[kRecvScratch];
  return scratch;
}

}  // namespace

// The BIO under every TlsStream: reads come from the stream's `feed_`, writes go to the
// socket. A read with nothing to give asks OpenSSL to retry (SSL_ERROR_WANT_READ), which
// tells the stream to get more ciphertext; a write the socket refuses does the same.
struct TlsBio {
  static int read(BIO* bio, char* out, int size) {
    auto* s = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (s->feed_.empty()) {
      BIO_set_retry_read(bio);
      return -1;
    }
    const std::size_t n = std::min(static_cast<std::size_t>(size), s->feed_.size());
    std::memcpy(out, s->feed_.data(), n);
    s->feed_.remove_prefix(n);
    return static_cast<int>(n);
  }

  static int write(BIO* bio, const char* data, int size) {
    auto* s = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    for (;;) {
      const ssize_t n = ::send(s->fd_, data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BIO_set_retry_write(bio);
        return -1;
      }
      s->write_errno_ = errno;
      return -1;
    }
  }

  static long ctrl(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
    return command == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is buffered here
  }

  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "meridian");
      if (made == nullptr) throw std::bad_alloc();
      BIO_meth_set_read(made, read);
      BIO_meth_set_write(made, write);
      BIO_meth_set_ctrl(made, ctrl);
      BIO_meth_set_create(made, create);
      return made;
    }();
    return m;
  }
};

TlsStream::TlsStream(TcpSocket& socket, SSL_CTX* context, TlsRole role)
    : socket_(&socket), fd_(socket.native_handle()) {
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr) throw std::bad_alloc();
  BIO* bio = BIO_new(TlsBio::method());
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways: the SSL object owns it
  // A retried write is offered from the per-thread gather buffer, not the first call's
  // address; the bytes are the same.
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (role == TlsRole::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  // The BIO writes with send(2) directly, which must not block the worker.
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

bool TlsStream::holds_partial_record() const {
  return SSL_has_pending(ssl_) == 1;
}

bool TlsStream::has_buffered_input() const {
  return !pending_.empty() || SSL_has_pending(ssl_) == 1;
}

bool TlsStream::release_idle_buffers() {
  if ((SSL_get_mode(ssl_) & SSL_MODE_RELEASE_BUFFERS) != 0) return false;  // OpenSSL does it
  if (SSL_is_init_finished(ssl_) != 1 || has_buffered_input()) return false;
  // SSL_free_buffers refuses (0) while the read buffer holds part of a record or the write
  // buffer has bytes to send; it checks a record's header read without its body too since
  // OpenSSL 3.0.14 (CVE-2024-4741), which is why older libraries keep
  // SSL_MODE_RELEASE_BUFFERS (tls::ServerContext) and never get here.
  return SSL_free_buffers(ssl_) == 1;
}

void TlsStream::release_buffers_between_records() {
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
}

void TlsStream::mark_clean_close() {
  if (SSL_is_init_finished(ssl_) == 1) {
    SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
}

char* TlsStream::gather_buffer() {
  thread_local char scratch[kRecordPayload];
  return scratch;
}

boost::system::error_code TlsStream::end_of_stream() const {
  if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0) return boost::asio::error::eof;
  return boost::asio::ssl::error::stream_truncated;
}

boost::system::error_code TlsStream::error_of(int ssl_error) {
  const unsigned long queued = ERR_get_error();
  ERR_clear_error();
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      return boost::asio::error::eof;
    case SSL_ERROR_SYSCALL:
      if (write_errno_ != 0) {
        return {write_errno_, boost::system::system_category()};
      }
      if (queued == 0) return boost::asio::ssl::error::stream_truncated;
      break;
    case SSL_ERROR_SSL:
      if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return boost::asio::ssl::error::stream_truncated;
      }
      break;
    default:
      break;
  }
  if (queued == 0) return boost::asio::error::invalid_argument;
  return {static_cast<int>(queued), boost::asio::error::get_ssl_category()};
}

void TlsStream::settle() {
  if (feed_.empty()) {
    std::string().swap(pending_);  // all consumed: free the storage
  } else if (!pending_.empty() && feed_.data() >= pending_.data() &&
             feed_.data() <= pending_.data() + pending_.size()) {
    pending_.erase(0, static_cast<std::size_t>(feed_.data() - pending_.data()));
  } else {
    pending_.assign(feed_);  // the rest of the caller's buffer or of the scratch buffer
  }
  feed_ = {};
}

TlsStream::Fill TlsStream::fill(boost::system::error_code& ec) {
  char* scratch = recv_buffer();
  for (;;) {
    const ssize_t n = ::recv(fd_, scratch, kRecvScratch, 0);
    if (n > 0) {
      if (pending_.empty()) {
        feed_ = {scratch, static_cast<std::size_t>(n)};
      } else {
        pending_.append(scratch, static_cast<std::size_t>(n));
        feed_ = pending_;
      }
      return Fill::data;
    }
    if (n == 0) return Fill::end;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Fill::would_block;
    ec = {errno, boost::system::system_category()};
    return Fill::error;
  }
}

std::optional<TlsStream::Step> TlsStream::refill() {
  boost::system::error_code ec;
  switch (fill(ec)) {
    case Fill::data:
      return std::nullopt;  // go on: OpenSSL has more to read
    case Fill::would_block:
      return Step{Want::read};
    case Fill::end:
      return Step{Want::nothing, 0, end_of_stream()};
    case Fill::error:
      return Step{Want::nothing, 0, ec};
  }
  return Step{Want::nothing, 0, boost::asio::error::invalid_argument};
}

TlsStream::Step TlsStream::handshake() {
  for (;;) {
    if (feed_.empty()) feed_ = pending_;
    clear_error_queue();
    write_errno_ = 0;
    const int r = SSL_do_handshake(ssl_);
    const int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    settle();
    if (r == 1) return {};
    if (e == SSL_ERROR_WANT_WRITE) return {Want::write};
    if (e != SSL_ERROR_WANT_READ) return {Want::nothing, 0, error_of(e)};
    if (auto stop = refill()) return *stop;
  }
}

TlsStream::Step TlsStream::decrypt(std::span<char> out) {
  std::size_t produced = 0;
  // The ciphertext is `feed_` when the caller set it, else pending_ (which settle() trims
  // only at the end: until then feed_ alone says what is left).
  if (feed_.empty()) feed_ = pending_;
  for (;;) {
    clear_error_queue();
    write_errno_ = 0;
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, out.data() + produced, out.size() - produced, &n);
    if (r == 1) {
      produced += n;
      // Another SSL_read could only say WANT_READ when no ciphertext is left to feed and
      // OpenSSL buffers none: a call saved per request (HTTP/1.1 requests are one record).
      const bool more = !feed_.empty() || SSL_has_pending(ssl_) == 1;
      if (produced < out.size() && more) continue;
      settle();
      return {Want::nothing, produced};
    }
    const int e = SSL_get_error(ssl_, r);
    settle();
    // What was read goes to the caller first; an error or the end of the stream comes back
    // on the next read, which meets it again.
    if (produced != 0) return {Want::nothing, produced};
    if (e == SSL_ERROR_WANT_READ) return {Want::read};
    if (e == SSL_ERROR_WANT_WRITE) return {Want::write};
    return {Want::nothing, 0, error_of(e)};
  }
}

TlsStream::Step TlsStream::read_buffered(std::span<char> out) {
  if (pending_.empty() && SSL_has_pending(ssl_) != 1) return {Want::read};
  return decrypt(out);
}

TlsStream::Step TlsStream::read_in_place(std::span<char> buffer, std::size_t received,
                                         bool carried) {
  if (carried && pending_.empty()) {
    // OpenSSL holds the start of a record: its plaintext may be longer than what of it is
    // in `buffer`, so the ciphertext moves out of the way first (ReadOp read at most
    // kReadCarried bytes then).
    std::memcpy(recv_buffer(), buffer.data(), received);
    feed_ = {recv_buffer(), received};
  } else if (pending_.empty()) {
    feed_ = {buffer.data(), received};  // decrypted where it lies (see the header)
  } else {
    pending_.append(buffer.data(), received);
    feed_ = pending_;
  }
  return decrypt(buffer);
}

TlsStream::Step TlsStream::read_now(std::span<char> out) {
  for (;;) {
    const Step step = decrypt(out);
    if (step.want != Want::read) return step;
    if (auto stop = refill()) return *stop;
  }
}

TlsStream::Step TlsStream::write(const char* data, std::size_t size) {
  clear_error_queue();
  write_errno_ = 0;
  std::size_t n = 0;
  const int r = SSL_write_ex(ssl_, data, size, &n);
  if (r == 1) return {Want::nothing, n};
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_WRITE) return {Want::write};
  // SSL_ERROR_WANT_READ would mean a renegotiation, which the contexts refuse.
  return {Want::nothing, 0, error_of(e)};
}

TlsStream::Step TlsStream::shutdown() {
  clear_error_queue();
  write_errno_ = 0;
  const int r = SSL_shutdown(ssl_);
  if (r >= 0) return {Want::nothing, static_cast<std::size_t>(r)};  // 1: both sides done
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_WRITE) return {Want::write};
  return {Want::nothing, 0, error_of(e)};
}

}  // namespace meridian::net
