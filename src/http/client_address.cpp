#include "meridian/http/client_address.hpp"

#include <optional>
#include <string>

namespace meridian::http {

namespace ip = boost::asio::ip;

namespace {

// "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]:80".
std::optional<ip::address> parse_entry(std::string_view entry) {
  if (entry.empty() || entry.size() > 64) return std::nullopt;
  if (entry.front() == '[') {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    entry = entry.substr(1, close - 1);
  } else if (entry.find(':') == entry.rfind(':') && entry.find(':') != std::string_view::npos) {
    entry = entry.substr(0, entry.find(':'));  // IPv4 with a port
  }
  char text[65];
  entry.copy(text, entry.size());
  text[entry.size()] = '\0';
  boost::system::error_code ec;
  const auto a = ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return unmap(a);
}

}  // namespace

ip::address unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

bool is_trusted(const ip::address& a, std::span<const config::Cidr> trusted) {
  for (const auto& c : trusted) {
    if (c.contains(a)) return true;
  }
  return false;
}

ip::address settle_client_address(const ip::address& peer, const RequestHead& head,
                                  std::span<const config::Cidr> trusted) {
  ip::address client = unmap(peer);
  if (trusted.empty() || !is_trusted(client, trusted)) return client;
  // Walk the X-Forwarded-For fields from the last one back, each list from its right end.
  for (auto f = head.fields.rbegin(); f != head.fields.rend(); ++f) {
    if (!iequals(f->name, "x-forwarded-for")) continue;
    std::string_view list = f->value;
    while (!list.empty()) {
      const auto comma = list.rfind(',');
      const auto entry = trim_ows(comma == std::string_view::npos ? list : list.substr(comma + 1));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(0, comma);
      if (entry.empty()) continue;
      const auto a = parse_entry(entry);
      if (!a) return client;
      client = *a;
      if (!is_trusted(client, trusted)) return client;
    }
  }
  return client;  // every hop was trusted: the leftmost one is the best we know
}

}  // namespace meridian::http
