// Test peers for the HTTP/2 codecs: an Events implementation that logs what a codec reports
// (PeerOf<ClientCodec>, PeerOf<ServerCodec>), a pump that runs a conversation between two,
// and helpers for hand-made frames and HPACK blocks.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/h2/server_codec.hpp"

namespace meridian::http::h2::testing {

inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// One stream as a peer's events saw it.
struct StreamLog {
  std::int32_t id = 0;
  std::vector<std::string> fields;  // "block name: value"
  std::vector<std::string> blocks;  // "block" or "block+end"
  std::string data;
  bool ended = false;  // the peer's END_STREAM
  bool closed = false;
  std::uint32_t close_code = 0;
  std::string body;  // what pull() hands out
  bool trailers = false;
};

inline const char* name(Block b) {
  switch (b) {
    case Block::request:
      return "request";
    case Block::response:
      return "response";
    case Block::informational:
      return "informational";
    case Block::trailers:
      return "trailers";
  }
  return "?";
}

template <class C>
class PeerOf final : public Events {
 public:
  explicit PeerOf(Settings settings = {}) requires std::is_same_v<C, ServerCodec>
      : codec(*this, settings) {}
  explicit PeerOf(Settings settings = {}) requires std::is_same_v<C, ClientCodec>
      : codec(*this, settings) {}

  bool on_stream_open(std::int32_t id) override {
    if (refuse) return false;
    auto& s = streams[id];
    s.id = id;
    codec.set_user(id, &s);
    return true;
  }
  void on_field(void* user, Block block, std::string_view n, std::string_view v) override {
    log(user).fields.push_back(std::string(name(block)) + " " + std::string(n) + ": " +
                               std::string(v));
  }
  void on_block_end(void* user, Block block, bool end_stream) override {
    log(user).blocks.push_back(std::string(name(block)) + (end_stream ? "+end" : ""));
    if (end_stream) log(user).ended = true;
  }
  void on_data(void* user, const std::uint8_t* data, std::size_t n) override {
    log(user).data.append(reinterpret_cast<const char*>(data), n);
  }
  void on_end_stream(void* user) override { log(user).ended = true; }
  void on_sent_end(void*) override { ++sent_ends; }
  void on_peer_reset(void*, std::uint32_t) override { ++peer_resets; }
  void on_stream_closed(void* user, std::uint32_t code) override {
    log(user).closed = true;
    log(user).close_code = code;
  }
  Pull pull(void* user, std::uint8_t* buffer, std::size_t max) override {
    auto& s = log(user);
    Pull p;
    p.length = std::min(max, s.body.size());
    std::memcpy(buffer, s.body.data(), p.length);
    s.body.erase(0, p.length);
    if (!s.body.empty()) return p;
    p.end = true;
    if (s.trailers) {
      FieldBlock t;
      t.add("grpc-status", "0");
      t.add("Grpc-Message", "ok");
      codec.submit_trailers(s.id, t);
      p.trailers = true;
    }
    return p;
  }
  void on_glitch() override { ++glitches; }
  void on_goaway(std::int32_t last, std::uint32_t code) override {
    goaway_last = last;
    goaway_code = static_cast<int>(code);
  }

  std::string output() {
    std::string out;
    EXPECT_TRUE(codec.produce(out, 1 << 20));
    return out;
  }

  static StreamLog& log(void* user) { return *static_cast<StreamLog*>(user); }

  C codec;
  std::map<std::int32_t, StreamLog> streams;
  bool refuse = false;
  int sent_ends = 0, peer_resets = 0, glitches = 0;
  std::int32_t goaway_last = -1;
  int goaway_code = -1;
};

using Client = PeerOf<ClientCodec>;
using Peer = PeerOf<ServerCodec>;

template <class P>
inline Feed feed(P& p, std::string_view bytes, bool one_at_a_time = false) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (!one_at_a_time) return p.codec.feed(data, bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto r = p.codec.feed(data + i, 1);
    if (r != Feed::ok) return r;
  }
  return Feed::ok;
}

// Runs the conversation until neither side has anything to send.
inline void pump(Client& client, Peer& server, bool one_at_a_time = false) {
  for (int round = 0; round < 20; ++round) {
    const auto to_server = client.output();
    if (!to_server.empty()) {
      ASSERT_EQ(feed(server, to_server, one_at_a_time), Feed::ok);
    }
    const auto to_client = server.output();
    if (!to_client.empty()) {
      ASSERT_EQ(feed(client, to_client, one_at_a_time), Feed::ok);
    }
    if (to_server.empty() && to_client.empty()) return;
  }
  FAIL() << "the codecs kept talking";
}

inline FieldBlock request(std::string_view path, std::string_view method = "GET") {
  FieldBlock b;
  b.add(":method", method);
  b.add(":scheme", "http");
  b.add(":authority", "example.test");
  b.add(":path", path);
  return b;
}

inline std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                         std::string_view payload) {
  std::string f;
  const auto n = static_cast<std::uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8)
    f.push_back(static_cast<char>(stream >> shift));
  f.append(payload);
  return f;
}

inline std::string u32(std::uint32_t v) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8)
    s.push_back(static_cast<char>(v >> shift));
  return s;
}

struct Frame {
  std::uint8_t type, flags;
  std::uint32_t stream;
  std::string payload;
};

inline std::vector<Frame> frames(std::string_view bytes) {
  std::vector<Frame> out;
  while (bytes.size() >= 9) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::size_t n = std::size_t{p[0]} << 16 | std::size_t{p[1]} << 8 | p[2];
    const std::uint32_t id = (std::uint32_t{p[5]} & 0x7f) << 24 | std::uint32_t{p[6]} << 16 |
                             std::uint32_t{p[7]} << 8 | p[8];
    out.push_back(Frame{p[3], p[4], id, std::string(bytes.substr(9, n))});
    bytes.remove_prefix(std::min(bytes.size(), 9 + n));
  }
  return out;
}

inline std::uint32_t be32(std::string_view s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// The error code of the first RST_STREAM for `stream` (or of GOAWAY, stream 0), or -1.
inline long error_sent(std::string_view bytes, std::uint32_t stream) {
  for (const auto& f : frames(bytes)) {
    if (stream != 0 && f.type == 0x3 && f.stream == stream) return be32(f.payload);
    if (stream == 0 && f.type == 0x7) return be32(std::string_view(f.payload).substr(4));
  }
  return -1;
}

constexpr std::uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRst = 0x3;
constexpr std::uint8_t kEndStream = 0x1, kEndHeaders = 0x4, kPriorityFlag = 0x20;
// ":method: GET", ":scheme: http", ":path: /", ":authority" literal: a minimal request block
// in HPACK (static table indexes 2, 6, 4; 1 with a literal value).
inline const std::string kGetBlock = std::string("\x82\x86\x84\x41\x01x", 6);

// A server after the client's preface and SETTINGS, with its own output drained.
struct Server {
  Peer peer;
  Server() {
    EXPECT_EQ(feed(peer, std::string(kPreface) + frame(0x4, 0, 0, "")), Feed::ok);
    peer.output();
  }
  Feed send(const std::string& bytes) { return feed(peer, bytes); }
  // Answers stream `id` with a complete 204.
  void answer(std::int32_t id) {
    FieldBlock b;
    b.add_status(204);
    ASSERT_TRUE(peer.codec.submit_response(id, b, false));
    peer.output();
  }
};

// An HPACK string, raw (RFC 7541 5.2; its length an integer with a 7-bit prefix, 5.1).
inline std::string hpack_string(std::string_view s) {
  std::string out;
  std::size_t n = s.size();
  if (n < 127) {
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(0x7f);
    for (n -= 127; n >= 128; n >>= 7)
      out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    out.push_back(static_cast<char>(n));
  }
  out.append(s);
  return out;
}

// A literal field without indexing, new name (RFC 7541 6.2.2).
inline std::string literal(std::string_view name, std::string_view value) {
  return std::string(1, '\0') + hpack_string(name) + hpack_string(value);
}

}  // namespace meridian::http::h2::testing
