#include "meridian/http/grpc.hpp"

#include <gtest/gtest.h>

#include "unit/http/h2/fields_of.hpp"

namespace meridian::http::grpc {
namespace {

RequestHead head_with(std::vector<Field> fields) {
  RequestHead h;
  h.fields = std::move(fields);
  return h;
}

TEST(Grpc, ContentTypeTellsAGrpcCall) {
  EXPECT_TRUE(is_grpc(head_with({{"content-type", "application/grpc"}})));
  EXPECT_TRUE(is_grpc(head_with({{"Content-Type", "application/grpc+proto"}})));
  EXPECT_FALSE(is_grpc(head_with({{"content-type", "application/grpc-web"}})));
  EXPECT_FALSE(is_grpc(head_with({{"content-type", "application/json"}})));
  EXPECT_FALSE(is_grpc(head_with({})));
}

TEST(Grpc, TimeoutUnits) {
  using namespace std::chrono;
  auto t = [](std::string_view v) { return timeout(head_with({{"grpc-timeout", v}})); };
  EXPECT_EQ(t("100m"), nanoseconds(milliseconds(100)));
  EXPECT_EQ(t("5S"), nanoseconds(seconds(5)));
  EXPECT_EQ(t("2M"), nanoseconds(minutes(2)));
  EXPECT_EQ(t("1H"), nanoseconds(hours(1)));
  EXPECT_EQ(t("300u"), nanoseconds(microseconds(300)));
  EXPECT_EQ(t("7n"), nanoseconds(7));
  EXPECT_FALSE(t("123456789S"));  // more than 8 digits
  EXPECT_FALSE(t("10x"));
  EXPECT_FALSE(t("m"));
  EXPECT_FALSE(t("-1S"));
  EXPECT_FALSE(timeout(head_with({})));
}

TEST(Grpc, HttpStatusesMapAsTheIssueAndEnvoyDo) {
  EXPECT_EQ(status_for(503), kUnavailable);
  EXPECT_EQ(status_for(502), kUnavailable);
  EXPECT_EQ(status_for(429), kResourceExhausted);
  EXPECT_EQ(status_for(504), kDeadlineExceeded);
  EXPECT_EQ(status_for(408), kDeadlineExceeded);
  EXPECT_EQ(status_for(404), kUnimplemented);
  EXPECT_EQ(status_for(400), kInternal);
  EXPECT_EQ(status_for(500), kUnknown);
}

TEST(Grpc, TrailersOnlyLocalReply) {
  h2::FieldBlock out;
  encode_local_reply(kResourceExhausted, "rate limit exceeded 100%", "2 edge",
                     "RateLimit-Limit: 1\r\nRetry-After: 3\r\n", out);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(testing::fields_of(out), (std::vector<P>{{":status", "200"},
                                                     {"content-type", "application/grpc"},
                                                     {"grpc-status", "8"},
                                                     {"grpc-message", "rate limit exceeded 100%25"},
                                                     {"via", "2 edge"},
                                                     {"ratelimit-limit", "1"},
                                                     {"retry-after", "3"}}));
  EXPECT_EQ(encode_message("caf\xc3\xa9\n"), "caf%C3%A9%0A");
}

}  // namespace
}  // namespace meridian::http::grpc
