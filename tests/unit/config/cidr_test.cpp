// Cidr::contains and parse_cidr: the trust decision for X-Forwarded-For.
#include "config/cidr.hpp"

#include <gtest/gtest.h>

namespace meridian::config {
namespace {

namespace ip = boost::asio::ip;

Cidr block(std::string_view text) {
  std::string error;
  auto cidr = detail::parse_cidr(text, error);
  EXPECT_TRUE(cidr.has_value()) << text << ": " << error;
  return cidr.value_or(Cidr{});
}

bool contains(std::string_view cidr, const char* address) {
  return block(cidr).contains(ip::make_address(address));
}

TEST(Cidr, Ipv4Blocks) {
  EXPECT_TRUE(contains("10.0.0.0/8", "10.0.0.0"));
  EXPECT_TRUE(contains("10.0.0.0/8", "10.255.255.255"));
  EXPECT_FALSE(contains("10.0.0.0/8", "11.0.0.0"));
  EXPECT_FALSE(contains("10.0.0.0/8", "9.255.255.255"));
  EXPECT_TRUE(contains("192.168.1.0/24", "192.168.1.77"));
  EXPECT_FALSE(contains("192.168.1.0/24", "192.168.2.1"));
}

TEST(Cidr, PrefixesNotOnAByteBoundary) {
  EXPECT_TRUE(contains("172.16.0.0/12", "172.31.255.255"));
  EXPECT_FALSE(contains("172.16.0.0/12", "172.32.0.0"));
  EXPECT_FALSE(contains("172.16.0.0/12", "172.15.255.255"));
  EXPECT_TRUE(contains("10.0.0.128/25", "10.0.0.200"));
  EXPECT_FALSE(contains("10.0.0.128/25", "10.0.0.127"));
  EXPECT_TRUE(contains("2001:db8::/33", "2001:db8:7fff::1"));
  EXPECT_FALSE(contains("2001:db8::/33", "2001:db8:8000::1"));
}

TEST(Cidr, ZeroAndFullLength) {
  EXPECT_TRUE(contains("0.0.0.0/0", "1.2.3.4"));
  EXPECT_TRUE(contains("0.0.0.0/0", "255.255.255.255"));
  EXPECT_TRUE(contains("1.2.3.4/32", "1.2.3.4"));
  EXPECT_FALSE(contains("1.2.3.4/32", "1.2.3.5"));
  EXPECT_TRUE(contains("1.2.3.4", "1.2.3.4"));  // a bare address is a /32
  EXPECT_FALSE(contains("1.2.3.4", "1.2.3.5"));
  EXPECT_TRUE(contains("::1", "::1"));
  EXPECT_FALSE(contains("::1", "::2"));
}

TEST(Cidr, Ipv6Blocks) {
  EXPECT_TRUE(contains("2001:db8::/32", "2001:db8:1234::1"));
  EXPECT_FALSE(contains("2001:db8::/32", "2001:db9::1"));
  EXPECT_TRUE(contains("fd00::/8", "fdff:ffff::1"));
  EXPECT_FALSE(contains("fd00::/8", "fe00::1"));
}

TEST(Cidr, FamiliesDoNotMix) {
  EXPECT_FALSE(contains("10.0.0.0/8", "2001:db8::1"));
  EXPECT_FALSE(contains("2001:db8::/32", "10.0.0.1"));
  EXPECT_FALSE(contains("0.0.0.0/0", "::1"));
}

TEST(Cidr, Ipv4MappedAddressesMatchIpv4Blocks) {
  // What a dual-stack socket reports for an IPv4 peer.
  EXPECT_TRUE(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_FALSE(contains("10.0.0.0/8", "::ffff:11.1.2.3"));
  EXPECT_TRUE(contains("192.168.1.5", "::ffff:192.168.1.5"));
  // And the other way round: a ::ffff:0:0/96 block covers plain IPv4 addresses.
  EXPECT_TRUE(contains("::ffff:10.0.0.0/104", "10.9.9.9"));
  EXPECT_FALSE(contains("::ffff:10.0.0.0/104", "11.9.9.9"));
}

TEST(Cidr, HostBitsAreCleared) {
  auto cidr = block("10.1.2.3/8");
  EXPECT_EQ(cidr.network.to_string(), "10.0.0.0");
  EXPECT_EQ(cidr.prefix_length, 8u);
  auto v6 = block("2001:db8:ffff::1/32");
  EXPECT_EQ(v6.network.to_string(), "2001:db8::");
  auto odd = block("172.31.255.255/12");
  EXPECT_EQ(odd.network.to_string(), "172.16.0.0");
}

TEST(Cidr, RejectsMalformedBlocks) {
  for (std::string_view text :
       {"", "/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8", "::/129",
        "host.example/8", "10.0.0.0 /8", "fe80::1%eth0/64", "10.0.0.0/+8"}) {
    std::string error;
    EXPECT_FALSE(detail::parse_cidr(text, error).has_value()) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

}  // namespace
}  // namespace meridian::config
