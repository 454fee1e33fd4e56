#include "meridian/http/h2/server_codec.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "http/h2/request_fields.hpp"

namespace meridian::http::h2 {

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::uint32_t kMaxFrame = 16384;  // our SETTINGS_MAX_FRAME_SIZE (the default)
constexpr std::uint32_t kDefaultWindow = 65535;
constexpr std::int64_t kMaxWindow = 0x7fffffff;
// DATA payload per frame: the default frame size; larger frames gain nothing on a socket.
constexpr std::size_t kDataChunk = 16384;
// Control frames we owe a client that does not read (SETTINGS and PING ACKs, RST_STREAMs):
// past this many the connection is closed (nghttp2's default, and its name for it).
constexpr std::uint32_t kMaxQueuedAcks = 1000;
constexpr std::uint8_t kMaxContinuations = 8;  // per header block (CVE-2024-28182)

enum FrameType : std::uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum Flag : std::uint8_t {
  kEndStream = 0x1,
  kAck = 0x1,
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};
constexpr std::uint32_t kCompressionError = 0x9;

std::uint32_t read32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
std::uint32_t read31(const std::uint8_t* p) {
  return read32(p) & 0x7fffffff;
}

void put_frame_header(char* p, std::size_t length, std::uint8_t type, std::uint8_t flags,
                      std::int32_t id) {
  p[0] = static_cast<char>(length >> 16);
  p[1] = static_cast<char>(length >> 8);
  p[2] = static_cast<char>(length);
  p[3] = static_cast<char>(type);
  p[4] = static_cast<char>(flags);
  const auto u = static_cast<std::uint32_t>(id);
  p[5] = static_cast<char>(u >> 24);
  p[6] = static_cast<char>(u >> 16);
  p[7] = static_cast<char>(u >> 8);
  p[8] = static_cast<char>(u);
}

void append_frame_header(std::string& out, std::size_t length, std::uint8_t type,
                         std::uint8_t flags, std::int32_t id) {
  char h[9];
  put_frame_header(h, length, type, flags, id);
  out.append(h, 9);
}

std::string u32(std::uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace

ServerCodec::ServerCodec(Events& events, const Settings& settings)
    : events_(events),
      settings_(settings),
      list_cap_(settings.max_header_list != 0 ? 2ull * settings.max_header_list : 1u << 20) {
  // Our SETTINGS first (3.4), then the connection window beyond the default.
  std::string payload;
  const auto setting = [&](std::uint16_t id, std::uint32_t value) {
    payload.push_back(static_cast<char>(id >> 8));
    payload.push_back(static_cast<char>(id));
    payload.append(u32(value));
  };
  setting(0x3, settings.max_concurrent_streams);                     // MAX_CONCURRENT_STREAMS
  setting(0x4, static_cast<std::uint32_t>(settings.stream_window));  // INITIAL_WINDOW_SIZE
  if (settings.max_header_list != 0) setting(0x6, settings.max_header_list);
  setting(0x9, 1);  // NO_RFC7540_PRIORITIES
  queue_frame(kSettings, 0, 0, payload);
  if (settings.connection_window > static_cast<std::int32_t>(kDefaultWindow)) {
    queue_window_update(0, static_cast<std::uint32_t>(settings.connection_window) - kDefaultWindow);
    recv_window_ = settings.connection_window;
  }
}

// ---------------------------------------------------------------------------------------
// Streams

ServerCodec::Stream* ServerCodec::find(std::int32_t id) {
  // Ids ascend (streams are opened in order and removed from anywhere).
  const auto it = std::lower_bound(streams_.begin(), streams_.end(), id,
                                   [](const Stream& s, std::int32_t v) { return s.id < v; });
  return it != streams_.end() && it->id == id ? &*it : nullptr;
}

const ServerCodec::Stream* ServerCodec::find(std::int32_t id) const {
  return const_cast<ServerCodec*>(this)->find(id);
}

void ServerCodec::close_stream(Stream* s, std::uint32_t code) {
  const std::int32_t id = s->id;
  void* user = s->user;
  history_.closed |= history_.bit(id);
  const auto index = static_cast<std::size_t>(s - streams_.data());
  streams_.erase(streams_.begin() + static_cast<std::ptrdiff_t>(index));
  if (next_data_ > index) --next_data_;
  if (user != nullptr) events_.on_stream_closed(user, code);
}

void ServerCodec::set_user(std::int32_t id, void* user) {
  if (Stream* s = find(id)) s->user = user;
}

void* ServerCodec::user(std::int32_t id) const {
  const Stream* s = find(id);
  return s != nullptr ? s->user : nullptr;
}

void ServerCodec::History::open(std::int32_t id) {
  if (id <= max) return;
  const auto shift = static_cast<std::uint32_t>(id - max) / 2;
  for (auto* b : {&opened, &closed, &reset_by_us, &reset_by_peer}) {
    *b = shift >= 64 ? 0 : *b << shift;
  }
  max = id;
  opened |= 1;
}

// ---------------------------------------------------------------------------------------
// Input

Feed ServerCodec::feed(const std::uint8_t* data, std::size_t n) {
  while (n > 0 && !terminating_) {
    switch (phase_) {
      case Phase::preface: {
        const std::size_t k = std::min<std::size_t>(n, kPreface.size() - preface_seen_);
        if (std::memcmp(data, kPreface.data() + preface_seen_, k) != 0) {
          error_ = "not the HTTP/2 client preface";
          return Feed::close;
        }
        preface_seen_ += static_cast<std::uint32_t>(k);
        data += k;
        n -= k;
        if (preface_seen_ == kPreface.size()) phase_ = Phase::header;
        break;
      }
      case Phase::header: {
        const std::size_t k = std::min<std::size_t>(n, 9 - header_length_);
        std::memcpy(header_ + header_length_, data, k);
        header_length_ = static_cast<std::uint8_t>(header_length_ + k);
        data += k;
        n -= k;
        if (header_length_ < 9) return Feed::ok;
        header_length_ = 0;
        if (const Feed r = on_frame_header(); r != Feed::ok) return r;
        break;
      }
      case Phase::skip: {
        const std::size_t k = std::min<std::size_t>(n, length_ - payload_seen_);
        payload_seen_ += static_cast<std::uint32_t>(k);
        data += k;
        n -= k;
        if (payload_seen_ == length_) phase_ = Phase::header;
        break;
      }
      case Phase::payload: {
        if (type_ == kData) {
          if (pad_length_pending_) {
            pad_length_pending_ = false;
            pad_left_ = *data++;
            --n;
            ++payload_seen_;
            if (pad_left_ >= length_) {
              return connection_error(kProtocolError, "DATA padding longer than the frame");
            }
            if (data_stream_ != 0) consume(data_stream_, 1 + pad_left_);  // padding is free
          }
          // The body ends where the padding begins; a read may end anywhere in either.
          const std::uint32_t content_end = length_ - pad_left_;
          if (payload_seen_ < content_end && n > 0) {
            const auto k =
                static_cast<std::uint32_t>(std::min<std::size_t>(n, content_end - payload_seen_));
            if (const Feed r = on_data_chunk(data, k); r != Feed::ok) return r;
            data += k;
            n -= k;
            payload_seen_ += k;
          }
          if (payload_seen_ >= content_end) {
            const std::size_t k = std::min<std::size_t>(n, length_ - payload_seen_);
            data += k;
            n -= k;
            payload_seen_ += static_cast<std::uint32_t>(k);
          }
          if (payload_seen_ == length_) {
            phase_ = Phase::header;
            if (const Feed r = on_data_end(); r != Feed::ok) return r;
          }
          break;
        }
        const std::uint32_t left = length_ - payload_seen_;
        if (payload_.empty() && n >= left) {
          phase_ = Phase::header;
          const Feed r = on_frame(data, left);
          data += left;
          n -= left;
          if (r != Feed::ok) return r;
          break;
        }
        const std::size_t k = std::min<std::size_t>(n, left);
        payload_.append(reinterpret_cast<const char*>(data), k);
        payload_seen_ += static_cast<std::uint32_t>(k);
        data += k;
        n -= k;
        if (payload_seen_ == length_) {
          phase_ = Phase::header;
          const Feed r =
              on_frame(reinterpret_cast<const std::uint8_t*>(payload_.data()), payload_.size());
          payload_.clear();
          if (r != Feed::ok) return r;
        }
        break;
      }
    }
  }
  if (acks_queued_ > kMaxQueuedAcks) {
    error_ = "flooded: the client sends control frames faster than it reads our answers";
    return Feed::close;
  }
  return Feed::ok;
}

Feed ServerCodec::connection_error(std::uint32_t code, std::string_view why) {
  error_ = why;
  go_away(code, false);
  return Feed::goaway;
}

void ServerCodec::stream_error(std::int32_t id, std::uint32_t code) {
  events_.on_glitch();
  reset(id, code);
}

Feed ServerCodec::on_frame_header() {
  length_ = std::uint32_t{header_[0]} << 16 | std::uint32_t{header_[1]} << 8 | header_[2];
  type_ = header_[3];
  flags_ = header_[4];
  id_ = static_cast<std::int32_t>(read31(header_ + 5));
  payload_seen_ = 0;
  if (length_ > kMaxFrame) {
    return connection_error(kFrameSizeError, "frame larger than SETTINGS_MAX_FRAME_SIZE");
  }
  if (!settings_seen_) {
    if (type_ != kSettings || (flags_ & kAck) != 0) {
      return connection_error(kProtocolError, "the client's first frame is not SETTINGS");
    }
    settings_seen_ = true;
  }
  if (block_expected_ && (type_ != kContinuation || id_ != block_stream_)) {
    return connection_error(kProtocolError, "header block interrupted by another frame");
  }
  switch (type_) {
    case kData:
      if (const Feed r = on_data_start(); r != Feed::ok) return r;
      if (length_ == 0) return on_data_end();
      phase_ = Phase::payload;
      return Feed::ok;
    case kHeaders:
      if (id_ == 0 || (id_ & 1) == 0) {
        return connection_error(kProtocolError, "HEADERS on stream 0 or an even stream");
      }
      break;
    case kPriority:
      if (id_ == 0) return connection_error(kProtocolError, "PRIORITY frame on stream 0");
      if (length_ != 5) {
        // 6.3: a stream error, but an idle stream cannot be reset (5.1).
        if (id_ > history_.max)
          return connection_error(kFrameSizeError, "PRIORITY of a wrong size");
        stream_error(id_, kFrameSizeError);
        phase_ = Phase::skip;
        return Feed::ok;
      }
      break;
    case kRstStream:
      if (id_ == 0) return connection_error(kProtocolError, "RST_STREAM on stream 0");
      if (length_ != 4) return connection_error(kFrameSizeError, "RST_STREAM of a wrong size");
      if (id_ > history_.max || (id_ & 1) == 0) {
        return connection_error(kProtocolError, "RST_STREAM on an idle stream");
      }
      break;
    case kSettings:
      if (id_ != 0) return connection_error(kProtocolError, "SETTINGS on a stream");
      if ((flags_ & kAck) != 0 ? length_ != 0 : length_ % 6 != 0) {
        return connection_error(kFrameSizeError, "SETTINGS of a wrong size");
      }
      break;
    case kPushPromise:
      return connection_error(kProtocolError, "PUSH_PROMISE from a client");
    case kPing:
      if (id_ != 0) return connection_error(kProtocolError, "PING on a stream");
      if (length_ != 8) return connection_error(kFrameSizeError, "PING of a wrong size");
      break;
    case kGoaway:
      if (id_ != 0) return connection_error(kProtocolError, "GOAWAY on a stream");
      if (length_ < 8) return connection_error(kFrameSizeError, "GOAWAY too short");
      break;
    case kWindowUpdate:
      if (length_ != 4) return connection_error(kFrameSizeError, "WINDOW_UPDATE of a wrong size");
      if (id_ != 0 && (id_ > history_.max || (id_ & 1) == 0)) {
        return connection_error(kProtocolError, "WINDOW_UPDATE on an idle stream");
      }
      break;
    case kContinuation:
      if (!block_expected_) {
        return connection_error(kProtocolError, "CONTINUATION without a header block");
      }
      break;
    default:  // unknown frame types are ignored (5.5)
      phase_ = length_ == 0 ? Phase::header : Phase::skip;
      return Feed::ok;
  }
  if (length_ == 0) return on_frame(nullptr, 0);
  phase_ = Phase::payload;
  return Feed::ok;
}

Feed ServerCodec::on_frame(const std::uint8_t* payload, std::size_t n) {
  switch (type_) {
    case kHeaders:
      return on_headers(payload, n);
    case kContinuation:
      return on_continuation(payload, n);
    case kPriority:
      return on_priority(payload, n);
    case kRstStream:
      return on_rst_stream(payload, n);
    case kSettings:
      return on_settings(payload, n);
    case kPing:
      return on_ping(payload, n);
    case kGoaway:
      goaway_received_ = true;
      events_.on_goaway(static_cast<std::int32_t>(read31(payload)), read32(payload + 4));
      return Feed::ok;
    case kWindowUpdate:
      return on_window_update(payload, n);
    default:
      return Feed::ok;
  }
}

// -- DATA

Feed ServerCodec::on_data_start() {
  if (id_ == 0) return connection_error(kProtocolError, "DATA on stream 0");
  if (id_ > history_.max || (id_ & 1) == 0) {
    return connection_error(kProtocolError, "DATA on an idle stream");
  }
  // The connection window counts every DATA frame, whatever becomes of it (6.9).
  if (static_cast<std::int64_t>(length_) > recv_window_) {
    return connection_error(kFlowControlError, "DATA beyond the connection window");
  }
  recv_window_ -= static_cast<std::int32_t>(length_);
  data_stream_ = 0;
  pad_left_ = 0;
  pad_length_pending_ = (flags_ & kPadded) != 0;
  if (pad_length_pending_ && length_ == 0) {
    return connection_error(kFrameSizeError, "padded DATA without a pad length");
  }
  if (length_ == 0 && (flags_ & kEndStream) == 0) events_.on_glitch();  // CVE-2019-9518
  Stream* s = find(id_);
  if (s == nullptr) {
    const std::uint64_t bit = history_.bit(id_);
    if (bit != 0 && (history_.reset_by_us & bit) == 0) {
      if ((history_.opened & bit) == 0) {
        return connection_error(kStreamClosed, "frame on a lower stream id that was never opened");
      }
      if ((history_.reset_by_peer & bit) != 0) {
        stream_error(id_, kStreamClosed);  // after the client's RST_STREAM (5.1)
      } else if ((history_.closed & bit) != 0) {
        return connection_error(kStreamClosed, "frame on a closed stream");
      }
    }
    consume_connection(length_);  // older, reset by us, or never served: ignored
    return Feed::ok;
  }
  if (s->resetting || s->invalid) {
    consume_connection(length_);
    return Feed::ok;
  }
  if (s->remote_closed) {
    consume_connection(length_);
    stream_error(id_, kStreamClosed);  // half-closed (remote) (5.1)
    return Feed::ok;
  }
  if (static_cast<std::int64_t>(length_) > s->recv_window) {
    consume_connection(length_);
    stream_error(id_, kFlowControlError);
    return Feed::ok;
  }
  s->recv_window -= static_cast<std::int32_t>(length_);
  data_stream_ = id_;
  return Feed::ok;
}

Feed ServerCodec::on_data_chunk(const std::uint8_t* p, std::size_t n) {
  Stream* s = data_stream_ != 0 ? find(data_stream_) : nullptr;
  if (s == nullptr || s->resetting || s->user == nullptr) {
    if (data_stream_ != 0) consume_connection(n);
    return Feed::ok;
  }
  s->received += n;
  if (s->content_length >= 0 && s->received > static_cast<std::uint64_t>(s->content_length)) {
    consume_connection(n);
    stream_error(s->id, kProtocolError);  // more DATA than content-length (8.1.1)
    return Feed::ok;
  }
  events_.on_data(s->user, p, n);
  return Feed::ok;
}

Feed ServerCodec::on_data_end() {
  if (data_stream_ == 0 || (flags_ & kEndStream) == 0) return Feed::ok;
  Stream* s = find(data_stream_);
  if (s == nullptr || s->resetting) return Feed::ok;
  if (s->content_length >= 0 && s->received != static_cast<std::uint64_t>(s->content_length)) {
    stream_error(s->id, kProtocolError);  // less DATA than content-length (8.1.1)
    return Feed::ok;
  }
  s->remote_closed = true;
  const std::int32_t id = s->id;
  if (s->user != nullptr) events_.on_end_stream(s->user);
  s = find(id);
  if (s != nullptr && s->local_closed && !s->resetting) close_stream(s, kNoError);
  return Feed::ok;
}

// -- header blocks

Feed ServerCodec::on_headers(const std::uint8_t* p, std::size_t n) {
  std::size_t pad = 0;
  if ((flags_ & kPadded) != 0) {
    if (n < 1) return connection_error(kFrameSizeError, "padded HEADERS without a pad length");
    pad = *p++;
    --n;
  }
  if ((flags_ & kPriorityFlag) != 0) {
    if (n < 5) return connection_error(kFrameSizeError, "HEADERS too short for its priority");
    if (static_cast<std::int32_t>(read31(p)) == id_) {
      // 5.3.1; nghttp2 made this a connection error too, and the stream was never served.
      return connection_error(kProtocolError, "stream depends on itself");
    }
    p += 5;
    n -= 5;
  }
  if (pad > n) return connection_error(kProtocolError, "HEADERS padding longer than the frame");
  n -= pad;
  block_stream_ = id_;
  block_flags_ = flags_;
  continuations_ = 0;
  if ((flags_ & kEndHeaders) == 0) {
    block_.assign(reinterpret_cast<const char*>(p), n);
    block_expected_ = true;
    return Feed::ok;
  }
  return on_header_block(p, n);
}

Feed ServerCodec::on_continuation(const std::uint8_t* p, std::size_t n) {
  if (++continuations_ > kMaxContinuations) {
    error_ = "too many CONTINUATION frames";
    go_away(kEnhanceYourCalm, false);
    return Feed::goaway;
  }
  block_.append(reinterpret_cast<const char*>(p), n);
  if ((flags_ & kEndHeaders) == 0) return Feed::ok;
  block_expected_ = false;
  const Feed r =
      on_header_block(reinterpret_cast<const std::uint8_t*>(block_.data()), block_.size());
  block_.clear();
  return r;
}

Feed ServerCodec::on_header_block(const std::uint8_t* p, std::size_t n) {
  const std::int32_t id = block_stream_;
  const bool end_stream = (block_flags_ & kEndStream) != 0;
  Stream* s = find(id);
  Stream* target = nullptr;
  if (s == nullptr && id > history_.max) {
    history_.open(id);  // a new stream; the idle ones below it are closed (5.1.1)
    if (goaway_sent_) {
      // Not served after our GOAWAY: the client retries it elsewhere. Decoded for the table.
    } else if (streams_.size() >= settings_.max_concurrent_streams) {
      stream_error(id, kRefusedStream);  // 5.1.2
    } else {
      Stream fresh;
      fresh.id = id;
      fresh.send_window = peer_initial_window_;
      // Until our SETTINGS are acknowledged the client may go by the default window.
      fresh.recv_window = settings_acked_
                              ? settings_.stream_window
                              : std::max<std::int32_t>(settings_.stream_window, kDefaultWindow);
      streams_.push_back(fresh);
      last_opened_ = id;
      if (!events_.on_stream_open(id)) reset(id, kRefusedStream);
      target = find(id);
    }
  } else if (s == nullptr) {
    const std::uint64_t bit = history_.bit(id);
    if (bit != 0 && (history_.reset_by_us & bit) == 0) {
      if ((history_.opened & bit) == 0) {
        return connection_error(kProtocolError, "frame on a lower stream id that was never opened");
      }
      if ((history_.reset_by_peer & bit) != 0) {
        stream_error(id, kStreamClosed);
      } else if ((history_.closed & bit) != 0) {
        return connection_error(kStreamClosed, "frame on a closed stream");
      }
    }
  } else if (s->remote_closed) {
    stream_error(id, kStreamClosed);  // half-closed (remote) (5.1)
  } else if (!s->resetting && !s->invalid) {
    if (!end_stream) {
      stream_error(id, kProtocolError);  // trailers must end the stream (8.1)
    } else {
      s->trailers = true;
      s->list_bytes = 0;
      s->oversized = false;
      target = s;
    }
  }
  if (target != nullptr && (target->resetting || target->user == nullptr)) target = nullptr;
  decoding_ = target;
  const bool decoded = decoder_.decode(p, n, *this);
  decoding_ = nullptr;
  if (!decoded) return connection_error(kCompressionError, "header block could not be decoded");
  if (target == nullptr) return Feed::ok;
  s = find(id);
  if (s == nullptr || s->resetting) return Feed::ok;
  const bool trailers = s->trailers;
  if (s->invalid || !(trailers ? check_trailer_block(*s) : end_of_request_block(*s, end_stream))) {
    stream_error(id, kProtocolError);  // a malformed request (8.1.1)
    return Feed::ok;
  }
  if (end_stream) s->remote_closed = true;
  events_.on_block_end(s->user, trailers ? Block::trailers : Block::request, end_stream);
  // Trailers after our whole answer went out: both ends are closed now.
  if (end_stream && (s = find(id)) != nullptr && s->local_closed && !s->resetting) {
    close_stream(s, kNoError);
  }
  return Feed::ok;
}

void ServerCodec::on_decoded(std::string_view name, std::string_view value) {
  Stream* s = decoding_;
  if (s == nullptr || s->invalid || s->resetting || s->user == nullptr || s->oversized) return;
  s->list_bytes += static_cast<std::uint32_t>(std::min<std::size_t>(
      name.size() + value.size() + 32, list_cap_ + 1));  // no wrap: capped each time
  if (s->list_bytes > list_cap_) {
    s->oversized = true;
    events_.on_glitch();
    return;
  }
  if (!accept_field(*s, name, value)) {
    s->invalid = true;
    return;
  }
  events_.on_field(s->user, s->trailers ? Block::trailers : Block::request, name, value);
}

RequestFieldCheck ServerCodec::field_check(Stream& s) {
  return RequestFieldCheck{s.pseudo,         s.regular_seen,  s.content_length,
                           s.method_options, s.path_asterisk, s.connect};
}

bool ServerCodec::accept_field(Stream& s, std::string_view name, std::string_view value) {
  return s.trailers ? field_check(s).trailer(name, value) : field_check(s).field(name, value);
}

bool ServerCodec::end_of_request_block(Stream& s, bool end_stream) {
  if (!field_check(s).complete()) return false;
  // END_STREAM on the HEADERS: no body, so a content-length above zero is a lie (8.1.1).
  return !(end_stream && s.content_length > 0);
}

bool ServerCodec::check_trailer_block(Stream& s) {
  return s.content_length < 0 || s.received == static_cast<std::uint64_t>(s.content_length);
}

// -- other frames

Feed ServerCodec::on_priority(const std::uint8_t* p, std::size_t) {
  events_.on_glitch();
  if (static_cast<std::int32_t>(read31(p)) != id_) return Feed::ok;
  // A stream cannot depend on itself (5.3.1): a stream error, but an idle stream cannot be
  // reset (RST_STREAM is not sent on idle streams), so there the connection ends.
  if (id_ > history_.max) return connection_error(kProtocolError, "stream depends on itself");
  reset(id_, kProtocolError);
  return Feed::ok;
}

Feed ServerCodec::on_rst_stream(const std::uint8_t* p, std::size_t) {
  const std::uint32_t code = read32(p);
  history_.reset_by_peer |= history_.bit(id_);
  Stream* s = find(id_);
  if (s == nullptr) return Feed::ok;
  if (s->user != nullptr) events_.on_peer_reset(s->user, code);
  if ((s = find(id_)) != nullptr) close_stream(s, code);
  return Feed::ok;
}

Feed ServerCodec::on_settings(const std::uint8_t* p, std::size_t n) {
  if ((flags_ & kAck) != 0) {
    settings_acked_ = true;
    return Feed::ok;
  }
  for (; n >= 6; p += 6, n -= 6) {
    const std::uint16_t id = static_cast<std::uint16_t>(p[0] << 8 | p[1]);
    const std::uint32_t value = read32(p + 2);
    switch (id) {
      case 0x2:  // ENABLE_PUSH
      case 0x8:  // ENABLE_CONNECT_PROTOCOL
      case 0x9:  // NO_RFC7540_PRIORITIES
        if (value > 1) return connection_error(kProtocolError, "SETTINGS value out of range");
        break;
      case 0x4: {  // INITIAL_WINDOW_SIZE: every stream's window moves by the change (6.9.2)
        if (value > kMaxWindow) {
          return connection_error(kFlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE too large");
        }
        const std::int64_t delta = static_cast<std::int64_t>(value) - peer_initial_window_;
        for (auto& s : streams_) {
          s.send_window += delta;
          if (s.send_window > kMaxWindow) {
            return connection_error(kFlowControlError, "stream window beyond 2^31-1");
          }
        }
        peer_initial_window_ = value;
        break;
      }
      case 0x5:  // MAX_FRAME_SIZE
        if (value < 16384 || value > 16777215) {
          return connection_error(kProtocolError, "SETTINGS_MAX_FRAME_SIZE out of range");
        }
        peer_max_frame_ = value;
        break;
      case 0x1:  // HEADER_TABLE_SIZE: we never index, but say so (see queue_headers)
        table_size_update_ = true;
        break;
      default:  // MAX_CONCURRENT_STREAMS (we never push), MAX_HEADER_LIST_SIZE, unknown
        break;  // settings (ignored, 6.5.2)
    }
  }
  queue_frame(kSettings, kAck, 0, {});
  ++acks_queued_;
  events_.on_glitch();
  events_.on_settings();
  return Feed::ok;
}

Feed ServerCodec::on_ping(const std::uint8_t* p, std::size_t n) {
  if ((flags_ & kAck) != 0) return Feed::ok;
  queue_frame(kPing, kAck, 0, std::string_view(reinterpret_cast<const char*>(p), n));
  ++acks_queued_;
  events_.on_glitch();
  return Feed::ok;
}

Feed ServerCodec::on_window_update(const std::uint8_t* p, std::size_t) {
  const std::uint32_t increment = read31(p);
  if (id_ == 0) {
    if (increment == 0) return connection_error(kProtocolError, "WINDOW_UPDATE of 0");
    send_window_ += increment;
    if (send_window_ > kMaxWindow) {
      return connection_error(kFlowControlError, "connection window beyond 2^31-1");
    }
    return Feed::ok;
  }
  Stream* s = find(id_);
  if (s == nullptr || s->resetting) return Feed::ok;  // closed: frames may be in flight
  if (increment == 0) {
    stream_error(id_, kProtocolError);
    return Feed::ok;
  }
  s->send_window += increment;
  if (s->send_window > kMaxWindow) stream_error(id_, kFlowControlError);
  return Feed::ok;
}

// ---------------------------------------------------------------------------------------
// Output

void ServerCodec::queue_frame(std::uint8_t type, std::uint8_t flags, std::int32_t id,
                              std::string_view payload) {
  append_frame_header(queue_, payload.size(), type, flags, id);
  queue_.append(payload);
}

void ServerCodec::queue_window_update(std::int32_t id, std::uint32_t increment) {
  queue_frame(kWindowUpdate, 0, id, u32(increment));
}

bool ServerCodec::queue_headers(std::int32_t id, const FieldBlock& fields, bool end_stream) {
  const std::size_t start = queue_.size();
  queue_.resize(start + 9);
  if (table_size_update_) {
    // The client changed the table size: a decoder may insist on a size update at the start
    // of the next block (RFC 7541 4.2; nghttp2's does when the size shrinks). Ours is 0:
    // always within the setting, and true, since we never index.
    table_size_update_ = false;
    queue_.push_back(0x20);
  }
  hpack_encode(fields, queue_);
  const std::size_t block = queue_.size() - start - 9;
  const auto end = static_cast<std::uint8_t>(end_stream ? kEndStream : 0);
  if (block <= peer_max_frame_) {
    put_frame_header(queue_.data() + start, block, kHeaders, kEndHeaders | end, id);
  } else {
    // Larger than a frame: HEADERS and CONTINUATION frames (6.10).
    const std::string encoded = queue_.substr(start + 9);
    queue_.resize(start);
    std::size_t at = 0;
    while (at < encoded.size()) {
      const std::size_t k = std::min<std::size_t>(encoded.size() - at, peer_max_frame_);
      const bool last = at + k == encoded.size();
      append_frame_header(queue_, k, at == 0 ? kHeaders : kContinuation,
                          static_cast<std::uint8_t>((at == 0 ? end : 0) | (last ? kEndHeaders : 0)),
                          id);
      queue_.append(encoded, at, k);
      at += k;
    }
  }
  if (end_stream) after_write_.push_back(AfterWrite{id, false, 0});
  return true;
}

bool ServerCodec::submit_response(std::int32_t id, const FieldBlock& fields, bool has_body) {
  Stream* s = find(id);
  if (s == nullptr || s->resetting || s->headers_sent) return false;
  s->headers_sent = true;
  s->has_body = has_body;
  s->deferred = false;
  return queue_headers(id, fields, !has_body);
}

bool ServerCodec::submit_informational(std::int32_t id, const FieldBlock& fields) {
  Stream* s = find(id);
  if (s == nullptr || s->resetting || s->headers_sent) return false;
  return queue_headers(id, fields, false);
}

bool ServerCodec::submit_trailers(std::int32_t id, const FieldBlock& fields) {
  Stream* s = find(id);
  if (s == nullptr || s->resetting || !s->headers_sent) return false;
  return queue_headers(id, fields, true);
}

void ServerCodec::reset(std::int32_t id, std::uint32_t error_code) {
  Stream* s = find(id);
  if (s != nullptr && s->resetting) return;
  history_.reset_by_us |= history_.bit(id);
  queue_frame(kRstStream, 0, id, u32(error_code));
  ++acks_queued_;
  if (s != nullptr) {
    s->resetting = true;
    after_write_.push_back(AfterWrite{id, true, error_code});
  }
}

void ServerCodec::resume(std::int32_t id) {
  if (Stream* s = find(id)) s->deferred = false;
}

void ServerCodec::consume(std::int32_t id, std::size_t n) {
  consume_connection(n);
  consume_stream(id, n);
}

void ServerCodec::consume_connection(std::size_t n) {
  // A WINDOW_UPDATE once half the window is taken and given back (as nghttp2 does).
  recv_unacked_ += static_cast<std::uint32_t>(n);
  if (recv_unacked_ < static_cast<std::uint32_t>(settings_.connection_window) / 2) return;
  queue_window_update(0, recv_unacked_);
  recv_window_ += static_cast<std::int32_t>(recv_unacked_);
  recv_unacked_ = 0;
}

void ServerCodec::consume_stream(std::int32_t id, std::size_t n) {
  Stream* s = find(id);
  if (s == nullptr || s->remote_closed || s->resetting) return;  // no more DATA to let in
  s->unacked += static_cast<std::uint32_t>(n);
  if (s->unacked < static_cast<std::uint32_t>(settings_.stream_window) / 2) return;
  queue_window_update(id, s->unacked);
  s->recv_window += static_cast<std::int32_t>(s->unacked);
  s->unacked = 0;
}

void ServerCodec::go_away(std::uint32_t error_code, bool graceful) {
  if (terminating_ || (graceful && goaway_sent_)) return;
  queue_frame(kGoaway, 0, 0, u32(static_cast<std::uint32_t>(last_opened_)) + u32(error_code));
  goaway_sent_ = true;
  if (!graceful) terminating_ = true;
}

bool ServerCodec::data_ready(const Stream& s) const {
  return s.has_body && s.headers_sent && !s.deferred && !s.resetting && !s.local_closed &&
         s.user != nullptr && s.send_window > 0;
}

void ServerCodec::after_write() {
  // Our END_STREAMs and RST_STREAMs written so far are out: the owner hears of them. What it
  // queues meanwhile (a RST_STREAM after a complete response, say) waits for its own write.
  std::vector<AfterWrite> done;
  done.swap(after_write_);
  for (const auto& w : done) {
    Stream* s = find(w.id);
    if (s == nullptr) continue;
    if (w.reset) {
      close_stream(s, w.code);
      continue;
    }
    s->local_closed = true;
    if (s->user != nullptr) events_.on_sent_end(s->user);
    if ((s = find(w.id)) != nullptr && s->remote_closed && !s->resetting) {
      close_stream(s, kNoError);
    }
  }
  if (after_write_.empty()) {
    done.clear();
    after_write_.swap(done);  // keeps the capacity
  }
}

bool ServerCodec::produce_data(std::string& out) {
  if (send_window_ <= 0) return false;
  for (std::size_t k = 0; k < streams_.size(); ++k) {
    const std::size_t i = (next_data_ + k) % streams_.size();
    Stream& s = streams_[i];
    if (!data_ready(s)) continue;
    next_data_ = i + 1;
    const std::int32_t id = s.id;
    const std::size_t max = static_cast<std::size_t>(std::min<std::int64_t>(
        {static_cast<std::int64_t>(std::min<std::size_t>(kDataChunk, peer_max_frame_)),
         send_window_, s.send_window}));
    thread_local std::array<std::uint8_t, kDataChunk> buffer;
    const Pull pull = events_.pull(s.user, buffer.data(), max);
    Stream* sp = find(id);  // the owner may have reset it meanwhile
    if (sp == nullptr) continue;
    if (pull.length == 0 && !pull.end) {
      sp->deferred = true;  // resume() brings it back
      continue;
    }
    const bool ends = pull.end && !pull.trailers;
    append_frame_header(out, pull.length, kData, ends ? kEndStream : 0, id);
    out.append(reinterpret_cast<const char*>(buffer.data()), pull.length);
    send_window_ -= static_cast<std::int64_t>(pull.length);
    sp->send_window -= static_cast<std::int64_t>(pull.length);
    if (pull.end) sp->has_body = false;
    if (ends) {
      sp->local_closed = true;
      if (sp->user != nullptr) events_.on_sent_end(sp->user);
      if ((sp = find(id)) != nullptr && sp->remote_closed && !sp->resetting) {
        close_stream(sp, kNoError);
      }
    }
    return true;
  }
  return false;
}

bool ServerCodec::produce(std::string& out, std::size_t limit) {
  while (out.size() < limit && !terminated_) {
    if (!queue_.empty()) {
      if (out.empty()) {
        out.swap(queue_);  // no copy; the two buffers trade capacities
      } else {
        out.append(queue_);
      }
      queue_.clear();
      acks_queued_ = 0;
      after_write();  // responses that went out with a final GOAWAY count as sent too
      if (terminating_) {
        terminated_ = true;  // the GOAWAY is out: nothing more is sent or read
        break;
      }
      continue;
    }
    if (terminating_ || !produce_data(out)) break;
  }
  return true;
}

bool ServerCodec::want_read() const {
  if (terminating_) return false;
  if (!streams_.empty()) return true;
  return !goaway_sent_ && !goaway_received_;
}

bool ServerCodec::want_write() const {
  if (terminated_) return false;
  if (!queue_.empty()) return true;
  if (send_window_ <= 0) return false;
  return std::any_of(streams_.begin(), streams_.end(),
                     [this](const Stream& s) { return data_ready(s); });
}

void ServerCodec::release_idle_memory() {
  if (!streams_.empty() || !queue_.empty()) return;
  std::vector<Stream>().swap(streams_);
  std::vector<AfterWrite>().swap(after_write_);
  std::string().swap(queue_);
  if (!block_expected_) std::string().swap(block_);
  if (phase_ != Phase::payload) std::string().swap(payload_);
  decoder_.shrink();
}

}  // namespace meridian::http::h2
