// Admin query strings: the parameters POST /state, POST /maintenance and GET /ready?backend=
// read, with the escapes a client (curl --data-urlencode, a browser form) produces.
#include "meridian/admin/query.hpp"

#include <gtest/gtest.h>

namespace meridian::admin {
namespace {

TEST(Query, PathStopsAtTheQuery) {
  EXPECT_EQ(target_path("/ready?backend=api"), "/ready");
  EXPECT_EQ(target_path("/ready"), "/ready");
  EXPECT_EQ(target_path("/?"), "/");
}

TEST(Query, FindsEachParameter) {
  const std::string_view t = "/state?backend=api&region=eu-west&state=drain";
  EXPECT_EQ(query_param(t, "backend"), "api");
  EXPECT_EQ(query_param(t, "region"), "eu-west");
  EXPECT_EQ(query_param(t, "state"), "drain");
  EXPECT_EQ(query_param(t, "endpoint"), std::nullopt);
  EXPECT_EQ(query_param("/state", "state"), std::nullopt);
}

TEST(Query, TheFirstOfRepeatedParametersWins) {
  EXPECT_EQ(query_param("/x?a=1&a=2", "a"), "1");
}

TEST(Query, DecodesEscapesAndPlus) {
  EXPECT_EQ(query_param("/x?endpoint=10.0.1.10%3A8080", "endpoint"), "10.0.1.10:8080");
  EXPECT_EQ(query_param("/x?endpoint=%5B2001%3adb8%3A%3A1%5D%3A80", "endpoint"),
            "[2001:db8::1]:80");
  EXPECT_EQ(query_param("/x?name=a+b", "name"), "a b");
  EXPECT_EQ(query_param("/x?na%6De=v", "name"), "v");
}

TEST(Query, MalformedEscapesStayAsWritten) {
  EXPECT_EQ(query_param("/x?a=%G1", "a"), "%G1");
  EXPECT_EQ(query_param("/x?a=1%", "a"), "1%");
  EXPECT_EQ(query_param("/x?a=1%4", "a"), "1%4");
}

TEST(Query, ParametersWithoutValueOrNameAreHandled) {
  EXPECT_EQ(query_param("/x?flag&a=1", "flag"), "");
  EXPECT_EQ(query_param("/x?&&a=1&", "a"), "1");
  EXPECT_EQ(query_param("/x?=v&a=", "a"), "");
}

}  // namespace
}  // namespace meridian::admin
