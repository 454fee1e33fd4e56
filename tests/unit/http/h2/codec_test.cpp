// http::h2::Codec on bytes alone: a client codec and a server codec talking to each other
// (requests, responses, 1xx, trailers, flow control), and hand-made frames for the stream
// state rules the server keeps on top of nghttp2 (RFC 9113 5.1, 5.1.1, 5.3.1, 6.3).
#include "meridian/http/h2/codec.hpp"

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::http::h2 {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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

const char* name(Block b) {
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

class Peer final : public Events {
 public:
  explicit Peer(Codec::Role role, Settings settings = {}) : codec(role, *this, settings) {}

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

  Codec codec;
  std::map<std::int32_t, StreamLog> streams;
  bool refuse = false;
  int sent_ends = 0, peer_resets = 0, glitches = 0;
  std::int32_t goaway_last = -1;
  int goaway_code = -1;
};

Codec::Feed feed(Peer& p, std::string_view bytes, bool one_at_a_time = false) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  if (!one_at_a_time) return p.codec.feed(data, bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto r = p.codec.feed(data + i, 1);
    if (r != Codec::Feed::ok) return r;
  }
  return Codec::Feed::ok;
}

// Runs the conversation until neither side has anything to send.
void pump(Peer& client, Peer& server, bool one_at_a_time = false) {
  for (int round = 0; round < 20; ++round) {
    const auto to_server = client.output();
    if (!to_server.empty()) {
      ASSERT_EQ(feed(server, to_server, one_at_a_time), Codec::Feed::ok);
    }
    const auto to_client = server.output();
    if (!to_client.empty()) {
      ASSERT_EQ(feed(client, to_client, one_at_a_time), Codec::Feed::ok);
    }
    if (to_server.empty() && to_client.empty()) return;
  }
  FAIL() << "the codecs kept talking";
}

FieldBlock request(std::string_view path, std::string_view method = "GET") {
  FieldBlock b;
  b.add(":method", method);
  b.add(":scheme", "http");
  b.add(":authority", "example.test");
  b.add(":path", path);
  return b;
}

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
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

std::string u32(std::uint32_t v) {
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

std::vector<Frame> frames(std::string_view bytes) {
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

std::uint32_t be32(std::string_view s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// The error code of the first RST_STREAM for `stream` (or of GOAWAY, stream 0), or -1.
long error_sent(std::string_view bytes, std::uint32_t stream) {
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
const std::string kGetBlock = std::string("\x82\x86\x84\x41\x01x", 6);

// A server after the client's preface and SETTINGS, with its own output drained.
struct Server {
  Peer peer{Codec::Role::server};
  Server() {
    EXPECT_EQ(feed(peer, std::string(kPreface) + frame(0x4, 0, 0, "")), Codec::Feed::ok);
    peer.output();
  }
  Codec::Feed send(const std::string& bytes) { return feed(peer, bytes); }
  // Answers stream `id` with a complete 204.
  void answer(std::int32_t id) {
    FieldBlock b;
    b.add_status(204);
    ASSERT_TRUE(peer.codec.submit_response(id, b, false));
    peer.output();
  }
};

TEST(H2Codec, RequestAndResponseWithTrailersBothWays) {
  Peer client(Codec::Role::client);
  Peer server(Codec::Role::server);
  StreamLog up;
  up.body = "hello";
  up.trailers = true;
  const auto id = client.codec.submit_request(request("/upload", "POST"), true, &up);
  ASSERT_EQ(id, 1);
  up.id = id;
  pump(client, server);
  ASSERT_EQ(server.streams.count(1), 1u);
  auto& s = server.streams[1];
  EXPECT_EQ(s.data, "hello");
  EXPECT_EQ(s.blocks, (std::vector<std::string>{"request", "trailers+end"}));
  EXPECT_NE(std::find(s.fields.begin(), s.fields.end(), "trailers grpc-message: ok"),
            s.fields.end());
  EXPECT_TRUE(s.ended);

  FieldBlock head;
  head.add_status(200);
  head.add("Content-Type", "application/grpc");
  s.body = "world";
  s.trailers = true;
  ASSERT_TRUE(server.codec.submit_response(1, head, true));
  pump(client, server);
  EXPECT_EQ(up.blocks, (std::vector<std::string>{"response", "trailers+end"}));
  EXPECT_EQ(up.fields.front(), "response :status: 200");
  EXPECT_EQ(up.fields[1], "response content-type: application/grpc");
  EXPECT_EQ(up.data, "world");
  EXPECT_TRUE(up.closed);
  EXPECT_EQ(up.close_code, kNoError);
}

TEST(H2Codec, InformationalResponsesAreToldApart) {
  Peer client(Codec::Role::client);
  Peer server(Codec::Role::server);
  StreamLog up;
  client.codec.submit_request(request("/"), false, &up);
  pump(client, server);
  FieldBlock b;
  b.add_status(100);
  ASSERT_TRUE(server.codec.submit_informational(1, b));
  b.clear();
  b.add_status(204);
  ASSERT_TRUE(server.codec.submit_response(1, b, false));
  pump(client, server);
  EXPECT_EQ(up.blocks, (std::vector<std::string>{"informational", "response+end"}));
}

TEST(H2Codec, FramesSplitIntoSingleBytesGiveTheSameConversation) {
  Peer client(Codec::Role::client);
  Peer server(Codec::Role::server);
  StreamLog up;
  up.body = std::string(1000, 'x');
  client.codec.submit_request(request("/", "PUT"), true, &up);
  pump(client, server, true);
  EXPECT_EQ(server.streams[1].data.size(), 1000u);
  EXPECT_TRUE(server.streams[1].ended);
  EXPECT_EQ(server.glitches, 1);  // the client's SETTINGS
}

TEST(H2Codec, ReceivedDataReopensTheWindowOnlyWhenConsumed) {
  Settings small;
  small.stream_window = 1000;
  Peer client(Codec::Role::client);
  Peer server(Codec::Role::server, small);
  pump(client, server);  // SETTINGS both ways: the small window applies from here on
  StreamLog up;
  up.body = std::string(3000, 'y');
  client.codec.submit_request(request("/", "PUT"), true, &up);
  pump(client, server);
  EXPECT_EQ(server.streams[1].data.size(), 1000u);  // the window's worth, no more
  server.codec.consume(1, 1000);
  pump(client, server);
  EXPECT_EQ(server.streams[1].data.size(), 2000u);
}

TEST(H2Codec, RefusedStreamIsResetAndItsBodyIgnored) {
  Peer client(Codec::Role::client);
  Peer server(Codec::Role::server);
  server.refuse = true;
  StreamLog up;
  up.body = "ignored";
  client.codec.submit_request(request("/", "POST"), true, &up);
  pump(client, server);
  EXPECT_TRUE(up.closed);
  EXPECT_EQ(up.close_code, kRefusedStream);
  EXPECT_TRUE(server.streams.empty());
}

TEST(H2Codec, DataAfterBothEndsClosedIsAConnectionError) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Codec::Feed::ok);
  s.answer(1);
  ASSERT_TRUE(s.peer.streams[1].closed);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "late")), Codec::Feed::goaway);
  EXPECT_EQ(error_sent(s.peer.output(), 0), kStreamClosed);
  EXPECT_EQ(s.peer.codec.error(), "frame on a closed stream");
}

TEST(H2Codec, HeadersAfterTheClientResetIsAStreamError) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Codec::Feed::ok);
  ASSERT_EQ(s.send(frame(kRst, 0, 1, u32(kCancel))), Codec::Feed::ok);
  EXPECT_EQ(s.send(frame(kData, 0, 1, "more")), Codec::Feed::ok);  // the connection goes on
  EXPECT_EQ(error_sent(s.peer.output(), 1), kStreamClosed);
  EXPECT_EQ(s.peer.peer_resets, 1);
}

TEST(H2Codec, FramesOnAStreamWeResetAreIgnored) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Codec::Feed::ok);
  s.peer.codec.reset(1, kCancel);
  EXPECT_EQ(error_sent(s.peer.output(), 1), kCancel);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "in flight")), Codec::Feed::ok);
  EXPECT_EQ(error_sent(s.peer.output(), 0), -1);
}

TEST(H2Codec, StreamsIgnoredAfterOurGoawayStayIgnored) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Codec::Feed::ok);
  s.peer.codec.go_away(kNoError, true);
  s.peer.output();
  // A request that crossed the GOAWAY, and its body: neither is served nor an error.
  EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders, 3, kGetBlock)), Codec::Feed::ok);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 3, "body")), Codec::Feed::ok);
  EXPECT_EQ(s.peer.streams.count(3), 0u);
  EXPECT_EQ(error_sent(s.peer.output(), 0), -1);
}

TEST(H2Codec, HeadersOnALowerStreamNeverOpenedIsAProtocolError) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 5, kGetBlock)), Codec::Feed::ok);
  EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 3, kGetBlock)), Codec::Feed::goaway);
  EXPECT_EQ(error_sent(s.peer.output(), 0), kProtocolError);
}

TEST(H2Codec, StreamsOlderThanTheHistoryAreLeftToNghttp2) {
  Server s;
  // Stream 1, then streams far above it: 1 leaves the 64-stream history.
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Codec::Feed::ok);
  s.answer(1);
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 301, kGetBlock)), Codec::Feed::ok);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "x")), Codec::Feed::ok);  // ignored
}

TEST(H2Codec, PriorityFieldsAreCheckedAlthoughPrioritiesAreIgnored) {
  {
    Server s;  // HEADERS depending on itself: nghttp2's connection error, never served
    const auto priority = u32(1) + std::string(1, '\x10');
    ASSERT_EQ(
        s.send(frame(kHeaders, kEndHeaders | kEndStream | kPriorityFlag, 1, priority + kGetBlock)),
        Codec::Feed::ok);
    EXPECT_TRUE(s.peer.streams.empty());
    EXPECT_EQ(error_sent(s.peer.output(), 0), kProtocolError);
  }
  {
    Server s;  // PRIORITY for an open stream depending on itself: RST_STREAM
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Codec::Feed::ok);
    ASSERT_EQ(s.send(frame(kPriority, 0, 1, u32(1) + "\x10")), Codec::Feed::ok);
    EXPECT_EQ(error_sent(s.peer.output(), 1), kProtocolError);
    EXPECT_TRUE(s.peer.streams[1].closed);
    EXPECT_EQ(s.peer.streams[1].close_code, kProtocolError);
  }
  {
    Server s;  // PRIORITY on stream 0: connection error
    EXPECT_EQ(s.send(frame(kPriority, 0, 0, u32(1) + "\x10")), Codec::Feed::goaway);
  }
  {
    Server s;  // ... and on an idle stream depending on itself, which cannot be reset
    EXPECT_EQ(s.send(frame(kPriority, 0, 7, u32(7) + "\x10")), Codec::Feed::goaway);
  }
}

TEST(H2Codec, NotHttp2IsClosedWithoutAnswer) {
  Peer server(Codec::Role::server);
  EXPECT_EQ(feed(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Codec::Feed::close);
}

TEST(H2Codec, FieldBlockLowerCasesNames) {
  FieldBlock b;
  b.add("X-Mixed-Case", "Value Kept");
  b.add_status(503);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.name(0), "x-mixed-case");
  EXPECT_EQ(b.value(0), "Value Kept");
  EXPECT_EQ(b.name(1), ":status");
  EXPECT_EQ(b.value(1), "503");
}

}  // namespace
}  // namespace meridian::http::h2
