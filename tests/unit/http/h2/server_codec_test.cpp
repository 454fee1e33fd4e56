// http::h2::ServerCodec on hand-made frames: the request field rules (RFC 9113 8.1.1, 8.2,
// 8.3), content-length against DATA, header blocks in CONTINUATION frames both ways, flow
// control by the client's windows, DATA taking turns, PING and its flood limit, SETTINGS
// errors, graceful GOAWAY, and what an idle connection keeps.
#include <gtest/gtest.h>

#include "peers.hpp"

namespace meridian::http::h2 {
namespace {

using namespace testing;

constexpr std::uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRst = 0x3, kSettings = 0x4,
                       kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8, kContinuation = 0x9;
constexpr std::uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4;

std::string setting(std::uint16_t id, std::uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + u32(value);
}

// ":method: GET", ":scheme: http", ":path: /" (static indexes 2, 6, 4).
const std::string kGetSchemePath = "\x82\x86\x84";
const std::string kAuthority = literal(":authority", "example.test");

struct Case {
  const char* what;
  std::string block;
  bool served;
};

TEST(H2ServerCodec, MalformedRequestsAreResetNotServed) {
  const std::vector<Case> cases = {
      {"a plain GET", kGetSchemePath + kAuthority, true},
      {"upper case name", kGetSchemePath + kAuthority + literal("X-Upper", "v"), false},
      {"connection field", kGetSchemePath + kAuthority + literal("connection", "close"), false},
      {"transfer-encoding", kGetSchemePath + kAuthority + literal("transfer-encoding", "chunked"),
       false},
      {"te other than trailers", kGetSchemePath + kAuthority + literal("te", "gzip"), false},
      {"te: trailers", kGetSchemePath + kAuthority + literal("te", "Trailers"), true},
      {"leading space in a value", kGetSchemePath + kAuthority + literal("x-a", " v"), false},
      {"control character in a value", kGetSchemePath + kAuthority + literal("x-a", "a\x01z"),
       false},
      {"space in a name", kGetSchemePath + kAuthority + literal("x a", "v"), false},
      {"duplicate :path", kGetSchemePath + kAuthority + "\x84", false},
      {"unknown pseudo-field", kGetSchemePath + kAuthority + literal(":foo", "1"), false},
      {"response pseudo-field", kGetSchemePath + kAuthority + literal(":status", "200"), false},
      {"pseudo-field after a regular one",
       std::string("\x82\x86") + literal("x-a", "1") + "\x84" + kAuthority, false},
      {"no :scheme", std::string("\x82\x84") + kAuthority, false},
      {"no :authority nor host", kGetSchemePath, false},
      {"host instead of :authority", kGetSchemePath + literal("host", "example.test"), true},
      {"empty :path", std::string("\x82\x86") + literal(":path", "") + kAuthority, false},
      {"* with GET", std::string("\x82\x86") + literal(":path", "*") + kAuthority, false},
      {"* with OPTIONS",
       literal(":method", "OPTIONS") + "\x86" + literal(":path", "*") + kAuthority, true},
      {"CONNECT with :authority", literal(":method", "CONNECT") + kAuthority, true},
      {"CONNECT with :path", literal(":method", "CONNECT") + kAuthority + "\x84", false},
      {"content-length not a number",
       kGetSchemePath + kAuthority + literal("content-length", "12a"), false},
      {"two content-lengths",
       kGetSchemePath + kAuthority + literal("content-length", "0") +
           literal("content-length", "0"),
       false},
      {"content-length 3 with END_STREAM",
       kGetSchemePath + kAuthority + literal("content-length", "3"), false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Server s;
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, c.block)), Feed::ok);
    const auto out = s.peer.output();
    const auto& log = s.peer.streams[1];
    if (c.served) {
      EXPECT_EQ(log.blocks, std::vector<std::string>{"request+end"});
      EXPECT_EQ(error_sent(out, 1), -1);
    } else {
      EXPECT_TRUE(log.blocks.empty());
      EXPECT_EQ(error_sent(out, 1), kProtocolError);
      EXPECT_TRUE(log.closed);
      EXPECT_EQ(log.close_code, kProtocolError);
    }
  }
}

TEST(H2ServerCodec, ContentLengthMustMatchTheData) {
  const auto run = [](std::string_view body) {
    Server s;
    EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders, 1,
                           literal(":method", "POST") + "\x86\x84" + kAuthority +
                               literal("content-length", "5"))),
              Feed::ok);
    EXPECT_EQ(s.send(frame(kData, kEndStream, 1, body)), Feed::ok);
    return std::make_pair(error_sent(s.peer.output(), 1), s.peer.streams[1].ended);
  };
  EXPECT_EQ(run("abcde"), std::make_pair(-1L, true));
  EXPECT_EQ(run("abc"), std::make_pair(static_cast<long>(kProtocolError), false));
  EXPECT_EQ(run("abcdef"), std::make_pair(static_cast<long>(kProtocolError), false));
}

TEST(H2ServerCodec, PaddedDataCutAnywhereGivesTheSameBody) {
  // PADDED DATA "hello" with 5 bytes of padding, then a PING: every cut of the bytes into two
  // reads, and single bytes, give the body without its padding and keep the frames in step.
  const std::string data =
      frame(kData, kEndStream | 0x8, 1, std::string("\x05hello", 6) + std::string(5, '\0'));
  const std::string bytes = data + frame(kPing, 0, 0, "12345678");
  const auto post = literal(":method", "POST") + "\x86\x84" + kAuthority;
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    SCOPED_TRACE(cut);
    Server s;
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, post)), Feed::ok);
    ASSERT_EQ(s.send(bytes.substr(0, cut)), Feed::ok);
    ASSERT_EQ(s.send(bytes.substr(cut)), Feed::ok);
    EXPECT_EQ(s.peer.streams[1].data, "hello");
    EXPECT_TRUE(s.peer.streams[1].ended);
    const auto f = frames(s.peer.output());
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].type, kPing);  // the PING after it was read as a PING
  }
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, post)), Feed::ok);
  ASSERT_EQ(feed(s.peer, bytes, true), Feed::ok);
  EXPECT_EQ(s.peer.streams[1].data, "hello");
}

TEST(H2ServerCodec, TableSizeSettingIsAnsweredWithASizeUpdate) {
  // A client's decoder may wait for a size update after it changed the table size (RFC 7541
  // 4.2); ours is 0, at the start of the next block, once.
  Peer peer;
  ASSERT_EQ(feed(peer, std::string(kPreface) + frame(kSettings, 0, 0, setting(0x1, 0))), Feed::ok);
  peer.output();
  FieldBlock head;
  head.add_status(204);
  for (const std::int32_t id : {1, 3}) {
    ASSERT_EQ(feed(peer, frame(kHeaders, kEndHeaders | kEndStream, static_cast<std::uint32_t>(id),
                               kGetBlock)),
              Feed::ok);
    ASSERT_TRUE(peer.codec.submit_response(id, head, false));
  }
  const auto f = frames(peer.output());
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].payload, std::string("\x20\x89", 2));  // size update 0, :status 204
  EXPECT_EQ(f[1].payload, std::string("\x89", 1));
  HpackDecoder client_decoder(0);
  struct Sink final : FieldSink {
    void on_decoded(std::string_view, std::string_view) override {}
  } sink;
  EXPECT_TRUE(client_decoder.decode(reinterpret_cast<const std::uint8_t*>(f[0].payload.data()),
                                    f[0].payload.size(), sink));
}

TEST(H2ServerCodec, FieldsPastTwiceTheHeaderListLimitAreNotLookedAt) {
  // One large table entry referenced over and over: a byte of the client's for each 4 KiB
  // field. Past twice SETTINGS_MAX_HEADER_LIST_SIZE the fields are dropped (the owner refused
  // the request by then) and the client is charged a glitch; the block still ends.
  Settings settings;
  settings.max_header_list = 8192;
  Peer peer(settings);
  ASSERT_EQ(feed(peer, std::string(kPreface) + frame(kSettings, 0, 0, "")), Feed::ok);
  const std::string big = std::string("\x40") + hpack_string("x-big") +
                          hpack_string(std::string(4000, 'b'));  // indexed: table entry 62
  const std::string block = kGetSchemePath + kAuthority + big + std::string(3000, '\xbe');
  ASSERT_EQ(feed(peer, frame(kHeaders, kEndHeaders | kEndStream, 1, block)), Feed::ok);
  const auto& log = peer.streams[1];
  EXPECT_LE(log.fields.size(), 4u + 5u);  // 16 KiB of fields at most
  EXPECT_GE(peer.glitches, 2);            // the client's SETTINGS, and this
  EXPECT_EQ(log.blocks, std::vector<std::string>{"request+end"});
  EXPECT_EQ(peer.codec.decoder().table_entries(), 1u);
}

TEST(H2ServerCodec, RequestHeaderBlockInContinuationFrames) {
  const std::string block = kGetSchemePath + kAuthority + literal("x-long", std::string(300, 'l'));
  {
    Server s;
    ASSERT_EQ(s.send(frame(kHeaders, kEndStream, 1, block.substr(0, 10))), Feed::ok);
    ASSERT_EQ(s.send(frame(kContinuation, 0, 1, block.substr(10, 100))), Feed::ok);
    ASSERT_EQ(s.send(frame(kContinuation, kEndHeaders, 1, block.substr(110))), Feed::ok);
    EXPECT_EQ(s.peer.streams[1].blocks, std::vector<std::string>{"request+end"});
    EXPECT_EQ(s.peer.streams[1].fields.back(), "request x-long: " + std::string(300, 'l'));
  }
  {
    Server s;  // another frame in the middle of the block
    ASSERT_EQ(s.send(frame(kHeaders, kEndStream, 1, block.substr(0, 10))), Feed::ok);
    EXPECT_EQ(s.send(frame(kPing, 0, 0, std::string(8, 'p'))), Feed::goaway);
    EXPECT_EQ(error_sent(s.peer.output(), 0), kProtocolError);
  }
  {
    Server s;  // more CONTINUATION frames than any real client needs (CVE-2024-28182)
    ASSERT_EQ(s.send(frame(kHeaders, kEndStream, 1, block.substr(0, 1))), Feed::ok);
    Feed r = Feed::ok;
    for (std::size_t i = 1; i < 12 && r == Feed::ok; ++i) {
      r = s.send(frame(kContinuation, 0, 1, block.substr(i, 1)));
    }
    EXPECT_EQ(r, Feed::goaway);
    EXPECT_EQ(error_sent(s.peer.output(), 0), kEnhanceYourCalm);
  }
}

TEST(H2ServerCodec, LargeResponseHeadersGoOutInContinuationFrames) {
  Client client;
  Peer server;
  StreamLog up;
  client.codec.submit_request(request("/"), false, &up);
  pump(client, server);
  FieldBlock head;
  head.add_status(200);
  head.add("x-big", std::string(40000, 'b'));
  ASSERT_TRUE(server.codec.submit_response(1, head, false));
  const auto out = server.output();
  const auto f = frames(out);
  ASSERT_GE(f.size(), 3u);
  EXPECT_EQ(f[0].type, kHeaders);
  EXPECT_EQ(f[0].flags & kEndHeaders, 0);
  EXPECT_EQ(f[0].flags & kEndStream, kEndStream);
  EXPECT_EQ(f.back().type, kContinuation);
  EXPECT_EQ(f.back().flags & kEndHeaders, kEndHeaders);
  ASSERT_EQ(feed(client, out), Feed::ok);  // nghttp2 reads it back whole
  EXPECT_EQ(up.fields.back(), "response x-big: " + std::string(40000, 'b'));
  EXPECT_TRUE(up.closed);
}

TEST(H2ServerCodec, DataFollowsTheClientsWindows) {
  Peer peer;
  // The client allows 10 bytes per stream.
  ASSERT_EQ(feed(peer, std::string(kPreface) + frame(kSettings, 0, 0, setting(0x4, 10))), Feed::ok);
  peer.output();
  ASSERT_EQ(feed(peer, frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  peer.streams[1].body = std::string(25, 'd');
  FieldBlock head;
  head.add_status(200);
  ASSERT_TRUE(peer.codec.submit_response(1, head, true));
  auto f = frames(peer.output());
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1].type, kData);
  EXPECT_EQ(f[1].payload.size(), 10u);
  EXPECT_FALSE(peer.codec.want_write());  // the window is spent
  ASSERT_EQ(feed(peer, frame(kWindowUpdate, 0, 1, u32(100))), Feed::ok);
  f = frames(peer.output());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload.size(), 15u);
  EXPECT_EQ(f[0].flags & kEndStream, kEndStream);
  EXPECT_TRUE(peer.streams[1].closed);
  // A window pushed past 2^31-1 is the client's error.
  EXPECT_EQ(feed(peer, frame(kWindowUpdate, 0, 0, u32(0x7fffffff))), Feed::goaway);
  EXPECT_EQ(error_sent(peer.output(), 0), kFlowControlError);
}

TEST(H2ServerCodec, StreamsWithDataTakeTurns) {
  Server s;
  for (const std::uint32_t id : {1u, 3u}) {
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, id, kGetBlock)), Feed::ok);
    s.peer.streams[static_cast<std::int32_t>(id)].body = std::string(30000, 'x');
    FieldBlock head;
    head.add_status(200);
    ASSERT_TRUE(s.peer.codec.submit_response(static_cast<std::int32_t>(id), head, true));
  }
  // The connection window (65,535) lets both bodies out; frames alternate between streams.
  std::vector<std::uint32_t> order;
  for (const auto& f : frames(s.peer.output())) {
    if (f.type == kData) order.push_back(f.stream);
  }
  EXPECT_EQ(order, (std::vector<std::uint32_t>{1, 3, 1, 3}));
}

TEST(H2ServerCodec, PingIsAnsweredAndAFloodOfUnreadAnswersCloses) {
  Server s;
  ASSERT_EQ(s.send(frame(kPing, 0, 0, "12345678")), Feed::ok);
  const auto f = frames(s.peer.output());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, kPing);
  EXPECT_EQ(f[0].flags, kAck);
  EXPECT_EQ(f[0].payload, "12345678");
  ASSERT_EQ(s.send(frame(kPing, kAck, 0, "12345678")), Feed::ok);  // an ACK is not answered
  EXPECT_TRUE(s.peer.output().empty());
  std::string flood;
  for (int i = 0; i < 1001; ++i)
    flood += frame(kPing, 0, 0, "flooding");
  EXPECT_EQ(s.send(flood), Feed::close);  // none of it was read back
}

TEST(H2ServerCodec, SettingsAndFrameErrors) {
  const auto first = [](const std::string& frames_after_preface) {
    Peer peer;
    const auto r = feed(peer, std::string(kPreface) + frames_after_preface);
    return std::make_pair(r, error_sent(peer.output(), 0));
  };
  const auto goaway = [](ErrorCode code) {
    return std::make_pair(Feed::goaway, static_cast<long>(code));
  };
  EXPECT_EQ(first(frame(kPing, 0, 0, "12345678")), goaway(kProtocolError));  // not SETTINGS
  EXPECT_EQ(first(frame(kSettings, 0, 0, setting(0x2, 2))), goaway(kProtocolError));
  EXPECT_EQ(first(frame(kSettings, 0, 0, setting(0x4, 0x80000000))), goaway(kFlowControlError));
  EXPECT_EQ(first(frame(kSettings, 0, 0, setting(0x5, 100))), goaway(kProtocolError));
  EXPECT_EQ(first(frame(kSettings, 0, 0, "12345")), goaway(kFrameSizeError));
  EXPECT_EQ(first(frame(kSettings, 0, 0, "") + frame(kData, 0, 1, std::string(16385, 'x'))),
            goaway(kFrameSizeError));
  EXPECT_EQ(first(frame(kSettings, 0, 0, "") + frame(kData, 0, 1, "x")),
            goaway(kProtocolError));  // DATA on an idle stream
  EXPECT_EQ(first(frame(kSettings, 0, 0, "") + frame(kRst, 0, 1, u32(0))),
            goaway(kProtocolError));  // RST_STREAM on an idle stream
  EXPECT_EQ(first(frame(kSettings, 0, 0, "") + frame(kGoaway, 0, 1, u32(0) + u32(0))),
            goaway(kProtocolError));  // GOAWAY on a stream
  EXPECT_EQ(first(frame(kSettings, 0, 0, "") + frame(kPriority, 0, 5, "1234")),
            goaway(kFrameSizeError));  // a short PRIORITY on an idle stream cannot be reset
  // Unknown settings and frame types are ignored (6.5.2, 5.5).
  EXPECT_EQ(first(frame(kSettings, 0, 0, setting(0x99, 7)) + frame(0x42, 0xff, 0, "??")),
            std::make_pair(Feed::ok, -1L));
}

TEST(H2ServerCodec, GracefulGoawayLetsOpenStreamsFinish) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 3, kGetBlock)), Feed::ok);
  s.peer.codec.go_away(kNoError, true);
  const auto f = frames(s.peer.output());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, kGoaway);
  EXPECT_EQ(be32(f[0].payload), 3u);      // the last stream that will be served
  EXPECT_TRUE(s.peer.codec.want_read());  // two streams still open
  s.answer(1);
  s.answer(3);
  EXPECT_FALSE(s.peer.codec.want_read());
  EXPECT_FALSE(s.peer.codec.want_write());
}

TEST(H2ServerCodec, AnIdleConnectionKeepsOnlyTheClientsHpackTable) {
  Server s;
  // kGetBlock indexes ":authority: x" in the client's dynamic table.
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  s.answer(1);
  EXPECT_EQ(s.peer.codec.streams(), 0u);
  s.peer.codec.release_idle_memory();
  EXPECT_EQ(s.peer.codec.decoder().table_entries(), 1u);
  // The codec itself is small: what an idle HTTP/2 connection costs beyond HTTP/1.1's.
  EXPECT_LE(sizeof(ServerCodec), 512u);
  // ... and it goes on: the next request uses the table entry (index 62).
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 3, "\x82\x86\x84\xbe")), Feed::ok);
  EXPECT_EQ(s.peer.streams[3].blocks, std::vector<std::string>{"request+end"});
}

}  // namespace
}  // namespace meridian::http::h2
