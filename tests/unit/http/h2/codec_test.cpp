// The HTTP/2 codecs on bytes alone: the client codec (nghttp2) and our server codec talking
// to each other (requests, responses, 1xx, trailers, flow control), and hand-made frames for
// the server's stream state rules (RFC 9113 5.1, 5.1.1, 5.3.1, 6.3).
#include <gtest/gtest.h>

#include "peers.hpp"

namespace meridian::http::h2 {
namespace {

using namespace testing;

TEST(H2Codec, RequestAndResponseWithTrailersBothWays) {
  Client client;
  Peer server;
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
  Client client;
  Peer server;
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
  Client client;
  Peer server;
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
  Client client;
  Peer server(small);
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
  Client client;
  Peer server;
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
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  s.answer(1);
  ASSERT_TRUE(s.peer.streams[1].closed);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "late")), Feed::goaway);
  EXPECT_EQ(error_sent(s.peer.output(), 0), kStreamClosed);
  EXPECT_EQ(s.peer.codec.error(), "frame on a closed stream");
}

TEST(H2Codec, FramesAfterTheClientResetAreStreamErrors) {
  {
    Server s;  // DATA
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Feed::ok);
    ASSERT_EQ(s.send(frame(kRst, 0, 1, u32(kCancel))), Feed::ok);
    EXPECT_EQ(s.send(frame(kData, 0, 1, "more")), Feed::ok);  // the connection goes on
    EXPECT_EQ(error_sent(s.peer.output(), 1), kStreamClosed);
    EXPECT_EQ(s.peer.peer_resets, 1);
  }
  {
    Server s;  // HEADERS (trailers)
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Feed::ok);
    ASSERT_EQ(s.send(frame(kRst, 0, 1, u32(kCancel))), Feed::ok);
    EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, literal("x-t", "1"))), Feed::ok);
    EXPECT_EQ(error_sent(s.peer.output(), 1), kStreamClosed);
  }
}

TEST(H2Codec, FramesOnAStreamWeResetAreIgnored) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Feed::ok);
  s.peer.codec.reset(1, kCancel);
  EXPECT_EQ(error_sent(s.peer.output(), 1), kCancel);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "in flight")), Feed::ok);
  EXPECT_EQ(error_sent(s.peer.output(), 0), -1);
}

TEST(H2Codec, StreamsIgnoredAfterOurGoawayStayIgnored) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  s.peer.codec.go_away(kNoError, true);
  s.peer.output();
  // A request that crossed the GOAWAY, and its body: neither is served nor an error.
  EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders, 3, kGetBlock)), Feed::ok);
  EXPECT_EQ(s.send(frame(kData, kEndStream, 3, "body")), Feed::ok);
  EXPECT_EQ(s.peer.streams.count(3), 0u);
  EXPECT_EQ(error_sent(s.peer.output(), 0), -1);
}

TEST(H2Codec, HeadersOnALowerStreamNeverOpenedIsAProtocolError) {
  Server s;
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 5, kGetBlock)), Feed::ok);
  EXPECT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 3, kGetBlock)), Feed::goaway);
  EXPECT_EQ(error_sent(s.peer.output(), 0), kProtocolError);
}

TEST(H2Codec, FramesOnStreamsOlderThanTheHistoryAreIgnored) {
  Server s;
  // Stream 1, then streams far above it: 1 leaves the 64-stream history.
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 1, kGetBlock)), Feed::ok);
  s.answer(1);
  ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders | kEndStream, 301, kGetBlock)), Feed::ok);
  s.peer.output();
  EXPECT_EQ(s.send(frame(kData, kEndStream, 1, "x")), Feed::ok);
  const auto out = s.peer.output();
  EXPECT_EQ(error_sent(out, 0), -1);  // neither GOAWAY
  EXPECT_EQ(error_sent(out, 1), -1);  // nor RST_STREAM: the frame may have been in flight
}

TEST(H2Codec, PriorityFieldsAreCheckedAlthoughPrioritiesAreIgnored) {
  {
    Server s;  // HEADERS depending on itself: a connection error, never served
    const auto priority = u32(1) + std::string(1, '\x10');
    ASSERT_EQ(
        s.send(frame(kHeaders, kEndHeaders | kEndStream | kPriorityFlag, 1, priority + kGetBlock)),
        Feed::goaway);
    EXPECT_TRUE(s.peer.streams.empty());
    EXPECT_EQ(error_sent(s.peer.output(), 0), kProtocolError);
  }
  {
    Server s;  // PRIORITY for an open stream depending on itself: RST_STREAM
    ASSERT_EQ(s.send(frame(kHeaders, kEndHeaders, 1, kGetBlock)), Feed::ok);
    ASSERT_EQ(s.send(frame(kPriority, 0, 1, u32(1) + "\x10")), Feed::ok);
    EXPECT_EQ(error_sent(s.peer.output(), 1), kProtocolError);
    EXPECT_TRUE(s.peer.streams[1].closed);
    EXPECT_EQ(s.peer.streams[1].close_code, kProtocolError);
  }
  {
    Server s;  // PRIORITY on stream 0: connection error
    EXPECT_EQ(s.send(frame(kPriority, 0, 0, u32(1) + "\x10")), Feed::goaway);
  }
  {
    Server s;  // ... and on an idle stream depending on itself, which cannot be reset
    EXPECT_EQ(s.send(frame(kPriority, 0, 7, u32(7) + "\x10")), Feed::goaway);
  }
}

TEST(H2Codec, NotHttp2IsClosedWithoutAnswer) {
  Peer server;
  EXPECT_EQ(feed(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Feed::close);
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
