#include "meridian/proxy/h2_upstream.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/buffer.hpp>
#include <openssl/ssl.h>

#include "meridian/core/log.hpp"
#include "meridian/tls/client_context.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadBuffer = 16 * 1024;
constexpr std::size_t kWriteBatch = 64 * 1024;

http::h2::Settings client_settings() {
  http::h2::Settings s;
  s.stream_window = H2Upstream::kStreamWindow;
  // Received DATA is acknowledged to the connection at once (each stream's window bounds
  // its buffer), so a slow client on one stream does not stall the others.
  s.connection_window = 1024 * 1024;
  return s;
}

}  // namespace

H2Upstream::H2Upstream(asio::io_context& ioc, net::DeadlineList& deadlines,
                       std::shared_ptr<balancing::EndpointState> endpoint, const Options& options)
    : endpoint_(std::move(endpoint)),
      options_(options),
      transport_(ioc),
      codec_(*this, client_settings()) {
  link(deadlines);
}

H2Upstream::~H2Upstream() {
  unlink();
}

// ---------------------------------------------------------------------------------------
// Connection setup

void H2Upstream::connect() {
  if (!codec_.ok()) {
    state_ = State::closed;
    fail_all(false);
    return;
  }
  expires_after(options_.connect_timeout);
  transport_.socket().async_connect(
      endpoint_->target,
      [self = shared_from_this()](boost::system::error_code ec) { self->on_connected(ec); });
}

void H2Upstream::on_connected(boost::system::error_code ec) {
  if (state_ == State::closed) return;
  if (ec) {
    log::debug("upstream ", endpoint_->address, ": connect failed: ", ec.message());
    close();
    return;
  }
  transport_.socket().set_option(tcp::no_delay(true), ec);
  if (options_.tls == nullptr) {
    connected();
    return;
  }
  auto& stream = transport_.start_tls(*options_.tls, net::TlsRole::client);
  tls::prepare_client(stream.native_handle(), *options_.tls_config, endpoint_->address);
  stream.async_handshake(
      [self = shared_from_this()](boost::system::error_code e) { self->on_handshake(e); });
}

void H2Upstream::on_handshake(boost::system::error_code ec) {
  if (state_ == State::closed) return;
  if (ec) {
    log::warn("upstream ", endpoint_->address, ": TLS handshake failed: ", ec.message());
    close();
    return;
  }
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(transport_.tls().native_handle(), &protocol, &length);
  if (length != 2 || std::memcmp(protocol, "h2", 2) != 0) {
    // An origin that does not speak HTTP/2 would read our preface as a bad HTTP/1.1 request.
    log::warn("upstream ", endpoint_->address,
              ": the origin did not choose h2 by ALPN (backend protocol h2); is it an "
              "HTTP/1.1 server? use protocol http1 for it");
    close();
    return;
  }
  connected();
}

void H2Upstream::connected() {
  // The preface and our SETTINGS go out now; streams wait for the origin's SETTINGS
  // (on_settings), still under connect_timeout.
  state_ = State::settings;
  read();
  flush();
}

void H2Upstream::on_settings() {
  if (state_ == State::settings) ready();
}

void H2Upstream::ready() {
  state_ = State::ready;
  Deadline::clear();
  if (streams_.empty()) expires_after(options_.idle_timeout);
  // Each waiting exchange submits its stream; the preface, SETTINGS and the first requests
  // go out in one write.
  ++in_codec_;
  const auto waiting = streams_;
  for (const auto& slot : waiting) {
    // An exchange that gave up meanwhile (detached by an earlier one's call) is skipped.
    const bool attached = std::any_of(streams_.begin(), streams_.end(),
                                      [&](const Slot& s) { return s.stream == slot.stream; });
    if (attached) slot.stream->on_h2_ready();
  }
  --in_codec_;
  flush();
  run_later();
}

// ---------------------------------------------------------------------------------------
// Streams

std::uint32_t H2Upstream::stream_limit() const {
  // Before the origin's SETTINGS, nghttp2 reports "unlimited": kMaxStreams is assumed (RFC
  // 9113 6.5.2 recommends servers allow at least 100); nghttp2 holds back any the origin
  // then turns out not to allow until earlier streams close.
  return std::min(codec_.peer_max_concurrent_streams(), kMaxStreams);
}

bool H2Upstream::has_room(std::uint32_t assumed_limit) const {
  const auto limit = state_ == State::ready ? stream_limit() : assumed_limit;
  return usable() && !closing_ && streams_.size() < limit;
}

bool H2Upstream::attach(H2UpstreamStream& s) {
  streams_.push_back(Slot{&s, 0});
  Deadline::clear();
  if (state_ != State::ready) expires_after(options_.connect_timeout);
  return state_ == State::ready;
}

std::int32_t H2Upstream::submit(const http::h2::FieldBlock& fields, bool has_body,
                                H2UpstreamStream& s) {
  if (state_ != State::ready || goaway_) return -1;
  const std::int32_t id = codec_.submit_request(fields, has_body, &s);
  if (id <= 0) return -1;
  for (auto& slot : streams_) {
    if (slot.stream == &s) slot.id = id;
  }
  flush();
  return id;
}

void H2Upstream::resume(std::int32_t id) {
  if (state_ != State::ready) return;
  codec_.resume(id);
  flush();
}

void H2Upstream::consume(std::int32_t id, std::size_t n) {
  if (state_ != State::ready || n == 0) return;
  codec_.consume_stream(id, n);
  flush();
}

void H2Upstream::detach(H2UpstreamStream& s, std::int32_t id) {
  const auto it = std::find_if(streams_.begin(), streams_.end(),
                               [&](const Slot& slot) { return slot.stream == &s; });
  if (it == streams_.end()) return;
  streams_.erase(it);
  later_.erase(std::remove(later_.begin(), later_.end(), &s), later_.end());
  if (state_ == State::ready && id > 0) {
    codec_.set_user(id, nullptr);  // its frames from here on are dropped
    codec_.reset(id, http::h2::kCancel);
    flush();
  }
  after_stream_end();
}

void H2Upstream::later(H2UpstreamStream& s) {
  if (std::find(later_.begin(), later_.end(), &s) == later_.end()) later_.push_back(&s);
  if (in_codec_ == 0) run_later();
}

void H2Upstream::run_later() {
  if (in_codec_ != 0) return;
  while (!later_.empty()) {
    auto* s = later_.front();
    later_.erase(later_.begin());
    s->on_h2_later();
  }
}

void H2Upstream::after_stream_end() {
  if (!streams_.empty() || state_ == State::closed) return;
  if (closing_) {
    codec_.go_away(http::h2::kNoError, true);
    flush();
    if (!writing_) close();
    return;
  }
  if (state_ == State::ready) expires_after(options_.idle_timeout);
}

// ---------------------------------------------------------------------------------------
// I/O

void H2Upstream::read() {
  if (reading_ || state_ == State::closed) return;
  if (in_.capacity() == 0) in_.reserve(kReadBuffer);
  in_.consume(in_.size());
  in_.compact();
  reading_ = true;
  transport_.async_read_some(asio::buffer(in_.tail(), in_.tail_size()),
                             [self = shared_from_this()](boost::system::error_code ec,
                                                         std::size_t n) { self->on_read(ec, n); });
}

void H2Upstream::on_read(boost::system::error_code ec, std::size_t n) {
  reading_ = false;
  if (state_ == State::closed) return;
  if (ec) {
    if (!streams_.empty()) {
      log::debug("upstream ", endpoint_->address, ": HTTP/2 connection lost: ", ec.message());
    }
    close();
    return;
  }
  ++in_codec_;
  const auto fed = codec_.feed(reinterpret_cast<const std::uint8_t*>(in_.tail()), n);
  --in_codec_;
  if (fed == http::h2::Feed::close) {
    log::warn("upstream ", endpoint_->address, ": HTTP/2 error: ", codec_.error());
    close();
    return;
  }
  if (fed == http::h2::Feed::goaway) {
    log::warn("upstream ", endpoint_->address, ": HTTP/2 error: ", codec_.error());
    goaway_ = true;
  }
  flush();
  run_later();
  if (state_ != State::closed) read();
}

void H2Upstream::flush() {
  if (in_codec_ != 0 || writing_ || state_ == State::connecting || state_ == State::closed) {
    return;
  }
  out_.clear();
  ++in_codec_;
  const bool ok = codec_.produce(out_, kWriteBatch);
  --in_codec_;
  if (!ok) {
    log::warn("upstream ", endpoint_->address, ": HTTP/2 error: ", codec_.error());
    close();
    return;
  }
  if (out_.empty()) {
    if (!codec_.want_read() && !codec_.want_write()) close();  // both sides said GOAWAY
    run_later();
    return;
  }
  writing_ = true;
  writing_buffer_.swap(out_);
  transport_.async_write(asio::buffer(writing_buffer_),
                         [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                           self->writing_ = false;
                           if (self->state_ == State::closed) return;
                           if (ec) {
                             self->close();
                             return;
                           }
                           if (self->closing_ && self->streams_.empty()) {
                             self->close();
                             return;
                           }
                           self->flush();
                         });
  run_later();
}

void H2Upstream::shutdown() {
  closing_ = true;
  goaway_ = true;
  if (state_ == State::connecting && streams_.empty()) {
    close();
    return;
  }
  after_stream_end();
}

void H2Upstream::close() {
  if (state_ == State::closed) return;
  const bool was_ready = state_ == State::ready;
  state_ = State::closed;
  Deadline::clear();
  transport_.close();
  fail_all(was_ready);
}

void H2Upstream::fail_all(bool lost) {
  // Streams not opened yet never reached the origin; the others were cut.
  auto slots = std::move(streams_);
  streams_.clear();
  later_.clear();
  for (const auto& slot : slots) {
    if (slot.id > 0) {
      slot.stream->on_h2_closed(http::h2::kInternalError);
    } else {
      slot.stream->on_h2_unprocessed(lost || !timed_out_ ? H2Unprocessed::connect
                                                         : H2Unprocessed::connect_timeout);
    }
  }
}

void H2Upstream::on_deadline() {
  Deadline::clear();
  if (state_ == State::closed) return;
  if (state_ == State::connecting || state_ == State::settings) {
    log::debug("upstream ", endpoint_->address, ": connect timed out");
    timed_out_ = true;
    close();
    return;
  }
  if (streams_.empty()) {
    // idle_timeout: a polite end (GOAWAY), then the close.
    closing_ = true;
    goaway_ = true;
    after_stream_end();
  }
}

// ---------------------------------------------------------------------------------------
// Codec events, to the stream's exchange

void H2Upstream::on_field(void* user, http::h2::Block block, std::string_view name,
                          std::string_view value) {
  static_cast<H2UpstreamStream*>(user)->on_h2_field(block, name, value);
}

void H2Upstream::on_block_end(void* user, http::h2::Block block, bool end_stream) {
  static_cast<H2UpstreamStream*>(user)->on_h2_block_end(block, end_stream);
}

void H2Upstream::on_data(void* user, const std::uint8_t* data, std::size_t n) {
  codec_.consume_connection(n);
  static_cast<H2UpstreamStream*>(user)->on_h2_data(data, n);
}

void H2Upstream::on_end_stream(void* user) {
  static_cast<H2UpstreamStream*>(user)->on_h2_end_stream();
}

void H2Upstream::on_stream_closed(void* user, std::uint32_t error_code) {
  auto* s = static_cast<H2UpstreamStream*>(user);
  const auto it = std::find_if(streams_.begin(), streams_.end(),
                               [&](const Slot& slot) { return slot.stream == s; });
  if (it == streams_.end()) return;
  streams_.erase(it);
  later_.erase(std::remove(later_.begin(), later_.end(), s), later_.end());
  s->on_h2_closed(error_code);
  after_stream_end();
}

http::h2::Pull H2Upstream::pull(void* user, std::uint8_t* buffer, std::size_t max) {
  return static_cast<H2UpstreamStream*>(user)->on_h2_pull(buffer, max);
}

void H2Upstream::on_goaway(std::int32_t, std::uint32_t error_code) {
  // nghttp2 closes the streams the origin did not process (REFUSED_STREAM); the others run
  // to their end, and nothing new goes on this connection.
  if (error_code != http::h2::kNoError) {
    log::warn("upstream ", endpoint_->address, ": GOAWAY with error code ", error_code);
  }
  goaway_ = true;
  closing_ = true;
}

// ---------------------------------------------------------------------------------------
// Pool

std::shared_ptr<H2Upstream> H2UpstreamPool::acquire(
    const std::shared_ptr<balancing::EndpointState>& endpoint, const H2Upstream::Options& options) {
  auto& list = conns_[endpoint.get()];
  std::erase_if(list, [](const std::shared_ptr<H2Upstream>& c) { return !c->usable(); });
  // A connection still being set up takes as many streams as the endpoint's connections
  // that are up allow (the origin's limit is the same on all of them), kMaxStreams when
  // none is up yet.
  std::uint32_t assumed = H2Upstream::kMaxStreams;
  for (const auto& c : list) {
    if (c->state_ == H2Upstream::State::ready) assumed = std::min(assumed, c->stream_limit());
  }
  for (const auto& c : list) {
    // A reload that switched the backend's TLS on or off: not for this request.
    if (c->has_room(assumed) && (c->options_.tls != nullptr) == (options.tls != nullptr)) {
      return c;
    }
  }
  auto c = std::make_shared<H2Upstream>(ioc_, deadlines_, endpoint, options);
  ++connects;
  list.push_back(c);
  c->connect();
  return c;
}

void H2UpstreamPool::shutdown() {
  for (auto& [endpoint, list] : conns_) {
    for (auto& c : list)
      c->shutdown();
  }
  conns_.clear();
}

void H2UpstreamPool::sweep() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    std::erase_if(it->second, [](const auto& c) { return c->state_ == H2Upstream::State::closed; });
    it = it->second.empty() ? conns_.erase(it) : std::next(it);
  }
}

std::size_t H2UpstreamPool::size() const {
  std::size_t n = 0;
  for (const auto& [endpoint, list] : conns_)
    n += static_cast<std::size_t>(
        std::count_if(list.begin(), list.end(), [](const auto& c) { return c->usable(); }));
  return n;
}

}  // namespace meridian::proxy
