#include "meridian/proxy/h2_session.hpp"

#include <algorithm>

#include <boost/asio/write.hpp>
#include <nghttp2/nghttp2.h>

#include "meridian/core/log.hpp"
#include "meridian/proxy/h2_stream.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using std::chrono::seconds;

namespace {

// The glitch budget (see the header): a client may misbehave this many times at once, and
// this many times a second on average. A browser stays far below (a few PRIORITY frames and
// cancelled streams per page); a rapid-reset or PING flood spends it within milliseconds.
constexpr double kGlitchBurst = 400;
constexpr double kGlitchRate = 100;
// How often an idle connection looks at the clock, the retired streams and the snapshot.
constexpr seconds kTick{1};
// How long a closing connection reads (and discards) what the client still sends.
constexpr seconds kLingerTime{2};

}  // namespace

// nghttp2's callbacks: each finds the session in user_data and the stream by its id.
struct H2Callbacks {
  static H2Session& session(void* user_data) { return *static_cast<H2Session*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      session(user_data).on_stream_begin(frame->hd.stream_id);
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_length, const std::uint8_t* value, std::size_t value_length,
                       std::uint8_t, void* user_data) {
    // Trailers (a second HEADERS) are not forwarded: the upstream body is re-framed.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (auto* s = session(user_data).stream(frame->hd.stream_id)) {
      s->on_header(std::string_view(reinterpret_cast<const char*>(name), name_length),
                   std::string_view(reinterpret_cast<const char*>(value), value_length));
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& self = session(user_data);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    auto* s = frame->hd.stream_id != 0 ? self.stream(frame->hd.stream_id) : nullptr;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (s == nullptr) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          s->on_headers_done(end_stream);
        } else if (end_stream) {
          s->on_end_stream();  // after trailers
        }
        return 0;
      case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end_stream) self.glitch();  // CVE-2019-9518
        if (s != nullptr && end_stream) s->on_end_stream();
        return 0;
      case NGHTTP2_RST_STREAM:
        if (s != nullptr && !s->answered()) self.glitch();  // CVE-2023-44487
        return 0;
      case NGHTTP2_PING:
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) self.glitch();  // CVE-2019-9512, -9515
        return 0;
      case NGHTTP2_PRIORITY:
        self.glitch();  // CVE-2019-9513
        return 0;
      default:
        return 0;
    }
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* user_data) {
    session(user_data).glitch();
    return 0;
  }

  static int on_data_chunk(nghttp2_session* h2, std::uint8_t, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t length, void* user_data) {
    if (auto* s = session(user_data).stream(stream_id)) {
      s->on_data(data, length);
    } else {
      nghttp2_session_consume(h2, stream_id, length);  // a refused stream's body
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    const bool ends = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (ends && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
      if (auto* s = session(user_data).stream(frame->hd.stream_id)) s->on_response_sent();
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                             void* user_data) {
    session(user_data).on_stream_closed(stream_id, error_code);
    return 0;
  }

  static nghttp2_session_callbacks* make() {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
  }

  static nghttp2_option* options() {
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Window updates follow what the upstream took, not what arrived (bounded buffers).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    // Explicit, although nghttp2's defaults: CONTINUATION frames per header block
    // (CVE-2024-28182), queued SETTINGS/PING ACKs of a client that does not read.
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    return opt;
  }
};

// Client I/O: through TLS when the connection has it.
template <typename Buffers, typename Handler>
void H2Session::read_some(const Buffers& buffers, Handler&& handler) {
  if (t_.tls) {
    t_.tls->async_read_some(buffers, std::forward<Handler>(handler));
  } else {
    t_.socket.async_read_some(buffers, std::forward<Handler>(handler));
  }
}

template <typename Buffers, typename Handler>
void H2Session::write(const Buffers& buffers, Handler&& handler) {
  if (t_.tls) {
    asio::async_write(*t_.tls, buffers, std::forward<Handler>(handler));
  } else {
    asio::async_write(t_.socket, buffers, std::forward<Handler>(handler));
  }
}

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
  // nghttp2_session_del calls no callback; the streams' exchanges are quiescent (each
  // pending operation held this session).
  if (h2_ != nullptr) nghttp2_session_del(h2_);
  open_.clear();
  retired_.clear();
  if (counted_) w_.counters->connection_closed(connections_series_);
  if (w_.node_connections != nullptr) w_.node_connections->fetch_sub(1, std::memory_order_relaxed);
  if (--w_.sessions == 0 && w_.draining && w_.on_drained) w_.on_drained();
}

bool H2Session::setup() {
  static nghttp2_session_callbacks* const callbacks = H2Callbacks::make();
  static nghttp2_option* const options = H2Callbacks::options();
  if (nghttp2_session_server_new2(&h2_, callbacks, this, options) != 0) return false;
  const auto& limits = snapshot_->config->limits;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                                  limits.max_request_header_bytes, UINT32_MAX))},
      // No RFC 7540 priority tree: closed streams are forgotten at once.
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) {
    return false;
  }
  return nghttp2_session_set_local_window_size(h2_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow) == 0;
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
  if (w_.draining) go_away(NGHTTP2_NO_ERROR, true);
  flush();
  read();
}

// ---------------------------------------------------------------------------------------
// Reading

void H2Session::read() {
  if (reading_ || closed_ || !nghttp2_session_want_read(h2_)) return;
  // A client that does not read what it is sent is not read either: nghttp2 would queue
  // the answers (SETTINGS and PING ACKs, RST_STREAMs) to what it keeps sending.
  if (writing_ && nghttp2_session_want_write(h2_)) return;  // resumed when the write ends
  reading_ = true;
  read_some(asio::buffer(in_.get(), kReadBuffer),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
              self->on_read(ec, n);
            });
}

void H2Session::on_read(boost::system::error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
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
}

bool H2Session::feed(const std::uint8_t* data, std::size_t n) {
  in_codec_ = true;
  const auto rv = nghttp2_session_mem_recv(h2_, data, n);
  in_codec_ = false;
  if (rv < 0) {
    // A connection error (bad preface, flood, too many CONTINUATION frames...): nghttp2
    // queued a GOAWAY where the protocol has one; send it and close.
    log::debug("listener ", *listener_name_, ": HTTP/2 connection from ", t_.peer_text,
               " failed: ", nghttp2_strerror(static_cast<int>(rv)));
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      close();
      return false;
    }
    go_away(rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM
                                                     : NGHTTP2_PROTOCOL_ERROR,
            false);
    return false;
  }
  return !closed_;
}

// ---------------------------------------------------------------------------------------
// Writing

void H2Session::flush() {
  if (closed_ || h2_ == nullptr) return;
  if (in_codec_ || flushing_ || writing_) {
    flush_again_ = true;  // picked up when the current call or write returns
    return;
  }
  flushing_ = true;
  out_.clear();
  do {
    flush_again_ = false;
    run_acks();
    while (out_.size() < kWriteBatch) {
      const std::uint8_t* data = nullptr;
      const auto n = nghttp2_session_mem_send(h2_, &data);
      if (n < 0) {
        log::debug("listener ", *listener_name_, ": HTTP/2 send to ", t_.peer_text,
                   " failed: ", nghttp2_strerror(static_cast<int>(n)));
        flushing_ = false;
        close();
        return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
  } while ((flush_again_ || !acks_.empty()) && out_.size() < kWriteBatch && !closed_);
  flushing_ = false;
  if (closed_) return;
  if (!out_.empty()) {
    writing_ = true;
    write_since_ = net::Clock::now();
    write(asio::buffer(out_),
          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            self->writing_ = false;
            if (self->closed_) return;
            if (ec) {
              self->close();
              return;
            }
            self->reap_retired();
            self->flush();
            self->read();
          });
    return;
  }
  if (!nghttp2_session_want_read(h2_) && !nghttp2_session_want_write(h2_)) close();
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
  if (closed_ || h2_ == nullptr) return;
  if (graceful) {
    if (going_away_) return;
    nghttp2_submit_goaway(h2_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
  } else {
    nghttp2_session_terminate_session(h2_, error_code);
  }
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
  go_away(NGHTTP2_ENHANCE_YOUR_CALM, false);
}

void H2Session::linger_close() {
  // As HTTP/1.1's lingering close: what the client sent after our last frame (a
  // WINDOW_UPDATE, a request racing the GOAWAY) must not make our close a reset, which could
  // destroy the GOAWAY or the last response on their way. Send our end, then read and
  // discard until the client closes or kLingerTime passes.
  if (closed_ || lingering_) return;
  lingering_ = true;
  expires_at(net::Clock::now() + kLingerTime);
  if (t_.tls && !reading_) {
    t_.tls->async_shutdown([self = shared_from_this()](boost::system::error_code) {
      self->close();  // close_notify answered, or the linger deadline closed the socket
    });
    return;
  }
  boost::system::error_code ec;
  (t_.tls ? t_.tls->next_layer() : t_.socket).shutdown(asio::socket_base::shutdown_send, ec);
  if (ec) {
    close();
    return;
  }
  linger_read();
}

void H2Session::linger_read() {
  if (reading_) return;  // the pending read comes back to on_read, which sees lingering_
  reading_ = true;
  read_some(asio::buffer(in_.get(), kReadBuffer),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
              self->on_read(ec, n);
            });
}

void H2Session::close() {
  if (closed_) return;
  closed_ = true;
  clear();
  // The streams end with the connection: exchanges are aborted, unanswered requests are
  // logged 499 (as nginx logs a client that left).
  for (auto& s : open_) {
    s->on_closed(NGHTTP2_CANCEL);
    retired_.push_back(std::move(s));
  }
  open_.clear();
  acks_.clear();
  boost::system::error_code ignored;
  if (t_.tls) {
    t_.tls->next_layer().close(ignored);
  } else {
    t_.socket.close(ignored);
  }
}

// ---------------------------------------------------------------------------------------
// Streams

H2Stream* H2Session::stream(std::int32_t id) {
  if (h2_ == nullptr) return nullptr;
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(h2_, id));
}

void H2Session::on_stream_begin(std::int32_t id) {
  // Streams whose exchange still winds down count too: resetting streams buys no more
  // concurrent upstream work than the limit.
  if (open_.size() + retired_.size() >= 2 * kMaxConcurrentStreams) {
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    glitch();
    return;
  }
  refresh_snapshot();
  auto s = std::make_unique<H2Stream>(*this, id);
  nghttp2_session_set_stream_user_data(h2_, id, s.get());
  open_.push_back(std::move(s));
  if (listener_removed_) go_away(NGHTTP2_NO_ERROR, true);  // this stream is still served
}

void H2Session::on_stream_closed(std::int32_t id, std::uint32_t error_code) {
  auto* s = stream(id);
  if (s == nullptr) return;
  s->on_closed(error_code);
  nghttp2_session_set_stream_user_data(h2_, id, nullptr);
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
  if (listener_removed_) go_away(NGHTTP2_NO_ERROR, true);
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
  const bool first = nghttp2_session_get_last_proc_stream_id(h2_) == 0;
  if (open_.empty() && now - idle_since_ >= (first ? limits.header_timeout : limits.idle_timeout)) {
    go_away(NGHTTP2_NO_ERROR, true);  // idle_timeout: no stream is open
  }
  if (going_away_ && open_.empty() && !writing_) {
    linger_close();  // the GOAWAY went out: nothing is left to serve
    return;
  }
  arm();
}

void H2Session::on_drain() {
  go_away(NGHTTP2_NO_ERROR, true);
}

}  // namespace meridian::proxy
