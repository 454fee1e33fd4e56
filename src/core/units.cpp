// Parsers for the configuration's value syntaxes (docs/configuration.md, value syntax). Each
// accepts exactly the documented forms and returns nullopt for anything else, including values
// that would overflow, so the config loader can report the offending text instead of silently
// clamping it.
#include "meridian/core/units.hpp"

#include <charconv>
#include <limits>

namespace meridian {
namespace {

// Splits `text` into a leading run of ASCII digits and the rest.
std::pair<std::string_view, std::string_view> split_digits(std::string_view text) {
  std::size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9')
    ++n;
  return {text.substr(0, n), text.substr(n)};
}

// `value * factor`, or nullopt when the product does not fit in `limit`.
std::optional<std::uint64_t> checked_multiply(std::uint64_t value, std::uint64_t factor,
                                              std::uint64_t limit) {
  if (factor != 0 && value > limit / factor) return std::nullopt;
  return value * factor;
}

}  // namespace

std::optional<std::uint64_t> parse_uint(std::string_view text) {
  auto [digits, rest] = split_digits(text);
  if (digits.empty() || !rest.empty()) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto [digits, unit] = split_digits(text);
  auto value = parse_uint(digits);
  if (!value) return std::nullopt;
  std::uint64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 60 * 60 * 1000;
  } else {
    return std::nullopt;
  }
  using Rep = std::chrono::milliseconds::rep;
  auto ms =
      checked_multiply(*value, factor, static_cast<std::uint64_t>(std::numeric_limits<Rep>::max()));
  if (!ms) return std::nullopt;
  return std::chrono::milliseconds{static_cast<Rep>(*ms)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto [digits, unit] = split_digits(text);
  auto value = parse_uint(digits);
  if (!value) return std::nullopt;
  std::uint64_t factor = 0;
  if (unit.empty()) {
    factor = 1;
  } else if (unit == "KiB") {
    factor = std::uint64_t{1} << 10;
  } else if (unit == "MiB") {
    factor = std::uint64_t{1} << 20;
  } else if (unit == "GiB") {
    factor = std::uint64_t{1} << 30;
  } else {
    return std::nullopt;
  }
  return checked_multiply(*value, factor, std::numeric_limits<std::uint64_t>::max());
}

std::optional<ParsedRate> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto tokens = parse_uint(text.substr(0, slash));
  if (!tokens) return std::nullopt;
  auto unit = text.substr(slash + 1);
  using std::chrono::milliseconds;
  if (unit == "s") return ParsedRate{*tokens, milliseconds{1000}};
  if (unit == "m") return ParsedRate{*tokens, milliseconds{60 * 1000}};
  if (unit == "h") return ParsedRate{*tokens, milliseconds{60 * 60 * 1000}};
  return std::nullopt;
}

namespace {

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A host name or dotted IPv4 address: letters, digits, '-', '.', '_'. Whether it resolves is
// the loader's business; this only rejects text that cannot be a host at all.
bool is_plain_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

// The inside of "[...]": hex digits, ':' and '.', plus a "%zone" suffix for link-local.
bool is_bracketed_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    if (!is_alnum(c) && c != ':' && c != '.' && c != '%' && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    if (!is_bracketed_host(host)) return std::nullopt;
  } else {
    // Exactly one ':' — an unbracketed IPv6 address is ambiguous and rejected.
    auto colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (!is_plain_host(host)) return std::nullopt;
  }
  if (port_text.size() > 5) return std::nullopt;
  auto port = parse_uint(port_text);
  if (!port || *port > 65535) return std::nullopt;
  return HostPort{std::string(host), static_cast<std::uint16_t>(*port)};
}

std::string format_host_port(const boost::asio::ip::address& address, std::uint16_t port) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on chained operator+.
  std::string text;
  if (address.is_v6()) text.push_back('[');
  text.append(address.to_string());
  if (address.is_v6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(port));
  return text;
}

}  // namespace meridian
