// W3C Trace Context (tracing.propagate: w3c): which traceparent values are valid, and how a
// request's trace is continued or started.
#include "meridian/http/trace_context.hpp"

#include <regex>
#include <string>

#include <gtest/gtest.h>

namespace meridian::http {
namespace {

constexpr std::string_view kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(ParseTraceparent, TheSpecificationsExample) {
  const auto p = parse_traceparent(kValid);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(p->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(p->flags, 1);
}

TEST(ParseTraceparent, Refused) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    // short
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // 00 is exactly 55
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later version: '-' next
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(ParseTraceparent, LaterVersionsParseTheirFirstFourFields) {
  const auto p =
      parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

RequestHead head_with(std::vector<Field> fields) {
  RequestHead h;
  h.fields = std::move(fields);
  return h;
}

TEST(TraceContextBegin, ContinuesAValidTraceWithANewSpan) {
  RequestIdGenerator random;
  TraceContext t;
  t.begin(head_with({{"TraceParent", kValid}}), random);
  ASSERT_TRUE(t.active());
  EXPECT_TRUE(t.continued());
  EXPECT_EQ(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t.parent_id(), "00f067aa0ba902b7");
  EXPECT_NE(t.span_id(), "00f067aa0ba902b7");
  EXPECT_TRUE(parse_traceparent(t.traceparent())) << t.traceparent();
  EXPECT_EQ(t.traceparent().substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(t.traceparent().substr(52), "-01");
}

TEST(TraceContextBegin, KeepsOnlyTheSampledFlag) {
  RequestIdGenerator random;
  TraceContext t;
  t.begin(head_with({{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}}),
          random);
  EXPECT_EQ(t.traceparent().substr(52), "-00");
  t.begin(head_with({{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"}}),
          random);
  EXPECT_EQ(t.traceparent().substr(52), "-01");
}

TEST(TraceContextBegin, StartsATraceWithoutOneOrWithTwo) {
  RequestIdGenerator random;
  const std::regex shape("00-[0-9a-f]{32}-[0-9a-f]{16}-01");
  for (const auto& head : {head_with({}), head_with({{"traceparent", "garbage"}}),
                           head_with({{"traceparent", kValid}, {"traceparent", kValid}})}) {
    TraceContext t;
    t.begin(head, random);
    EXPECT_FALSE(t.continued());
    EXPECT_EQ(t.parent_id(), "");
    EXPECT_TRUE(std::regex_match(std::string(t.traceparent()), shape)) << t.traceparent();
    EXPECT_NE(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_TRUE(parse_traceparent(t.traceparent()));
  }
  // Fresh ids each time.
  TraceContext a, b;
  a.begin(head_with({}), random);
  b.begin(head_with({}), random);
  EXPECT_NE(a.trace_id(), b.trace_id());
  EXPECT_NE(a.span_id(), b.span_id());
}

}  // namespace
}  // namespace meridian::http
