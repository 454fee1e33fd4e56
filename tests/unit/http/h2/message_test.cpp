#include "meridian/http/h2/message.hpp"

#include <string>

#include <gtest/gtest.h>

#include "meridian/http/forwarding.hpp"

#include "unit/http/h2/fields_of.hpp"

namespace meridian::http {
namespace {

ParserLimits limits(std::uint64_t bytes = 8192, std::uint32_t fields = 10, std::uint64_t body = 0) {
  return ParserLimits{bytes, fields, body};
}

struct Builder {
  H2RequestBuilder b;
  explicit Builder(const ParserLimits& l = limits()) { b.reset(l); }
  Builder& add(std::string_view n, std::string_view v) {
    b.add(n, v);
    return *this;
  }
  Builder& get(std::string_view path = "/p?q=1", std::string_view authority = "a.test") {
    return add(":method", "GET")
        .add(":scheme", "https")
        .add(":authority", authority)
        .add(":path", path);
  }
};

TEST(H2RequestBuilder, DescribesTheRequestAsAHead) {
  Builder r;
  r.get().add("user-agent", "ua").add("accept", "*/*");
  r.b.finish(false);
  ASSERT_FALSE(r.b.error()) << r.b.error().reason;
  const auto& h = r.b.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/p?q=1");
  EXPECT_EQ(h.path, "/p");
  EXPECT_EQ(h.host, "a.test");
  EXPECT_EQ(h.version, 20u);
  EXPECT_FALSE(h.has_body());
  ASSERT_NE(h.find("host"), nullptr);  // :authority becomes Host for the HTTP/1.1 upstream
  EXPECT_EQ(h.find("host")->value, "a.test");
  EXPECT_EQ(h.find("user-agent")->value, "ua");
}

TEST(H2RequestBuilder, AuthorityWinsOverHostAndHostAloneIsEnough) {
  Builder both;
  both.get().add("host", "other.test");
  both.b.finish(false);
  ASSERT_FALSE(both.b.error());
  EXPECT_EQ(both.b.head().host, "a.test");
  int hosts = 0;
  for (const auto& f : both.b.head().fields)
    hosts += f.name == "host";
  EXPECT_EQ(hosts, 1);

  Builder host_only;
  host_only.add(":method", "GET").add(":scheme", "http").add(":path", "/").add("host", "h.test");
  host_only.b.finish(false);
  ASSERT_FALSE(host_only.b.error());
  EXPECT_EQ(host_only.b.head().host, "h.test");
}

TEST(H2RequestBuilder, BodyFramingForTheUpstream) {
  Builder sized;
  sized.get().add("content-length", "12");
  sized.b.finish(true);
  ASSERT_FALSE(sized.b.error());
  EXPECT_EQ(sized.b.head().content_length, 12u);
  EXPECT_FALSE(sized.b.head().chunked);

  Builder unsized;  // DATA frames without a length: chunked upstream
  unsized.get();
  unsized.b.finish(true);
  EXPECT_TRUE(unsized.b.head().chunked);
  EXPECT_TRUE(unsized.b.head().has_body());

  Builder ended;  // END_STREAM on HEADERS: no body whatever Content-Length says
  ended.get().add("content-length", "0").add("expect", "100-continue");
  ended.b.finish(false);
  EXPECT_FALSE(ended.b.head().has_body());
  EXPECT_FALSE(ended.b.head().expect_continue);
}

TEST(H2RequestBuilder, CookieCrumbsAreJoined) {
  Builder r;
  r.get().add("cookie", "a=1").add("x", "y").add("cookie", "b=2");
  r.b.finish(false);
  ASSERT_NE(r.b.head().find("cookie"), nullptr);
  EXPECT_EQ(r.b.head().find("cookie")->value, "a=1; b=2");
}

TEST(H2RequestBuilder, RefusesWhatHttp11Refuses) {
  {
    Builder r;
    r.add(":method", "CONNECT").add(":authority", "a.test:443");
    r.b.finish(true);
    EXPECT_EQ(r.b.error().status, 400u);
  }
  {
    Builder r;
    r.add(":method", "GET").add(":scheme", "http").add(":path", "/");
    r.b.finish(false);
    EXPECT_EQ(r.b.error().status, 400u) << "no authority and no Host";
  }
  {
    Builder r;
    r.get("/", "bad host");
    r.b.finish(false);
    EXPECT_EQ(r.b.error().status, 400u);
  }
  {
    Builder r;
    r.get("relative");
    r.b.finish(false);
    EXPECT_EQ(r.b.error().status, 400u);
  }
  {
    Builder r;
    r.get().add(":protocol", "websocket");
    r.b.finish(false);
    EXPECT_EQ(r.b.error().status, 400u);
  }
  {
    Builder r(limits(8192, 10, 100));
    r.get().add("content-length", "101");
    r.b.finish(true);
    EXPECT_EQ(r.b.error().status, 413u);
  }
}

TEST(H2RequestBuilder, HeaderListLimitsAnswer431) {
  Builder big(limits(200));
  big.get().add("x-big", std::string(200, 'a'));
  big.b.finish(false);
  EXPECT_EQ(big.b.error().status, 431u);

  Builder many(limits(8192, 3));
  many.get().add("a", "1").add("b", "2").add("c", "3").add("d", "4");
  many.b.finish(false);
  EXPECT_EQ(many.b.error().status, 431u);

  Builder fits(limits(8192, 3));
  fits.get().add("a", "1").add("b", "2").add("c", "3");
  fits.b.finish(false);
  EXPECT_FALSE(fits.b.error());
}

TEST(H2RequestBuilder, ResetStartsOver) {
  Builder r;
  r.get().add("x-big", std::string(9000, 'a'));
  r.b.finish(false);
  EXPECT_EQ(r.b.error().status, 431u);
  r.b.reset(limits());
  r.get("/again");
  r.b.finish(false);
  ASSERT_FALSE(r.b.error());
  EXPECT_EQ(r.b.head().path, "/again");
}

using testing::fields_of;

TEST(EncodeResponse, LowerCasesNamesAndDropsConnectionFields) {
  ResponseHead head;
  head.status = 201;
  head.fields = {{"Content-Type", "text/plain"},
                 {"Connection", "close, X-Gone"},
                 {"Keep-Alive", "timeout=5"},
                 {"Transfer-Encoding", "chunked"},
                 {"X-Gone", "1"},
                 {"X-Custom", "v"}};
  head.chunked = true;
  ResponseForwarding fwd;
  fwd.via = "1.1 edge";
  fwd.rate_limit_headers = "RateLimit-Limit: 5\r\nRateLimit-Remaining: 4\r\n";
  fwd.region = "eu";
  h2::FieldBlock out;
  encode_response(head, fwd, out);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(fields_of(out), (std::vector<P>{{":status", "201"},
                                            {"content-type", "text/plain"},
                                            {"x-custom", "v"},
                                            {"via", "1.1 edge"},
                                            {"ratelimit-limit", "5"},
                                            {"ratelimit-remaining", "4"},
                                            {"x-meridian-region", "eu"}}));
}

TEST(EncodeResponse, OriginRateLimitFieldsGiveWayToOurs) {
  ResponseHead head;
  head.status = 200;
  head.fields = {{"RateLimit-Limit", "99"}};
  ResponseForwarding fwd;
  fwd.via = "1.1 edge";
  fwd.rate_limit_headers = "RateLimit-Limit: 5\r\n";
  h2::FieldBlock out;
  encode_response(head, fwd, out);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(fields_of(out),
            (std::vector<P>{{":status", "200"}, {"via", "1.1 edge"}, {"ratelimit-limit", "5"}}));
}

TEST(EncodeRequest, PseudoFieldsFirstThenTheHeaderRules) {
  RequestHead head;
  head.method = "POST";
  head.target = "/pkg.Service/Call?x=1";
  head.path = "/pkg.Service/Call";
  head.host = "api.example.test";
  head.version = 20;
  head.content_length = 5;
  head.fields = {
      {"Host", "api.example.test"}, {"Content-Type", "application/grpc"}, {"TE", "trailers"},
      {"Connection", "keep-alive"}, {"X-Forwarded-For", "192.0.2.1"},     {"Content-Length", "5"}};
  RequestForwarding fwd;
  fwd.peer_address = "198.51.100.7";
  fwd.proto = "https";
  fwd.via = "2 edge";
  fwd.request_id = "rid-1";
  h2::FieldBlock out;
  encode_request(head, fwd, "http", out);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(fields_of(out), (std::vector<P>{{":method", "POST"},
                                            {":scheme", "http"},
                                            {":authority", "api.example.test"},
                                            {":path", "/pkg.Service/Call?x=1"},
                                            {"content-type", "application/grpc"},
                                            {"x-forwarded-for", "192.0.2.1, 198.51.100.7"},
                                            {"x-forwarded-proto", "https"},
                                            {"x-request-id", "rid-1"},
                                            {"via", "2 edge"},
                                            {"content-length", "5"},
                                            {"te", "trailers"}}));
}

TEST(EncodeRequest, NoTrailersAskedNoTe) {
  RequestHead head;
  head.method = "GET";
  head.target = "/";
  head.host = "h";
  head.fields = {{"TE", "gzip"}};
  RequestForwarding fwd;
  h2::FieldBlock out;
  encode_request(head, fwd, "https", out);
  for (std::size_t i = 0; i < out.size(); ++i)
    EXPECT_NE(out.name(i), "te");
}

TEST(EncodeLocalReply, CarriesLengthViaAndExtraFields) {
  h2::FieldBlock out;
  encode_local_reply(429, "rate limit exceeded", "1.1 edge", "Retry-After: 3\r\n", out);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(fields_of(out), (std::vector<P>{{":status", "429"},
                                            {"content-type", "text/plain"},
                                            {"content-length", "20"},
                                            {"via", "1.1 edge"},
                                            {"retry-after", "3"}}));
  EXPECT_EQ(local_reply_body("rate limit exceeded"), "rate limit exceeded\n");
}

}  // namespace
}  // namespace meridian::http
