// Which bucket a request draws from (rate_limit.key: client_ip | route | header:NAME), the
// Redis key a global bucket gets, and when a route's limit state carries over a reload.
#include "meridian/ratelimit/route_limit.hpp"

#include <gtest/gtest.h>

namespace meridian::ratelimit {
namespace {

constexpr std::int64_t kNow = 1'000'000'000'000;

config::RateLimit limit(config::RateLimitKey key, std::string header = "") {
  config::RateLimit l;
  l.rate = config::Rate{10, std::chrono::minutes(1)};
  l.burst = 2;
  l.key = key;
  l.header_name = std::move(header);
  return l;
}

http::RequestHead head_with(std::vector<http::Field> fields) {
  http::RequestHead h;
  h.method = "GET";
  h.fields = std::move(fields);
  return h;
}

const auto kClient = boost::asio::ip::make_address("192.0.2.7");
const auto kClient6 = boost::asio::ip::make_address("2001:db8::7");

TEST(ClientKey, ClientIpIsTheAddress) {
  KeyBuffer buffer;
  const auto key =
      client_key(limit(config::RateLimitKey::client_ip), head_with({}), kClient, buffer);
  EXPECT_TRUE(key.address);
  EXPECT_EQ(key.bytes, std::string_view("\xc0\x00\x02\x07", 4));
  const auto key6 =
      client_key(limit(config::RateLimitKey::client_ip), head_with({}), kClient6, buffer);
  EXPECT_EQ(key6.bytes.size(), 16u);
}

TEST(ClientKey, HeaderValueOrTheAddressWhenAbsent) {
  KeyBuffer buffer;
  const auto l = limit(config::RateLimitKey::header, "x-api-key");
  const auto key = client_key(l, head_with({{"X-Api-Key", "tenant-1"}}), kClient, buffer);
  EXPECT_FALSE(key.address);
  EXPECT_EQ(key.bytes, "tenant-1");
  const auto fallback = client_key(l, head_with({{"X-Other", "x"}}), kClient, buffer);
  EXPECT_TRUE(fallback.address);
}

TEST(ClientKey, RouteKeyIsOneBucket) {
  RouteLimit route("public", "api", limit(config::RateLimitKey::route));
  LocalBuckets buckets(1000);
  KeyBuffer buffer;
  const auto a = client_key(route.config, head_with({}), kClient, buffer);
  EXPECT_TRUE(take_local(route, &buckets, a, kNow).allowed);
  const auto b = client_key(route.config, head_with({}), kClient6, buffer);
  EXPECT_TRUE(take_local(route, &buckets, b, kNow).allowed);
  EXPECT_FALSE(take_local(route, &buckets, a, kNow).allowed);  // burst 2, shared
  EXPECT_EQ(buckets.size(), 0u);  // the route's own atomic, not the table
  EXPECT_FALSE(take_local(route, nullptr, a, kNow).allowed);  // which may then be absent
}

TEST(ClientKey, HeaderValueDoesNotShareAnAddressBucket) {
  // A header value spelled like an address's four bytes is still another bucket.
  RouteLimit route("public", "api", limit(config::RateLimitKey::header, "x-api-key"));
  LocalBuckets buckets(1000);
  const ClientKey as_address{std::string_view("abcd", 4), true};
  const ClientKey as_header{std::string_view("abcd", 4), false};
  EXPECT_TRUE(take_local(route, &buckets, as_address, kNow).allowed);
  EXPECT_TRUE(take_local(route, &buckets, as_address, kNow).allowed);
  EXPECT_FALSE(take_local(route, &buckets, as_address, kNow).allowed);
  EXPECT_TRUE(take_local(route, &buckets, as_header, kNow).allowed);
}

TEST(GlobalKey, ReadableNames) {
  KeyBuffer buffer;
  RouteLimit ip("public", "api", limit(config::RateLimitKey::client_ip));
  EXPECT_EQ(global_key(ip, client_key(ip.config, head_with({}), kClient, buffer)),
            "meridian:rl:public/api:192.0.2.7");
  EXPECT_EQ(global_key(ip, client_key(ip.config, head_with({}), kClient6, buffer)),
            "meridian:rl:public/api:2001:db8::7");
  RouteLimit route("public", "api", limit(config::RateLimitKey::route));
  EXPECT_EQ(global_key(route, {}), "meridian:rl:public/api");
  RouteLimit header("public", "api", limit(config::RateLimitKey::header, "x-api-key"));
  EXPECT_EQ(global_key(header, {"tenant-1", false}), "meridian:rl:public/api:h=tenant-1");
  const std::string long_value(200, 'x');
  const auto hashed = global_key(header, {long_value, false});
  EXPECT_EQ(hashed.size(), std::string("meridian:rl:public/api:h#").size() + 16);
  EXPECT_EQ(hashed, global_key(header, {long_value, false}));  // stable across nodes
}

TEST(RouteLimit, CarriesOverOnlyWhenNothingChanged) {
  const auto l = limit(config::RateLimitKey::client_ip);
  RouteLimit route("public", "api", l);
  EXPECT_TRUE(route.same_as("public", "api", l));
  EXPECT_FALSE(route.same_as("public", "api2", l));
  EXPECT_FALSE(route.same_as("public2", "api", l));
  EXPECT_FALSE(route.same_as("publi", "c/api", l));
  auto faster = l;
  faster.rate.tokens = 20;
  EXPECT_FALSE(route.same_as("public", "api", faster));
  auto global = l;
  global.scope = config::RateLimitScope::global;
  EXPECT_FALSE(route.same_as("public", "api", global));
}

}  // namespace
}  // namespace meridian::ratelimit
