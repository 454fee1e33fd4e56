#include "meridian/http/client_address.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace meridian::http {
namespace {

namespace ip = boost::asio::ip;

config::Cidr cidr(const char* network, unsigned prefix) {
  return config::Cidr{ip::make_address(network), prefix};
}

RequestHead head_with(std::vector<Field> fields) {
  RequestHead h;
  h.fields = std::move(fields);
  return h;
}

TEST(ClientAddress, UntrustedPeerIsTheClientWhateverXffSays) {
  const std::vector<config::Cidr> trusted{cidr("10.0.0.0", 8)};
  const auto h = head_with({{"X-Forwarded-For", "203.0.113.7"}});
  EXPECT_EQ(settle_client_address(ip::make_address("198.51.100.1"), h, trusted).to_string(),
            "198.51.100.1");
}

TEST(ClientAddress, NoTrustedProxiesMeansPeer) {
  const auto h = head_with({{"X-Forwarded-For", "203.0.113.7"}});
  EXPECT_EQ(settle_client_address(ip::make_address("10.1.1.1"), h, {}).to_string(), "10.1.1.1");
}

TEST(ClientAddress, TrustedPeerTakesRightmostUntrustedEntry) {
  const std::vector<config::Cidr> trusted{cidr("10.0.0.0", 8)};
  const auto h = head_with({{"X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.2.2.2"}});
  EXPECT_EQ(settle_client_address(ip::make_address("10.1.1.1"), h, trusted).to_string(),
            "203.0.113.7");
}

TEST(ClientAddress, SeveralFieldsAreOneList) {
  const std::vector<config::Cidr> trusted{cidr("10.0.0.0", 8)};
  const auto h = head_with(
      {{"X-Forwarded-For", "198.51.100.9"}, {"Accept", "*/*"}, {"x-forwarded-for", "10.3.3.3"}});
  EXPECT_EQ(settle_client_address(ip::make_address("10.1.1.1"), h, trusted).to_string(),
            "198.51.100.9");
}

TEST(ClientAddress, AllTrustedGivesLeftmost) {
  const std::vector<config::Cidr> trusted{cidr("10.0.0.0", 8)};
  const auto h = head_with({{"X-Forwarded-For", "10.9.9.9, 10.2.2.2"}});
  EXPECT_EQ(settle_client_address(ip::make_address("10.1.1.1"), h, trusted).to_string(),
            "10.9.9.9");
}

TEST(ClientAddress, GarbageEntryStopsTheWalk) {
  const std::vector<config::Cidr> trusted{cidr("10.0.0.0", 8)};
  const auto h = head_with({{"X-Forwarded-For", "203.0.113.7, unknown, 10.2.2.2"}});
  // "unknown" cannot be placed, so the last trusted hop we could read is the answer.
  EXPECT_EQ(settle_client_address(ip::make_address("10.1.1.1"), h, trusted).to_string(),
            "10.2.2.2");
}

TEST(ClientAddress, PortsAndBracketsAndMappedAddresses) {
  const std::vector<config::Cidr> trusted{cidr("127.0.0.0", 8)};
  EXPECT_EQ(settle_client_address(ip::make_address("::ffff:127.0.0.1"),
                                  head_with({{"X-Forwarded-For", "203.0.113.7:5555"}}), trusted)
                .to_string(),
            "203.0.113.7");
  EXPECT_EQ(settle_client_address(ip::make_address("127.0.0.1"),
                                  head_with({{"X-Forwarded-For", "[2001:db8::5]:443"}}), trusted)
                .to_string(),
            "2001:db8::5");
  EXPECT_EQ(settle_client_address(ip::make_address("::ffff:198.51.100.1"), head_with({}), trusted)
                .to_string(),
            "198.51.100.1");
}

}  // namespace
}  // namespace meridian::http
