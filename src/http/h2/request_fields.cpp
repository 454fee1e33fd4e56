#include "http/h2/request_fields.hpp"

#include <array>

namespace meridian::http::h2 {

namespace {

enum CharClass : std::uint8_t {
  kToken = 1,      // tchar
  kValue = 2,      // field-value octet: HTAB, SP, VCHAR, obs-text
  kAuthority = 4,  // RFC 3986 authority: unreserved, sub-delims, ":", "@", "[", "]", "%"
  kPath = 8,       // visible ASCII and obs-text, no space
  kScheme = 16,    // ALPHA, DIGIT, "+", "-", "."
};

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> c{};
  for (int i = 0; i < 256; ++i) {
    const bool alpha = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z');
    const bool digit = i >= '0' && i <= '9';
    std::uint8_t v = 0;
    if (alpha || digit) v |= kToken | kAuthority | kScheme;
    for (const char t : std::string_view("!#$%&'*+-.^_`|~")) {
      if (i == t) v |= kToken;
    }
    for (const char a : std::string_view("-._~!$&'()*+,;=:@[]%")) {
      if (i == a) v |= kAuthority;
    }
    if (i == '+' || i == '-' || i == '.') v |= kScheme;
    if (i == '\t' || (i >= 0x20 && i != 0x7f)) v |= kValue;
    if (i > 0x20 && i != 0x7f) v |= kPath;
    c[static_cast<std::size_t>(i)] = v;
  }
  return c;
}

constexpr std::array<std::uint8_t, 256> kClasses = make_classes();

bool all_of(std::string_view s, std::uint8_t cls) {
  for (const char ch : s) {
    if ((kClasses[static_cast<std::uint8_t>(ch)] & cls) == 0) return false;
  }
  return true;
}

bool equals_lower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != lower[i]) return false;
  }
  return true;
}

bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace

bool is_token(std::string_view s) {
  return !s.empty() && all_of(s, kToken);
}

bool is_lower_case_token(std::string_view s) {
  if (!is_token(s)) return false;
  for (const char c : s) {
    if (c >= 'A' && c <= 'Z') return false;
  }
  return true;
}

bool is_field_value(std::string_view s) {
  if (!s.empty() &&
      (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t')) {
    return false;
  }
  return all_of(s, kValue);
}

bool RequestFieldCheck::field(std::string_view name, std::string_view value) {
  if (!is_field_value(value)) return false;
  if (!name.empty() && name.front() == ':') {
    if (regular_seen) return false;  // pseudo-fields come first (8.3)
    std::uint8_t bit = 0;
    if (name == ":method") {
      if (!is_token(value)) return false;
      bit = kMethod;
      connect = value == "CONNECT";
      method_options = value == "OPTIONS";
    } else if (name == ":scheme") {
      if (value.empty() || !all_of(value, kScheme)) return false;
      bit = kScheme;
    } else if (name == ":authority") {
      if (!all_of(value, kAuthority)) return false;
      bit = kAuthority;
    } else if (name == ":path") {
      if (value.empty() || !all_of(value, kPath)) return false;
      if (value.front() != '/') {
        if (value != "*") return false;
        path_asterisk = true;
      }
      bit = kPath;
    } else {
      return false;  // a response's pseudo-field, or one we do not know (8.3)
    }
    if ((seen & bit) != 0) return false;  // each at most once
    seen = static_cast<std::uint8_t>(seen | bit);
    return true;
  }
  regular_seen = true;
  if (!is_lower_case_token(name) || connection_specific(name)) return false;
  if (name == "te") return equals_lower(value, "trailers");  // 8.2.2
  if (name == "host") {
    if (!all_of(value, kAuthority)) return false;
    seen = static_cast<std::uint8_t>(seen | kHost);
    return true;
  }
  if (name == "content-length") {
    if (content_length >= 0 || value.empty() || value.size() > 18) return false;
    std::int64_t n = 0;
    for (const char c : value) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + (c - '0');
    }
    content_length = n;
  }
  return true;
}

bool RequestFieldCheck::trailer(std::string_view name, std::string_view value) {
  // No pseudo-fields in trailers (8.1); the field rules as in the head.
  return is_lower_case_token(name) && !connection_specific(name) && is_field_value(value) &&
         (name != "te" || equals_lower(value, "trailers"));
}

bool RequestFieldCheck::complete() const {
  if (connect) {
    // CONNECT (8.5): :method and :authority, no :scheme or :path.
    return (seen & (kScheme | kPath)) == 0 && (seen & kAuthority) != 0;
  }
  if ((seen & (kMethod | kScheme | kPath)) != (kMethod | kScheme | kPath)) return false;
  if ((seen & (kAuthority | kHost)) == 0) return false;  // nghttp2's rule, kept
  return !path_asterisk || method_options;               // "*" only for OPTIONS (8.3.1)
}

}  // namespace meridian::http::h2
