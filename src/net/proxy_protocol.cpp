#include "meridian/net/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace meridian::net {

namespace {

using Status = ProxyHeader::Status;
namespace ip = boost::asio::ip;

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1Max = 107;  // the longest v1 line, CRLF included
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t kV2Fixed = 16;

ProxyHeader invalid(std::string_view why) {
  ProxyHeader h;
  h.status = Status::invalid;
  h.error = why;
  return h;
}

// `data` is shorter than `whole` and could still become it.
bool is_prefix(std::string_view data, std::string_view whole) {
  return data.size() < whole.size() && whole.substr(0, data.size()) == data;
}

// The next space-separated field of a v1 line (exactly one space between fields).
std::string_view next_field(std::string_view& rest) {
  const auto space = rest.find(' ');
  const auto field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
  return field;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  // Decimal, no sign, no leading zero (the specification's form).
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  unsigned value = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), value);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<ip::address> parse_address(std::string_view s, bool v6) {
  // Asio's parsers want a NUL-terminated string; the longest address text is 45 bytes. Only
  // address characters are let through: a NUL inside would end the C string early and make
  // "2001:db8::\0junk" pass as 2001:db8:: (found by the proxy_protocol fuzz target).
  char text[64];
  if (s.empty() || s.size() >= sizeof text) return std::nullopt;
  for (const char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != '.' && c != ':') return std::nullopt;
  }
  std::copy(s.begin(), s.end(), text);
  text[s.size()] = '\0';
  boost::system::error_code ec;
  if (v6) {
    const auto a = ip::make_address_v6(text, ec);
    if (ec || a.scope_id() != 0) return std::nullopt;
    return ip::address(a);
  }
  const auto a = ip::make_address_v4(text, ec);
  if (ec) return std::nullopt;
  return ip::address(a);
}

ProxyHeader parse_v1(std::string_view data) {
  if (data.size() < kV1Prefix.size()) {
    return is_prefix(data, kV1Prefix) ? ProxyHeader{} : invalid("not a PROXY v1 header");
  }
  if (data.substr(0, kV1Prefix.size()) != kV1Prefix) return invalid("not a PROXY v1 header");
  const auto window = data.substr(0, kV1Max);
  const auto cr = window.find('\r');
  if (cr == std::string_view::npos) {
    if (window.find('\n') != std::string_view::npos) return invalid("PROXY v1 line without CR");
    return data.size() >= kV1Max ? invalid("PROXY v1 line longer than 107 bytes") : ProxyHeader{};
  }
  if (cr + 2 > kV1Max) return invalid("PROXY v1 line longer than 107 bytes");
  if (window.substr(0, cr).find('\n') != std::string_view::npos) {
    return invalid("PROXY v1 line without CR");  // an LF before the CRLF
  }
  if (cr + 1 >= data.size()) return ProxyHeader{};  // the LF is still to come
  if (data[cr + 1] != '\n') return invalid("PROXY v1 line: CR without LF");
  std::string_view rest = data.substr(kV1Prefix.size(), cr - kV1Prefix.size());
  ProxyHeader h;
  h.length = cr + 2;
  const auto protocol = next_field(rest);
  if (protocol == "UNKNOWN") {
    h.status = Status::done;  // the rest of the line is ignored, as the specification says
    return h;
  }
  if (protocol != "TCP4" && protocol != "TCP6") return invalid("PROXY v1: unknown protocol");
  const bool v6 = protocol == "TCP6";
  const auto source = parse_address(next_field(rest), v6);
  const auto destination = parse_address(next_field(rest), v6);
  const auto source_port = parse_port(next_field(rest));
  const auto destination_port = parse_port(next_field(rest));
  if (!source || !destination) return invalid("PROXY v1: bad address");
  if (!source_port || !destination_port || !rest.empty()) return invalid("PROXY v1: bad ports");
  h.status = Status::done;
  h.source = source;
  h.source_port = *source_port;
  return h;
}

std::uint16_t be16(std::string_view d, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(d[at]) << 8) |
                                    static_cast<unsigned char>(d[at + 1]));
}

ProxyHeader parse_v2(std::string_view data) {
  if (data.size() < kV2Signature.size()) {
    return is_prefix(data, kV2Signature) ? ProxyHeader{} : invalid("not a PROXY v2 header");
  }
  if (data.substr(0, kV2Signature.size()) != kV2Signature) return invalid("not a PROXY v2 header");
  if (data.size() < kV2Fixed) return ProxyHeader{};
  const auto version_command = static_cast<unsigned char>(data[12]);
  const auto family_transport = static_cast<unsigned char>(data[13]);
  if ((version_command >> 4) != 2) return invalid("PROXY v2: bad version");
  const unsigned command = version_command & 0xF;
  if (command > 1) return invalid("PROXY v2: bad command");
  const std::size_t length = kV2Fixed + be16(data, 14);
  if (length > kMaxProxyHeaderV2) return invalid("PROXY v2: header too long");
  if (data.size() < length) return ProxyHeader{};
  ProxyHeader h;
  h.status = Status::done;
  h.length = length;
  if (command == 0) return h;  // LOCAL: the balancer's own connection (a health check)
  const unsigned family = family_transport >> 4;
  const unsigned transport = family_transport & 0xF;
  if (family > 3 || transport > 2) return invalid("PROXY v2: bad address family");
  if (transport == 2) return invalid("PROXY v2: a datagram header on a stream");
  const std::size_t addresses = length - kV2Fixed;
  if (family == 1) {  // TCP over IPv4: source, destination, source port, destination port
    if (addresses < 12) return invalid("PROXY v2: short IPv4 addresses");
    ip::address_v4::bytes_type b;
    std::copy_n(data.data() + 16, 4, b.begin());
    h.source = ip::address(ip::address_v4(b));
    h.source_port = be16(data, 24);
  } else if (family == 2) {  // TCP over IPv6
    if (addresses < 36) return invalid("PROXY v2: short IPv6 addresses");
    ip::address_v6::bytes_type b;
    std::copy_n(data.data() + 16, 16, b.begin());
    h.source = ip::address(ip::address_v6(b));
    h.source_port = be16(data, 48);
  }
  // UNSPEC and UNIX carry no IP source: the peer stands. TLVs after the addresses are
  // skipped (length covers them).
  return h;
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view data, config::ProxyProtocol mode) {
  using config::ProxyProtocol;
  switch (mode) {
    case ProxyProtocol::v1:
      return parse_v1(data);
    case ProxyProtocol::v2:
      return parse_v2(data);
    case ProxyProtocol::any:
    case ProxyProtocol::off:
      break;
  }
  if (data.empty()) return ProxyHeader{};
  if (data[0] == 'P') {
    if (data.size() < kV1Prefix.size() && is_prefix(data, kV1Prefix)) return ProxyHeader{};
    if (data.substr(0, kV1Prefix.size()) == kV1Prefix) return parse_v1(data);
  } else if (data[0] == '\r') {
    if (data.size() < kV2Signature.size() && is_prefix(data, kV2Signature)) return ProxyHeader{};
    if (data.substr(0, kV2Signature.size()) == kV2Signature) return parse_v2(data);
  }
  ProxyHeader h;
  h.status = Status::absent;
  return h;
}

}  // namespace meridian::net
