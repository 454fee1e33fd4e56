// HTTP/2 (RFC 9113) codecs: what both sides share -- header blocks to send (FieldBlock), the
// events a codec reports (Events), settings -- and the client side, ClientCodec, which owns an
// nghttp2 client session (HTTP/2 upstream connections and health checks). The server side
// (downstream connections) is ServerCodec (server_codec.hpp), our own. Either way bytes go in
// through feed(), frames to send come out of produce(), and what the peer said arrives as
// Events. No sockets, no timers: the session that owns a codec does the I/O, so the codecs are
// unit-tested and fuzzed on bytes alone.
//
// Flow control is manual: received DATA is acknowledged (WINDOW_UPDATE) only when the owner
// calls consume_stream()/consume_connection(), so a stream's buffer is bounded by its window.
//
// Thread: one owner.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/http/h2/session_memory.hpp"

struct nghttp2_session;

namespace meridian::http::h2 {

// Error codes (RFC 9113 7).
enum ErrorCode : std::uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kEnhanceYourCalm = 0xb,
};

// A header block to send: pseudo-fields first, names lower case (RFC 9113 8.2: add()
// lower-cases a copy), values copied. Reused from block to block without allocating once grown.
class FieldBlock {
 public:
  void clear() {
    store_.clear();
    entries_.clear();
  }
  void add(std::string_view name, std::string_view value);
  // A list field with an element added at its end: "value, more".
  void add(std::string_view name, std::string_view value, std::string_view more);
  void add_number(std::string_view name, std::uint64_t value);
  void add_status(unsigned status) { add_number(":status", status); }
  std::size_t size() const { return entries_.size(); }
  // Frees the storage of a block larger than `keep` bytes (a reused block keeps the rest).
  void trim(std::size_t keep);
  std::string_view name(std::size_t i) const {
    return std::string_view(store_).substr(entries_[i].name, entries_[i].name_length);
  }
  std::string_view value(std::size_t i) const {
    return std::string_view(store_).substr(entries_[i].value, entries_[i].value_length);
  }

 private:
  struct Entry {
    std::uint32_t name, name_length, value, value_length;
  };
  std::string store_;
  std::vector<Entry> entries_;
};

// Which header block of a stream the fields belong to.
enum class Block : std::uint8_t {
  request,        // server: the request's HEADERS
  response,       // client: the final response's HEADERS
  informational,  // client: a 1xx response
  trailers,       // either side: HEADERS after the body
};

// What the owner's pull() hands over for the next DATA frame.
struct Pull {
  std::size_t length = 0;  // bytes written into the buffer
  bool end = false;        // the body ends with them
  bool trailers = false;   // ... and trailers follow (submitted with submit_trailers() now)
  bool deferred = false;   // nothing now: resume() when more is there
};

// The peer's side of the conversation. `user` is what set_user() attached to the stream
// (null for a refused stream, for which only on_stream_open is called).
class Events {
 public:
  // Server: a client opened stream `id`. False refuses it (RST_STREAM REFUSED_STREAM).
  virtual bool on_stream_open(std::int32_t id) = 0;
  virtual void on_field(void* user, Block block, std::string_view name, std::string_view value) = 0;
  // The block is complete; `end_stream`: nothing follows on this stream from the peer.
  virtual void on_block_end(void* user, Block block, bool end_stream) = 0;
  virtual void on_data(void* user, const std::uint8_t* data, std::size_t n) = 0;
  virtual void on_end_stream(void* user) = 0;  // END_STREAM on a DATA frame
  // Our END_STREAM (HEADERS or DATA) went out.
  virtual void on_sent_end(void* user) = 0;
  virtual void on_peer_reset(void* user, std::uint32_t error_code) = 0;
  // The stream is closed (either side, or the connection ends); the codec forgets `user`.
  virtual void on_stream_closed(void* user, std::uint32_t error_code) = 0;
  virtual Pull pull(void* user, std::uint8_t* buffer, std::size_t max) = 0;
  // Misbehaviour a budget may tolerate a little of: an empty DATA frame without END_STREAM,
  // PING, SETTINGS and PRIORITY frames, invalid frames (CVE-2019-9512..9518).
  virtual void on_glitch() {}
  // The peer's SETTINGS arrived (applied: peer_max_concurrent_streams() tells its limit).
  virtual void on_settings() {}
  // Client: the server sent GOAWAY; streams above `last_stream_id` were not processed.
  virtual void on_goaway(std::int32_t last_stream_id, std::uint32_t error_code) {
    (void)last_stream_id;
    (void)error_code;
  }

 protected:
  ~Events() = default;
};

struct Settings {
  std::uint32_t max_concurrent_streams = 100;
  std::int32_t stream_window = 64 * 1024;
  std::int32_t connection_window = 1024 * 1024;
  std::uint32_t max_header_list = 0;  // 0: not announced
};

// What feed() made of the peer's bytes.
enum class Feed : std::uint8_t {
  ok,
  goaway,  // a connection error: GOAWAY is queued; send what produce() gives, then close
  close,   // close at once (not HTTP/2, or a flood that must not be answered)
};

class ClientCodec {
 public:
  ClientCodec(Events& events, const Settings& settings);
  ~ClientCodec();
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;

  bool ok() const { return session_ != nullptr; }
  // Bytes from the server.
  Feed feed(const std::uint8_t* data, std::size_t n);
  // Appends frames to `out` until it holds at least `limit` bytes or nothing is queued.
  // False: the session failed (close).
  bool produce(std::string& out, std::size_t limit);
  bool want_read() const;
  bool want_write() const;
  // Between frames (nothing to send): the pages of nghttp2's frame buffer, and its all-zero
  // pages such as an empty stream map, go back to the kernel (SessionMemory). For a
  // connection that turns idle.
  void release_idle_memory();
  // What ended the connection, for the log.
  std::string_view error() const { return error_; }

  // -- streams
  void set_user(std::int32_t id, void* user);
  void* user(std::int32_t id) const;
  // A new request stream, or a negative number when none can be opened.
  std::int32_t submit_request(const FieldBlock& fields, bool has_body, void* user);
  // Trailers after the request body (from pull(), which says Pull::trailers).
  bool submit_trailers(std::int32_t id, const FieldBlock& fields);
  void reset(std::int32_t id, std::uint32_t error_code);
  // The stream's pull() said `deferred` and has more now.
  void resume(std::int32_t id);
  // Received DATA the owner is done with: the window reopens by `n`.
  void consume(std::int32_t id, std::size_t n);  // stream and connection
  void consume_connection(std::size_t n);
  void consume_stream(std::int32_t id, std::size_t n);

  // -- connection
  // Graceful: GOAWAY NO_ERROR, streams in progress finish. Otherwise GOAWAY `error_code`.
  void go_away(std::uint32_t error_code, bool graceful);
  // How many streams the server lets us open at once (its SETTINGS).
  std::uint32_t peer_max_concurrent_streams() const;

 private:
  friend struct CodecCallbacks;

  Events& events_;
  SessionMemory memory_;  // outlives session_: ~ClientCodec deletes the session first
  nghttp2_session* session_ = nullptr;
  std::string error_;
  Block block_ = Block::response;  // the header block being received
};

}  // namespace meridian::http::h2
