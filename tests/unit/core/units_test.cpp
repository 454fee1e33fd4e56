// The configuration's value syntaxes (docs/configuration.md, value syntax): durations, sizes,
// rates and host:port.
#include "meridian/core/units.hpp"

#include <limits>

#include <gtest/gtest.h>

namespace meridian {
namespace {

using std::chrono::milliseconds;

TEST(ParseUint, DigitsOnly) {
  EXPECT_EQ(parse_uint("0"), 0u);
  EXPECT_EQ(parse_uint("42"), 42u);
  EXPECT_EQ(parse_uint("007"), 7u);
  EXPECT_EQ(parse_uint("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  for (std::string_view bad : {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3",
                               "18446744073709551616", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_uint(bad).has_value()) << bad;
  }
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("2s"), milliseconds(2'000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
  EXPECT_EQ(parse_duration("0ms"), milliseconds(0));
  EXPECT_EQ(parse_duration("90s"), milliseconds(90'000));
}

TEST(ParseDuration, RejectsOtherForms) {
  for (std::string_view bad : {"", "0", "30", "s", "1.5s", "-1s", "+1s", "1 s", "1S", "1sec", "1d",
                               "1us", "1ms ", "1hm", "ms"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(ParseDuration, Overflow) {
  // milliseconds::rep is int64: 2^63-1 ms is the largest; hours overflow much sooner.
  EXPECT_EQ(parse_duration("9223372036854775807ms"),
            milliseconds(std::numeric_limits<std::int64_t>::max()));
  EXPECT_FALSE(parse_duration("9223372036854775808ms").has_value());
  EXPECT_EQ(parse_duration("2562047788015h"), milliseconds(2'562'047'788'015LL * 3'600'000));
  EXPECT_FALSE(parse_duration("2562047788016h").has_value());
  EXPECT_FALSE(parse_duration("99999999999999999999s").has_value());
}

TEST(ParseSize, Units) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
  EXPECT_EQ(parse_size("16MiB"), 16u * 1024 * 1024);
  EXPECT_EQ(parse_size("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(parse_size("0KiB"), 0u);
}

TEST(ParseSize, RejectsOtherForms) {
  for (std::string_view bad :
       {"", "KiB", "64KB", "64kb", "64K", "64kib", "1.5MiB", "-1", "64 KiB", "1TiB", "1B"}) {
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  }
}

TEST(ParseSize, Overflow) {
  // 2^34 GiB is 2^64 bytes: one too many.
  EXPECT_EQ(parse_size("17179869183GiB"), std::uint64_t{17179869183} << 30);
  EXPECT_FALSE(parse_size("17179869184GiB").has_value());
  EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_FALSE(parse_size("18446744073709551616").has_value());
  EXPECT_FALSE(parse_size("18014398509481984KiB").has_value());  // 2^54 KiB = 2^64
}

TEST(ParseRate, Units) {
  auto per_second = parse_rate("100/s");
  ASSERT_TRUE(per_second);
  EXPECT_EQ(per_second->tokens, 100u);
  EXPECT_EQ(per_second->per, milliseconds(1'000));
  auto per_minute = parse_rate("10/m");
  ASSERT_TRUE(per_minute);
  EXPECT_EQ(per_minute->tokens, 10u);
  EXPECT_EQ(per_minute->per, milliseconds(60'000));
  auto per_hour = parse_rate("5/h");
  ASSERT_TRUE(per_hour);
  EXPECT_EQ(per_hour->tokens, 5u);
  EXPECT_EQ(per_hour->per, milliseconds(3'600'000));
  // Zero is syntactically a rate; the loader rejects it with its own message.
  auto zero = parse_rate("0/s");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->tokens, 0u);
}

TEST(ParseRate, RejectsOtherForms) {
  for (std::string_view bad : {"", "100", "/s", "100/", "100/d", "100/sec", "1.5/s", "-1/s",
                               "100 /s", "100/ s", "100/S", "100/s/s", "99999999999999999999/s"}) {
    EXPECT_FALSE(parse_rate(bad).has_value()) << bad;
  }
}

TEST(ParseHostPort, HostsAndIpv4) {
  auto a = parse_host_port("10.0.1.10:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "10.0.1.10");
  EXPECT_EQ(a->port, 8080);
  auto b = parse_host_port("api.internal:443");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "api.internal");
  EXPECT_EQ(b->port, 443);
  auto c = parse_host_port("my_host-1:1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "my_host-1");
  auto zero = parse_host_port("0.0.0.0:0");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->port, 0);
  auto max = parse_host_port("h:65535");
  ASSERT_TRUE(max);
  EXPECT_EQ(max->port, 65535);
}

TEST(ParseHostPort, BracketedIpv6) {
  auto any = parse_host_port("[::]:8080");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "::");
  EXPECT_EQ(any->port, 8080);
  auto full = parse_host_port("[2001:db8::10]:8443");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->host, "2001:db8::10");
  EXPECT_EQ(full->port, 8443);
  auto zone = parse_host_port("[fe80::1%eth0]:80");
  ASSERT_TRUE(zone);
  EXPECT_EQ(zone->host, "fe80::1%eth0");
  auto mapped = parse_host_port("[::ffff:10.0.0.1]:80");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->host, "::ffff:10.0.0.1");
}

TEST(ParseHostPort, BadPorts) {
  for (std::string_view bad : {"h:65536", "h:99999", "h:123456", "h:-1", "h:+80", "h:", "h:8o",
                               "h:80 ", "[::1]:", "[::1]:65536", "h:0x50"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

TEST(ParseHostPort, BadShapes) {
  for (std::string_view bad :
       {"", "10.0.0.1", ":80", "::1:80", "[::1]80", "[::1", "::1]:80", "[]:80", "a b:80", "h/x:80",
        "host:80:90", "[::1]:80:90", "http://h:80", "*:80"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace meridian
