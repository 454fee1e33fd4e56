#include "meridian/http/h2/codec.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <nghttp2/nghttp2.h>

#include "meridian/core/release_storage.hpp"

namespace meridian::http::h2 {

namespace {

// The block as nghttp2 wants it; nghttp2 copies names and values when it is submitted.
const std::vector<nghttp2_nv>& to_nv(const FieldBlock& fields) {
  thread_local std::vector<nghttp2_nv> nv;
  nv.clear();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto name = fields.name(i);
    const auto value = fields.value(i);
    nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                            reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())),
                            name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

}  // namespace

void FieldBlock::add(std::string_view name, std::string_view value) {
  const auto at = static_cast<std::uint32_t>(store_.size());
  store_.append(name);
  store_.append(value);
  // Lower-cased through a local pointer and length: stores through a char pointer may alias
  // the string's own size and pointer, which a loop over store_[i] would then reload each
  // time round.
  char* const p = store_.data() + at;
  const std::size_t n = name.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] >= 'A' && p[i] <= 'Z') p[i] = static_cast<char>(p[i] + 32);
  }
  entries_.push_back(Entry{at, static_cast<std::uint32_t>(name.size()),
                           static_cast<std::uint32_t>(at + name.size()),
                           static_cast<std::uint32_t>(value.size())});
}

void FieldBlock::trim(std::size_t keep) {
  clear();
  release_storage_over(store_, keep);
  release_storage_over(entries_, keep);
}

void FieldBlock::add(std::string_view name, std::string_view value, std::string_view more) {
  add(name, value);
  store_.append(", ");
  store_.append(more);
  entries_.back().value_length += static_cast<std::uint32_t>(2 + more.size());
}

void FieldBlock::add_number(std::string_view name, std::uint64_t value) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, value);
  add(name, std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

// nghttp2's callbacks: each finds the codec in user_data.
struct CodecCallbacks {
  static ClientCodec& codec(void* user_data) { return *static_cast<ClientCodec*>(user_data); }
  static std::string_view text(const std::uint8_t* p, std::size_t n) {
    return std::string_view(reinterpret_cast<const char*>(p), n);
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& c = codec(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    // A response, or trailers (or a response after a 1xx: on_header tells by :status).
    c.block_ = frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? Block::response : Block::trailers;
    return 0;
  }

  static int on_header(nghttp2_session* s, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_length, const std::uint8_t* value, std::size_t value_length,
                       std::uint8_t, void* user_data) {
    auto& c = codec(user_data);
    void* user = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (user == nullptr) return 0;
    const auto n = text(name, name_length);
    const auto v = text(value, value_length);
    if (n == ":status") {
      // nghttp2 checked the pseudo-field comes first; trailers have none.
      c.block_ = !v.empty() && v.front() == '1' ? Block::informational : Block::response;
    }
    c.events_.on_field(user, c.block_, n, v);
    return 0;
  }

  static int on_frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user_data) {
    auto& c = codec(user_data);
    const auto id = frame->hd.stream_id;
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    void* user = id != 0 ? nghttp2_session_get_stream_user_data(s, id) : nullptr;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (user != nullptr) c.events_.on_block_end(user, c.block_, end_stream);
        return 0;
      case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end_stream) c.events_.on_glitch();  // CVE-2019-9518
        if (user != nullptr && end_stream) c.events_.on_end_stream(user);
        return 0;
      case NGHTTP2_RST_STREAM:
        if (user != nullptr) c.events_.on_peer_reset(user, frame->rst_stream.error_code);
        return 0;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) c.events_.on_glitch();
        return 0;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
          c.events_.on_glitch();
          c.events_.on_settings();
        }
        return 0;
      case NGHTTP2_PRIORITY:
        c.events_.on_glitch();
        return 0;
      case NGHTTP2_GOAWAY:
        c.events_.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        return 0;
      default:
        return 0;
    }
  }

  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* user_data) {
    codec(user_data).events_.on_glitch();
    return 0;
  }

  static int on_data_chunk(nghttp2_session* s, std::uint8_t, std::int32_t id,
                           const std::uint8_t* data, std::size_t length, void* user_data) {
    if (void* user = nghttp2_session_get_stream_user_data(s, id)) {
      codec(user_data).events_.on_data(user, data, length);
    } else {
      nghttp2_session_consume(s, id, length);  // a refused stream's body
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session* s, const nghttp2_frame* frame, void* user_data) {
    auto& c = codec(user_data);
    const auto id = frame->hd.stream_id;
    const bool ends = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (ends && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
      if (void* user = nghttp2_session_get_stream_user_data(s, id)) c.events_.on_sent_end(user);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session* s, std::int32_t id, std::uint32_t error_code,
                             void* user_data) {
    auto& c = codec(user_data);
    if (void* user = nghttp2_session_get_stream_user_data(s, id)) {
      nghttp2_session_set_stream_user_data(s, id, nullptr);
      c.events_.on_stream_closed(user, error_code);
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session* s, std::int32_t id, std::uint8_t* buffer,
                           std::size_t length, std::uint32_t* data_flags, nghttp2_data_source*,
                           void* user_data) {
    // The stream's owner as it is now: one that let the stream go (set_user(id, nullptr),
    // with a reset on its way) is not asked.
    void* user = nghttp2_session_get_stream_user_data(s, id);
    if (user == nullptr) return NGHTTP2_ERR_DEFERRED;
    const Pull pull = codec(user_data).events_.pull(user, buffer, length);
    if (pull.end) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (pull.trailers) *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    } else if (pull.deferred && pull.length == 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(pull.length);
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
    // Window updates follow what the owner took, not what arrived (bounded buffers).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    // Explicit, although nghttp2's defaults: CONTINUATION frames per header block
    // (CVE-2024-28182), queued SETTINGS/PING ACKs of a peer that does not read.
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    return opt;
  }
};

ClientCodec::ClientCodec(Events& events, const Settings& settings) : events_(events) {
  static nghttp2_session_callbacks* const callbacks = CodecCallbacks::make();
  static nghttp2_option* const options = CodecCallbacks::options();
  if (nghttp2_session_client_new3(&session_, callbacks, this, options, memory_.mem()) != 0) {
    session_ = nullptr;
    return;
  }
  std::vector<nghttp2_settings_entry> entries;
  entries.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  entries.push_back(
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(settings.stream_window)});
  if (settings.max_header_list != 0) {
    entries.push_back({NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list});
  }
  // No RFC 7540 priority tree: closed streams are forgotten at once.
  entries.push_back({NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1});
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries.data(), entries.size()) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                            settings.connection_window) != 0) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
}

ClientCodec::~ClientCodec() {
  // nghttp2_session_del calls no callback.
  if (session_ != nullptr) nghttp2_session_del(session_);
}

// ---------------------------------------------------------------------------------------
// Input

Feed ClientCodec::feed(const std::uint8_t* data, std::size_t n) {
  const auto rv = nghttp2_session_mem_recv(session_, data, n);
  if (rv >= 0) return Feed::ok;
  error_ = nghttp2_strerror(static_cast<int>(rv));
  if (rv == NGHTTP2_ERR_FLOODED) return Feed::close;
  nghttp2_session_terminate_session(
      session_, rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? kEnhanceYourCalm : kProtocolError);
  return Feed::goaway;
}

// ---------------------------------------------------------------------------------------
// Output

bool ClientCodec::produce(std::string& out, std::size_t limit) {
  while (out.size() < limit) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      error_ = nghttp2_strerror(static_cast<int>(n));
      return false;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

bool ClientCodec::want_read() const {
  return nghttp2_session_want_read(session_) != 0;
}

bool ClientCodec::want_write() const {
  return nghttp2_session_want_write(session_) != 0;
}

void ClientCodec::release_idle_memory() {
  if (session_ != nullptr && !want_write()) memory_.release_idle();
}

// ---------------------------------------------------------------------------------------
// Streams

void ClientCodec::set_user(std::int32_t id, void* user) {
  nghttp2_session_set_stream_user_data(session_, id, user);
}

void* ClientCodec::user(std::int32_t id) const {
  return nghttp2_session_get_stream_user_data(session_, id);
}

bool ClientCodec::submit_trailers(std::int32_t id, const FieldBlock& fields) {
  const auto& nv = to_nv(fields);
  return nghttp2_submit_trailer(session_, id, nv.data(), nv.size()) == 0;
}

std::int32_t ClientCodec::submit_request(const FieldBlock& fields, bool has_body, void* user) {
  const auto& nv = to_nv(fields);
  nghttp2_data_provider provider{};
  provider.read_callback = CodecCallbacks::read_body;
  return nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                has_body ? &provider : nullptr, user);
}

void ClientCodec::reset(std::int32_t id, std::uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void ClientCodec::resume(std::int32_t id) {
  nghttp2_session_resume_data(session_, id);
}

void ClientCodec::consume(std::int32_t id, std::size_t n) {
  nghttp2_session_consume(session_, id, n);
}

void ClientCodec::consume_connection(std::size_t n) {
  nghttp2_session_consume_connection(session_, n);
}

void ClientCodec::consume_stream(std::int32_t id, std::size_t n) {
  nghttp2_session_consume_stream(session_, id, n);
}

// ---------------------------------------------------------------------------------------
// Connection

void ClientCodec::go_away(std::uint32_t error_code, bool graceful) {
  if (graceful) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), kNoError, nullptr, 0);
  } else {
    nghttp2_session_terminate_session(session_, error_code);
  }
}

std::uint32_t ClientCodec::peer_max_concurrent_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

}  // namespace meridian::http::h2
