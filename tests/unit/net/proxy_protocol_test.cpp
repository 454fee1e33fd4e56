#include "meridian/net/proxy_protocol.hpp"

#include <string>

#include <gtest/gtest.h>

namespace meridian::net {
namespace {

using config::ProxyProtocol;
using Status = ProxyHeader::Status;

std::string v2(unsigned char version_command, unsigned char family, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(version_command);
  h += static_cast<char>(family);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xFF);
  return h + body;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b)
    s += static_cast<char>(c);
  return s;
}

TEST(ProxyProtocol, V1Tcp4) {
  const std::string h = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
  const auto r = parse_proxy_header(h + "GET / HTTP/1.1\r\n", ProxyProtocol::v1);
  ASSERT_EQ(r.status, Status::done) << r.error;
  EXPECT_EQ(r.length, h.size());
  EXPECT_EQ(r.source->to_string(), "192.0.2.10");
  EXPECT_EQ(r.source_port, 56324);
}

TEST(ProxyProtocol, V1Tcp6AndUnknown) {
  auto r = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", ProxyProtocol::any);
  ASSERT_EQ(r.status, Status::done) << r.error;
  EXPECT_EQ(r.source->to_string(), "2001:db8::1");
  r = parse_proxy_header("PROXY UNKNOWN whatever follows\r\n", ProxyProtocol::v1);
  ASSERT_EQ(r.status, Status::done);
  EXPECT_FALSE(r.source);
  r = parse_proxy_header("PROXY UNKNOWN\r\n", ProxyProtocol::v1);
  EXPECT_EQ(r.status, Status::done);
}

TEST(ProxyProtocol, V1IncompleteUntilCrlf) {
  const std::string h = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(h.substr(0, n), ProxyProtocol::v1).status, Status::incomplete)
        << n;
  }
}

TEST(ProxyProtocol, V1Malformed) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\n",      // LF only
           "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\rX",     // CR without LF
           "PROXY TCP4 192.0.2.10  198.51.100.1 56324 443\r\n",   // two spaces
           "PROXY TCP4 192.0.2.10 198.51.100.1 56324\r\n",        // a port missing
           "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443 9\r\n",  // a field too many
           "PROXY TCP4 192.0.2.10 198.51.100.1 65536 443\r\n",    // port out of range
           "PROXY TCP4 192.0.2.10 198.51.100.1 0443 443\r\n",     // leading zero
           "PROXY TCP4 192.0.2.10 198.51.100.1 -1 443\r\n",       // sign
           "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",         // v6 address under TCP4
           "PROXY TCP6 192.0.2.10 2001:db8::2 1 2\r\n",           // v4 address under TCP6
           "PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",         // not an address
           "PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",          // unknown protocol
           "PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n",         // a zone
           "GET / HTTP/1.1\r\n",                                  // no header at all
       }) {
    const auto r = parse_proxy_header(bad, ProxyProtocol::v1);
    EXPECT_EQ(r.status, Status::invalid) << bad;
  }
  // Found by the fuzz target: a NUL inside an address ended Asio's C string early, and an LF
  // before the CRLF was taken as part of the line.
  using namespace std::string_literals;
  for (const auto& bad : {"PROXY TCP6 2001:db8::\0\0 2001:db8::2 1 2\r\n"s,
                          "PROXY TCP4 192.0.2.1\0x 198.51.100.1 1 2\r\n"s,
                          "PROXY TCP4 192.0.2.1 198.51.100.1 1\n 2\r\n"s}) {
    EXPECT_EQ(parse_proxy_header(bad, ProxyProtocol::v1).status, Status::invalid);
    EXPECT_EQ(parse_proxy_header(bad, ProxyProtocol::any).status, Status::invalid);
  }
  // CRLF ending at byte 108: one byte too long (the limit is 107 including CRLF).
  std::string line = "PROXY UNKNOWN ";
  line += std::string(106 - line.size(), 'x');
  ASSERT_EQ(line.size(), 106u);
  EXPECT_EQ(parse_proxy_header(line + "\r\n", ProxyProtocol::v1).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(line.substr(0, 105) + "\r\n", ProxyProtocol::v1).status,
            Status::done);
  // No CRLF within 107 bytes.
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 " + std::string(120, '1'), ProxyProtocol::v1).status,
            Status::invalid);
}

TEST(ProxyProtocol, V2Tcp4WithTlvs) {
  const std::string body = bytes({192, 0, 2, 10, 198, 51, 100, 1, 0xDC, 0x04, 0x01, 0xBB}) +
                           bytes({0x04, 0x00, 0x03, 'a', 'b', 'c'});  // a NOOP TLV
  const auto h = v2(0x21, 0x11, body);
  const auto r = parse_proxy_header(h + "GET /", ProxyProtocol::v2);
  ASSERT_EQ(r.status, Status::done) << r.error;
  EXPECT_EQ(r.length, h.size());
  EXPECT_EQ(r.source->to_string(), "192.0.2.10");
  EXPECT_EQ(r.source_port, 0xDC04);
}

TEST(ProxyProtocol, V2Tcp6) {
  std::string addresses(36, '\0');
  addresses[0] = 0x20;
  addresses[1] = 0x01;
  addresses[2] = 0x0d;
  addresses[3] = static_cast<char>(0xb8);
  addresses[15] = 0x07;
  addresses[33] = 0x50;  // source port 80 (bytes 32-33)
  const auto r = parse_proxy_header(v2(0x21, 0x21, addresses), ProxyProtocol::any);
  ASSERT_EQ(r.status, Status::done) << r.error;
  EXPECT_EQ(r.source->to_string(), "2001:db8::7");
  EXPECT_EQ(r.source_port, 80);
}

TEST(ProxyProtocol, V2LocalAndUnspecKeepThePeer) {
  auto r = parse_proxy_header(v2(0x20, 0x00, ""), ProxyProtocol::v2);
  ASSERT_EQ(r.status, Status::done);
  EXPECT_FALSE(r.source);
  EXPECT_EQ(r.length, 16u);
  r = parse_proxy_header(v2(0x21, 0x00, ""), ProxyProtocol::v2);
  ASSERT_EQ(r.status, Status::done);
  EXPECT_FALSE(r.source);
}

TEST(ProxyProtocol, V2IncompleteThenDone) {
  const auto h = v2(0x21, 0x11, bytes({10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2}));
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(h.substr(0, n), ProxyProtocol::v2).status, Status::incomplete)
        << n;
  }
  EXPECT_EQ(parse_proxy_header(h, ProxyProtocol::v2).status, Status::done);
}

TEST(ProxyProtocol, V2Malformed) {
  const std::string four = bytes({10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2});
  EXPECT_EQ(parse_proxy_header(v2(0x11, 0x11, four), ProxyProtocol::v2).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(v2(0x22, 0x11, four), ProxyProtocol::v2).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x12, four), ProxyProtocol::v2).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x41, four), ProxyProtocol::v2).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, four.substr(0, 8)), ProxyProtocol::v2).status,
            Status::invalid);
  EXPECT_EQ(
      parse_proxy_header(v2(0x21, 0x11, std::string(kMaxProxyHeaderV2, 'x')), ProxyProtocol::v2)
          .status,
      Status::invalid);
  std::string wrong = v2(0x21, 0x11, four);
  wrong[5] = 'X';  // signature damaged
  EXPECT_EQ(parse_proxy_header(wrong, ProxyProtocol::v2).status, Status::invalid);
  // A v1 header where v2 is required, and the reverse.
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r\n", ProxyProtocol::v2).status, Status::invalid);
  EXPECT_EQ(parse_proxy_header(v2(0x20, 0, ""), ProxyProtocol::v1).status, Status::invalid);
}

TEST(ProxyProtocol, AnyAcceptsConnectionsWithoutAHeader) {
  for (const char* plain :
       {"GET / HTTP/1.1\r\n", "POST", "PROPFIND / HTTP/1.1\r\n", "PUT", "\r\nGET"}) {
    EXPECT_EQ(parse_proxy_header(plain, ProxyProtocol::any).status, Status::absent) << plain;
  }
  for (const char* prefix : {"", "P", "PROX", "PROXY", "\r\n\r\n"}) {
    EXPECT_EQ(parse_proxy_header(prefix, ProxyProtocol::any).status, Status::incomplete) << prefix;
  }
}

}  // namespace
}  // namespace meridian::net
