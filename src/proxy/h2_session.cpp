#include "meridian/proxy/h2_session.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "meridian/core/log.hpp"

#include "proxy/h2_stream.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// The glitch budget (see the header): a client may misbehave this many times at once, and
// this many times a second on average. A browser stays far below (a few PRIORITY frames and
// cancelled streams per page); a rapid-reset or PING flood spends it within milliseconds.
constexpr double kGlitchBurst = 400;
constexpr double kGlitchRate = 100;
// How often an idle connection looks at the clock, the retired streams and the snapshot.
constexpr seconds kTick{1};
// A connection whose next stream opened within this long after its last one ended is busy:
// it keeps its read and write buffers and OpenSSL's record buffers between its streams until
// an idle tick (see shed_buffers), as HTTP/1.1 keeps them for kHoldBufferFor.
constexpr milliseconds kHoldBuffersFor{100};
// How long a closing connection reads (and discards) what the client still sends.
constexpr seconds kLingerTime{2};

}  // namespace

H2Session::H2Session(WorkerContext& worker, const std::string* listener_name,
                     std::shared_ptr<const Snapshot> snapshot, int listener_index,
                     H2Transport transport)
    : w_(worker),
      listener_name_(listener_name),
      snapshot_(std::move(snapshot)),
      listener_index_(listener_index),
      t_(std::move(transport)) {
  ++w_.sessions;
  if (w_.node_connections != nullptr) w_.node_connections->fetch_add(1, std::memory_order_relaxed);
  link(w_.deadlines);
}

H2Session::~H2Session() {
  unlink();
  // The codec calls nothing when destroyed; the streams' exchanges are quiescent (each
  // pending operation held this session).
  codec_.reset();
  open_.clear();
  retired_.clear();
  if (counted_) w_.counters->connection_closed(connections_series_);
  if (w_.node_connections != nullptr) w_.node_connections->fetch_sub(1, std::memory_order_relaxed);
  if (--w_.sessions == 0 && w_.draining && w_.on_drained) w_.on_drained();
}

bool H2Session::setup() {
  const auto& limits = snapshot_->config->limits;
  http::h2::Settings settings;
  settings.max_concurrent_streams = kMaxConcurrentStreams;
  settings.stream_window = kStreamWindow;
  settings.connection_window = kConnectionWindow;
  settings.max_header_list = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(limits.max_request_header_bytes, UINT32_MAX));
  codec_ = std::make_unique<http::h2::ServerCodec>(static_cast<http::h2::Events&>(*this), settings);
  return codec_->ok();
}

void H2Session::start(std::string_view received) {
  if (w_.counters != nullptr) {
    connections_series_ = listener().connections_series;
    w_.counters->connection_opened(connections_series_);
    counted_ = true;
  }
  glitch_tokens_ = kGlitchBurst;
  glitch_refill_ = idle_since_ = net::Clock::now();
  if (!setup()) {
    close();
    return;
  }
  in_ = std::make_unique<std::uint8_t[]>(kReadBuffer);
  arm();
  if (!received.empty() &&
      !feed(reinterpret_cast<const std::uint8_t*>(received.data()), received.size())) {
    return;
  }
  if (w_.draining) go_away(http::h2::kNoError, true);
  flush();
  read();
}

// ---------------------------------------------------------------------------------------
// Reading

void H2Session::read() {
  if (reading_ || closed_ || !codec_->want_read()) return;
  // A client that does not read what it is sent is not read either: the codec would queue
  // the answers (SETTINGS and PING ACKs, RST_STREAMs) to what it keeps sending.
  if (writing_ && codec_->want_write()) return;  // resumed when the write ends
  if (in_ == nullptr) {
    wait_readable();
    return;
  }
  reading_ = true;
  t_.transport.async_read_some(
      asio::buffer(in_.get(), kReadBuffer),
      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        self->on_read(ec, n);
      });
}

void H2Session::shed_buffers(bool idle_tick) {
  // No stream is open and nothing is being written: the connection is idle until the client
  // sends again, which may be never (a browser keeps its connection for minutes). A busy
  // client keeps its buffers until an idle tick: they would be allocated again for its next
  // streams (a malloc and free, and a cancelled read re-armed in epoll, per burst).
  if (closed_ || lingering_ || going_away_ || writing_ || !open_.empty()) return;
  if (busy_ && !idle_tick) return;
  if (out_.capacity() != 0) std::string().swap(out_);
  t_.transport.release_idle_buffers();  // OpenSSL's record buffers
  if (reading_ && in_ != nullptr && !shedding_) {
    shedding_ = true;
    t_.transport.cancel();  // on_read sees operation_aborted and waits without a buffer
  }
}

void H2Session::wait_readable() {
  reading_ = true;
  auto on_readable = [self = shared_from_this()](boost::system::error_code ec) {
    self->reading_ = false;
    if (self->closed_) return;
    if (self->lingering_) {
      self->linger_read();
      return;
    }
    if (ec) {
      self->close();
      return;
    }
    self->in_ = std::make_unique<std::uint8_t[]>(kReadBuffer);
    self->read();  // completes at once: the bytes are there
  };
  // TLS may hold records already that the socket will not announce again.
  if (t_.transport.has_buffered_input()) {
    asio::post(t_.transport.socket().get_executor(),
               [f = std::move(on_readable)]() mutable { f(boost::system::error_code{}); });
    return;
  }
  t_.transport.socket().async_wait(net::TcpSocket::wait_read, std::move(on_readable));
}

void H2Session::on_read(boost::system::error_code ec, std::size_t n) {
  reading_ = false;
  const bool shedding = shedding_;
  shedding_ = false;
  if (closed_) return;
  if (shedding && ec == asio::error::operation_aborted && !lingering_) {
    in_.reset();
    read();  // waits for readability without a buffer
    return;
  }
  if (lingering_) {
    if (ec) {
      close();
    } else {
      linger_read();  // discarded
    }
    return;
  }
  reap_retired();
  if (ec) {
    close();  // the client went away (or reset): streams in progress end with it
    return;
  }
  if (!feed(in_.get(), n)) return;
  flush();
  read();
  shed_buffers();
}

bool H2Session::feed(const std::uint8_t* data, std::size_t n) {
  in_codec_ = true;
  const auto result = codec_->feed(data, n);
  in_codec_ = false;
  if (result == http::h2::Feed::ok) {
    if (codec_->in_header_block() != (header_block_since_ != net::Clock::time_point{})) {
      header_block_since_ =
          codec_->in_header_block() ? net::Clock::now() : net::Clock::time_point{};
    }
    return !closed_;
  }
  // A connection error (bad preface, flood, a frame on a closed stream...): the codec queued
  // a GOAWAY where the protocol has one; send it and close.
  log::debug("listener ", *listener_name_, ": HTTP/2 connection from ", t_.peer_text,
             " failed: ", codec_->error());
  if (result == http::h2::Feed::close) {
    close();
    return false;
  }
  going_away_ = true;
  flush();
  return false;
}

// ---------------------------------------------------------------------------------------
// Writing

void H2Session::flush() {
  if (closed_ || codec_ == nullptr) return;
  if (in_codec_ || flushing_ || writing_) {
    flush_again_ = true;  // picked up when the current call or write returns
    return;
  }
  flushing_ = true;
  out_.clear();
  do {
    flush_again_ = false;
    run_acks();
    if (!codec_->produce(out_, kWriteBatch)) {
      log::debug("listener ", *listener_name_, ": HTTP/2 send to ", t_.peer_text,
                 " failed: ", codec_->error());
      flushing_ = false;
      close();
      return;
    }
  } while ((flush_again_ || !acks_.empty()) && out_.size() < kWriteBatch && !closed_);
  flushing_ = false;
  if (closed_) return;
  if (!out_.empty()) {
    writing_ = true;
    write_since_ = net::Clock::now();
    t_.transport.async_write(
        asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          self->writing_ = false;
          if (self->closed_) return;
          if (ec) {
            self->close();
            return;
          }
          self->reap_retired();
          self->flush();
          self->read();
          self->shed_buffers();
        });
    return;
  }
  if (!codec_->want_read() && !codec_->want_write()) close();
}

void H2Session::flush_soon() {
  if (closed_ || codec_ == nullptr) return;
  if (in_codec_ || flushing_ || writing_) {
    flush_again_ = true;  // what runs now flushes when it returns
    return;
  }
  if (flush_posted_) return;
  flush_posted_ = true;
  // Behind the completions the reactor already has ready (Asio queues a handler posted from
  // a handler after them).
  asio::post(t_.transport.socket().get_executor(), [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void H2Session::run_acks() {
  // Popped one at a time: delivering may queue more.
  std::size_t i = 0;
  while (i < acks_.size()) {
    const auto id = acks_[i++];
    if (auto* s = stream(id)) s->deliver();
  }
  acks_.clear();
}

void H2Session::go_away(std::uint32_t error_code, bool graceful) {
  if (closed_ || codec_ == nullptr) return;
  if (graceful && going_away_) return;
  codec_->go_away(error_code, graceful);
  going_away_ = true;
  flush();
}

void H2Session::glitch() {
  const auto now = net::Clock::now();
  const double elapsed = std::chrono::duration<double>(now - glitch_refill_).count();
  glitch_refill_ = now;
  glitch_tokens_ = std::min(kGlitchBurst, glitch_tokens_ + elapsed * kGlitchRate) - 1;
  if (glitch_tokens_ >= 0) return;
  log::warn("listener ", *listener_name_, ": HTTP/2 client ", t_.peer_text,
            " exceeded the protocol abuse budget (resets, PING/SETTINGS/PRIORITY floods); "
            "closing with ENHANCE_YOUR_CALM");
  glitch_tokens_ = kGlitchBurst;  // one GOAWAY, not one per further frame
  go_away(http::h2::kEnhanceYourCalm, false);
}

void H2Session::linger_close() {
  // As HTTP/1.1's lingering close: what the client sent after our last frame (a
  // WINDOW_UPDATE, a request racing the GOAWAY) must not make our close a reset, which could
  // destroy the GOAWAY or the last response on their way. Send our end, then read and
  // discard until the client closes or kLingerTime passes.
  if (closed_ || lingering_) return;
  lingering_ = true;
  expires_at(net::Clock::now() + kLingerTime);
  if (t_.transport.is_tls() && !reading_) {
    t_.transport.async_tls_shutdown([self = shared_from_this()](boost::system::error_code) {
      self->close();  // close_notify answered, or the linger deadline closed the socket
    });
    return;
  }
  if (!t_.transport.shutdown_send()) {
    close();
    return;
  }
  linger_read();
}

void H2Session::linger_read() {
  if (reading_) return;  // the pending read comes back to on_read, which sees lingering_
  reading_ = true;
  t_.transport.async_discard([self = shared_from_this()](boost::system::error_code ec,
                                                         std::size_t n) { self->on_read(ec, n); });
}

void H2Session::close() {
  if (closed_) return;
  closed_ = true;
  clear();
  // The streams end with the connection: exchanges are aborted, unanswered requests are
  // logged 499 (as nginx logs a client that left).
  for (auto& s : open_) {
    s->on_closed(http::h2::kCancel);
    retired_.push_back(std::move(s));
  }
  open_.clear();
  acks_.clear();
  t_.transport.close();
}

// ---------------------------------------------------------------------------------------
// Streams

H2Stream* H2Session::stream(std::int32_t id) {
  if (codec_ == nullptr) return nullptr;
  return static_cast<H2Stream*>(codec_->user(id));
}

bool H2Session::on_stream_open(std::int32_t id) {
  // Streams whose exchange still winds down count too: resetting streams buys no more
  // concurrent upstream work than the limit.
  if (open_.size() + retired_.size() >= 2 * kMaxConcurrentStreams) {
    glitch();
    return false;  // REFUSED_STREAM
  }
  refresh_snapshot();
  codec_memory_released_ = false;
  if (open_.empty()) {
    busy_ = streamed_ && net::Clock::now() - idle_since_ < kHoldBuffersFor;
    streamed_ = true;
  }
  auto s = std::make_unique<H2Stream>(*this, id);
  codec_->set_user(id, s.get());
  open_.push_back(std::move(s));
  if (listener_removed_) go_away(http::h2::kNoError, true);  // this stream is still served
  return true;
}

void H2Session::on_field(void* user, http::h2::Block block, std::string_view name,
                         std::string_view value) {
  auto* s = static_cast<H2Stream*>(user);
  if (block == http::h2::Block::request) {
    s->on_header(name, value);
  } else if (block == http::h2::Block::trailers) {
    s->on_trailer(name, value);
  }
}

void H2Session::on_block_end(void* user, http::h2::Block block, bool end_stream) {
  auto* s = static_cast<H2Stream*>(user);
  if (block == http::h2::Block::request) {
    s->on_headers_done(end_stream);
  } else if (end_stream) {
    s->on_end_stream(true);  // after trailers
  }
}

void H2Session::on_data(void* user, const std::uint8_t* data, std::size_t n) {
  static_cast<H2Stream*>(user)->on_data(data, n);
}

void H2Session::on_end_stream(void* user) {
  static_cast<H2Stream*>(user)->on_end_stream();
}

void H2Session::on_sent_end(void* user) {
  static_cast<H2Stream*>(user)->on_response_sent();
}

void H2Session::on_peer_reset(void* user, std::uint32_t) {
  if (!static_cast<H2Stream*>(user)->answered()) glitch();  // CVE-2023-44487
}

http::h2::Pull H2Session::pull(void* user, std::uint8_t* buffer, std::size_t max) {
  return static_cast<H2Stream*>(user)->read_response(buffer, max);
}

void H2Session::on_stream_closed(void* user, std::uint32_t error_code) {
  auto* s = static_cast<H2Stream*>(user);
  s->on_closed(error_code);
  // Destroyed later, from a handler of this session's own (reap_retired): a stream's or its
  // exchange's code may be on the stack right now.
  const auto it =
      std::find_if(open_.begin(), open_.end(), [s](const auto& p) { return p.get() == s; });
  if (it == open_.end()) return;
  retired_.push_back(std::move(*it));
  *it = std::move(open_.back());
  open_.pop_back();
  if (open_.empty()) idle_since_ = net::Clock::now();
}

void H2Session::reap_retired() {
  std::erase_if(retired_, [](const std::unique_ptr<H2Stream>& s) { return s->quiescent(); });
}

void H2Session::refresh_snapshot() {
  if (snapshot_ == w_.snapshot || listener_removed_) return;
  const int index = w_.snapshot->listener_index(*listener_name_);
  if (index < 0) {
    // A reload removed the listener; the streams in progress finish under the configuration
    // they began with, and the client is told to go elsewhere.
    listener_removed_ = true;
    return;
  }
  snapshot_ = w_.snapshot;
  listener_index_ = index;
}

// ---------------------------------------------------------------------------------------
// Timeouts and drain

void H2Session::arm() {
  expires_at(net::Clock::now() + kTick);
}

void H2Session::on_deadline() {
  if (closed_ || lingering_) {
    close();  // the linger time is over
    clear();
    return;
  }
  reap_retired();
  refresh_snapshot();
  if (listener_removed_) go_away(http::h2::kNoError, true);
  const auto now = net::Clock::now();
  const auto& limits = snapshot_->config->limits;
  if (writing_ && now - write_since_ >= limits.idle_timeout) {
    // The client stopped reading (nginx's send_timeout): nothing queued for it, GOAWAY
    // and resets included, can go out any more.
    log::debug("listener ", *listener_name_, ": HTTP/2 client ", t_.peer_text,
               " read nothing for idle_timeout; closing");
    close();
    return;
  }
  if (open_.empty() && !writing_ && now - idle_since_ >= kTick) {
    // Idle for a tick: the codec's buffers go (not at once, which would cost allocations per
    // request of a client that sends one at a time).
    if (!codec_memory_released_) {
      codec_->release_idle_memory();
      codec_memory_released_ = true;
    }
    // So do the read and write buffers and OpenSSL's record buffers a busy client kept
    // (shed_buffers). Every idle tick: a frame outside any stream (PING, SETTINGS) takes
    // them again, and a record that was partly read keeps them until it is complete; with
    // nothing to free the calls are cheap.
    shed_buffers(true);
  }
  if (header_block_since_ != net::Clock::time_point{} &&
      now - header_block_since_ >= limits.header_timeout) {
    // HEADERS without END_HEADERS, and the rest not within header_timeout: the connection
    // can carry nothing else until the block ends.
    log::debug("listener ", *listener_name_, ": HTTP/2 client ", t_.peer_text,
               " left a header block unfinished for header_timeout; closing");
    header_block_since_ = {};
    go_away(http::h2::kProtocolError, false);
  }
  const bool first = codec_->last_peer_stream() == 0;
  if (open_.empty() && now - idle_since_ >= (first ? limits.header_timeout : limits.idle_timeout)) {
    go_away(http::h2::kNoError, true);  // idle_timeout: no stream is open
  }
  if (going_away_ && open_.empty() && !writing_) {
    linger_close();  // the GOAWAY went out: nothing is left to serve
    return;
  }
  arm();
}

void H2Session::on_drain() {
  go_away(http::h2::kNoError, true);
}

}  // namespace meridian::proxy
