#include "config/cidr.hpp"

#include "meridian/core/units.hpp"

#include "config/diagnostics.hpp"

namespace meridian::config {
namespace {

namespace ip = boost::asio::ip;

// True when the first `prefix` bits of `a` and `b` agree. Both arrays have the same size.
template <class Bytes>
bool same_prefix(const Bytes& a, const Bytes& b, unsigned prefix) {
  unsigned whole = prefix / 8;
  for (unsigned i = 0; i < whole; ++i) {
    if (a[i] != b[i]) return false;
  }
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

template <class Bytes>
void clear_host_bits(Bytes& bytes, unsigned prefix) {
  for (unsigned i = 0; i < bytes.size(); ++i) {
    unsigned first_bit = i * 8;
    if (first_bit >= prefix) {
      bytes[i] = 0;
    } else if (prefix - first_bit < 8) {
      bytes[i] &= static_cast<unsigned char>(0xff << (8 - (prefix - first_bit)));
    }
  }
}

}  // namespace

bool Cidr::contains(const ip::address& a) const {
  ip::address candidate = a;
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they belong to IPv4 blocks,
  // and a plain IPv4 address belongs to a ::ffff:0:0/96-style block.
  if (network.is_v4() && a.is_v6() && a.to_v6().is_v4_mapped()) {
    candidate = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  } else if (network.is_v6() && a.is_v4()) {
    candidate = ip::make_address_v6(ip::v4_mapped, a.to_v4());
  }
  if (network.is_v4() != candidate.is_v4()) return false;
  if (network.is_v4()) {
    return same_prefix(network.to_v4().to_bytes(), candidate.to_v4().to_bytes(), prefix_length);
  }
  return same_prefix(network.to_v6().to_bytes(), candidate.to_v6().to_bytes(), prefix_length);
}

namespace detail {

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
  auto slash = text.find('/');
  std::string address_text(text.substr(0, slash));
  boost::system::error_code ec;
  auto address = ip::make_address(address_text, ec);
  // Zone ids ("fe80::1%eth0") name an interface, not a block.
  if (ec || address_text.find('%') != std::string::npos) {
    error = "expected a CIDR block like 10.0.0.0/8 or 2001:db8::/32, got " + quoted(text);
    return std::nullopt;
  }
  unsigned max_prefix = address.is_v4() ? 32 : 128;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto parsed = parse_uint(text.substr(slash + 1));
    if (!parsed || *parsed > max_prefix) {
      error = "prefix length must be between 0 and " + std::to_string(max_prefix) + ", got " +
              quoted(text);
      return std::nullopt;
    }
    prefix = static_cast<unsigned>(*parsed);
  }
  Cidr out;
  out.prefix_length = prefix;
  if (address.is_v4()) {
    auto bytes = address.to_v4().to_bytes();
    clear_host_bits(bytes, prefix);
    out.network = ip::address_v4(bytes);
  } else {
    auto bytes = address.to_v6().to_bytes();
    clear_host_bits(bytes, prefix);
    out.network = ip::address_v6(bytes);
  }
  return out;
}

}  // namespace detail
}  // namespace meridian::config
