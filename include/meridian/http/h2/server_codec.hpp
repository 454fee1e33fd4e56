// The server side of HTTP/2 (RFC 9113) for downstream connections: framing, stream states,
// flow control and the request field rules, with our own HPACK (hpack.hpp). Same shape as
// ClientCodec (codec.hpp), which keeps nghttp2 for the client side: bytes go in through feed(),
// frames come out of produce(), what the client said arrives as Events. No sockets, no timers.
//
// Why not nghttp2 here: an edge holds mostly idle connections, and an nghttp2 server session
// keeps about 5.5 KiB that no API gives back (its session structure, two HPACK ring buffers
// allocated for the full table, the deflater's entries). An idle connection of this codec
// keeps the object (a few hundred bytes) and the fields the client indexed; the streams'
// table, the header block buffer and the output queue go when the connection turns idle
// (release_idle_memory).
//
// Rules kept (each with its RFC 9113 section at the code): the preface and SETTINGS first;
// frame sizes; stream states (idle, open, half-closed, closed), including the recent history
// of closed streams that tells a frame on a stream that ended cleanly (connection error
// STREAM_CLOSED) from one the client reset (stream error) or we reset (ignored); flow control
// both ways, manual on the receiving side (received DATA is acknowledged only when the owner
// calls consume()); header blocks with CONTINUATION (at most 8 per block, CVE-2024-28182);
// the request field syntax (8.2, 8.3): lower-case token names, no connection-specific fields,
// pseudo-fields first and only the request ones, content-length equal to the DATA received.
// RFC 7540 priorities are not kept (SETTINGS_NO_RFC7540_PRIORITIES); PRIORITY frames are
// checked for the errors 5.3.1 and 6.3 define. Streams with DATA to send take turns a frame
// at a time.
//
// Thread: one owner.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/h2/hpack.hpp"

namespace meridian::http::h2 {

struct RequestFieldCheck;  // src/http/h2/request_fields.hpp

class ServerCodec final : private FieldSink {
 public:
  ServerCodec(Events& events, const Settings& settings);
  ServerCodec(const ServerCodec&) = delete;
  ServerCodec& operator=(const ServerCodec&) = delete;

  bool ok() const { return true; }
  // Bytes from the client, the preface first.
  Feed feed(const std::uint8_t* data, std::size_t n);
  // Appends frames to `out` until it holds at least `limit` bytes or nothing is ready.
  bool produce(std::string& out, std::size_t limit);
  bool want_read() const;
  bool want_write() const;
  // No stream open and nothing queued: the per-connection buffers go.
  void release_idle_memory();
  std::string_view error() const { return error_; }

  // -- streams (as ClientCodec)
  void set_user(std::int32_t id, void* user);
  void* user(std::int32_t id) const;
  bool submit_response(std::int32_t id, const FieldBlock& fields, bool has_body);
  bool submit_informational(std::int32_t id, const FieldBlock& fields);
  bool submit_trailers(std::int32_t id, const FieldBlock& fields);
  void reset(std::int32_t id, std::uint32_t error_code);
  void resume(std::int32_t id);
  void consume(std::int32_t id, std::size_t n);
  void consume_connection(std::size_t n);
  void consume_stream(std::int32_t id, std::size_t n);

  // -- connection (as ClientCodec)
  void go_away(std::uint32_t error_code, bool graceful);
  std::int32_t last_peer_stream() const { return last_opened_; }

  // A HEADERS frame came without END_HEADERS and its CONTINUATION frames have not all come:
  // nothing else may arrive until they do (the owner bounds this by header_timeout).
  bool in_header_block() const { return block_expected_; }

  // For tests: the decoder's table, and how many streams the codec holds.
  const HpackDecoder& decoder() const { return decoder_; }
  std::size_t streams() const { return streams_.size(); }

 private:
  struct Stream {
    std::int32_t id = 0;
    void* user = nullptr;
    bool remote_closed = false;    // the client's END_STREAM arrived
    bool local_closed = false;     // our END_STREAM is queued or sent
    bool headers_sent = false;     // the final response's HEADERS are queued
    bool has_body = false;         // DATA follows the response head (pull())
    bool deferred = false;         // pull() said deferred: wait for resume()
    bool resetting = false;        // our RST_STREAM is queued: the stream is as good as closed
    bool invalid = false;          // its request block broke a field rule: reset, not delivered
    bool trailers = false;         // the block being received is the trailer section
    bool oversized = false;        // its block passed the header list cap: fields dropped
    std::uint32_t list_bytes = 0;  // the block's fields so far, name + value + 32 each
    std::int64_t send_window = 0;
    std::int32_t recv_window = 0;  // what the client may still send before a WINDOW_UPDATE
    std::uint32_t unacked = 0;     // consumed, not yet acknowledged
    std::int64_t content_length = -1;
    std::uint64_t received = 0;
    // The request block's pseudo-fields seen (bits), and whether a regular field came.
    std::uint8_t pseudo = 0;
    bool regular_seen = false;
    bool connect = false;         // :method CONNECT
    bool method_options = false;  // :method OPTIONS (":path: *" is allowed)
    bool path_asterisk = false;   // ":path: *"
  };
  // Recent client streams (bit i is stream max - 2i): see the header.
  struct History {
    std::int32_t max = 0;
    std::uint64_t opened = 0, closed = 0, reset_by_us = 0, reset_by_peer = 0;
    void open(std::int32_t id);
    std::uint64_t bit(std::int32_t id) const {
      if (id > max || (max - id) / 2 >= 64 || ((max - id) & 1) != 0) return 0;
      return std::uint64_t{1} << ((max - id) / 2);
    }
  };
  enum class Phase : std::uint8_t { preface, header, payload, skip };
  // What to do once queued frames are written: tell the owner our END_STREAM went, or close
  // a stream we reset.
  struct AfterWrite {
    std::int32_t id;
    bool reset;
    std::uint32_t code;
  };

  Stream* find(std::int32_t id);
  const Stream* find(std::int32_t id) const;
  void close_stream(Stream* s, std::uint32_t code);
  void on_decoded(std::string_view name, std::string_view value) override;

  Feed connection_error(std::uint32_t code, std::string_view why);
  void stream_error(std::int32_t id, std::uint32_t code);
  Feed on_frame_header();
  Feed on_frame(const std::uint8_t* payload, std::size_t n);
  Feed on_data_start();
  Feed on_data_chunk(const std::uint8_t* p, std::size_t n);
  Feed on_data_end();
  Feed on_headers(const std::uint8_t* payload, std::size_t n);
  Feed on_continuation(const std::uint8_t* payload, std::size_t n);
  Feed on_header_block(const std::uint8_t* p, std::size_t n);
  Feed on_priority(const std::uint8_t* payload, std::size_t n);
  Feed on_rst_stream(const std::uint8_t* payload, std::size_t n);
  Feed on_settings(const std::uint8_t* payload, std::size_t n);
  Feed on_ping(const std::uint8_t* payload, std::size_t n);
  Feed on_window_update(const std::uint8_t* payload, std::size_t n);
  static RequestFieldCheck field_check(Stream& s);  // the rules over the stream's state
  bool accept_field(Stream& s, std::string_view name, std::string_view value);
  bool end_of_request_block(Stream& s, bool end_stream);
  bool check_trailer_block(Stream& s);

  void queue_frame(std::uint8_t type, std::uint8_t flags, std::int32_t id,
                   std::string_view payload);
  void queue_window_update(std::int32_t id, std::uint32_t increment);
  bool queue_headers(std::int32_t id, const FieldBlock& fields, bool end_stream);
  void after_write();
  bool data_ready(const Stream& s) const;
  bool produce_data(std::string& out);  // one DATA frame, of the next stream in turn

  Events& events_;
  Settings settings_;
  std::string error_;
  HpackDecoder decoder_;
  std::vector<Stream> streams_;  // open streams, ascending ids
  History history_;

  // -- input
  Phase phase_ = Phase::preface;
  std::uint32_t preface_seen_ = 0;
  bool settings_seen_ = false;  // the client's first frame must be SETTINGS (3.4)
  std::uint8_t header_[9] = {};
  std::uint8_t header_length_ = 0;
  std::uint32_t length_ = 0;  // the current frame's
  std::uint8_t type_ = 0, flags_ = 0;
  std::int32_t id_ = 0;
  std::uint32_t payload_seen_ = 0;
  std::string payload_;  // a non-DATA frame's payload arriving in pieces
  // DATA: padding left to skip at the end, the stream it goes to (or none).
  std::uint32_t pad_left_ = 0;
  std::int32_t data_stream_ = 0;
  bool pad_length_pending_ = false;
  // The header block being received: its stream, fragments so far, CONTINUATION count.
  std::int32_t block_stream_ = 0;
  std::uint8_t block_flags_ = 0;
  std::uint8_t continuations_ = 0;
  bool block_expected_ = false;  // CONTINUATION must come next
  std::string block_;
  Stream* decoding_ = nullptr;  // where decoded fields go (null: decoded and dropped)

  // -- flow control
  std::int64_t send_window_ = 65535;          // connection, ours to spend
  std::int64_t peer_initial_window_ = 65535;  // SETTINGS_INITIAL_WINDOW_SIZE of the client
  std::uint32_t peer_max_frame_ = 16384;
  std::int32_t recv_window_ = 65535;  // connection, the client's to spend
  std::uint32_t recv_unacked_ = 0;
  bool settings_acked_ = false;
  // Fields past this much of a block (twice the announced SETTINGS_MAX_HEADER_LIST_SIZE) are
  // decoded for the table but neither checked nor delivered: the owner has refused the
  // request by then (431), and a client cannot make it look at more (HPACK references to
  // one large table entry cost the client a byte each).
  std::uint64_t list_cap_ = 0;
  bool table_size_update_ = false;  // the client set SETTINGS_HEADER_TABLE_SIZE (see queue_headers)

  // -- output
  std::string queue_;  // frames to go out before any more DATA
  std::vector<AfterWrite> after_write_;
  std::uint32_t acks_queued_ = 0;  // SETTINGS/PING ACKs and RST_STREAMs in queue_
  std::size_t next_data_ = 0;      // round robin over streams_
  std::int32_t last_opened_ = 0;
  bool goaway_sent_ = false, goaway_received_ = false;
  bool terminating_ = false;  // a GOAWAY with an error is queued: nothing more is read
  bool terminated_ = false;   // ... and written
};

}  // namespace meridian::http::h2
