// Protocol-neutral views of a request or response head. The HTTP/1.1 codec (h1/parser.hpp) and
// the HTTP/2 one (h2/message.hpp) fill the same types, so the proxy logic above never sees wire
// syntax. Every string_view points into the codec's buffer and is valid only until the
// codec's owner discards that buffer region (see each codec's contract).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace meridian::http {

struct Field {
  std::string_view name;   // as received; compare case-insensitively
  std::string_view value;  // leading and trailing whitespace already removed
};

// ASCII case-insensitive equality, for header names and tokens. Inline: it runs for every
// field of every message, mostly against constants of another length.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// `s` without leading and trailing optional whitespace (SP and HTAB, RFC 9110 5.6.3).
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

struct RequestHead {
  std::string_view method;
  std::string_view target;  // origin-form ("/p?q"), or "*" for OPTIONS
  std::string_view path;    // target without the query
  std::string_view host;    // from Host (or the absolute-form authority); lower-case not applied
  unsigned version = 11;    // 10 or 11
  std::vector<Field> fields;
  std::optional<std::uint64_t> content_length;  // framing: a Content-Length body
  bool chunked = false;                         // framing: a chunked body
  bool keep_alive = true;                       // the client allows reuse after this exchange
  bool expect_continue = false;                 // Expect: 100-continue

  bool has_body() const { return chunked || (content_length && *content_length > 0); }
  const Field* find(std::string_view name) const;
  void clear();
};

struct ResponseHead {
  unsigned status = 0;
  std::string_view reason;
  unsigned version = 11;
  std::vector<Field> fields;
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = true;  // the origin allows reuse of the upstream connection
  bool has_body = true;    // false for HEAD answers, 1xx, 204 and 304
  bool until_eof = false;  // body delimited by the origin closing the connection

  const Field* find(std::string_view name) const;
  void clear();
};

// Methods meridian may retry after a failure before any response byte: the idempotent ones
// (RFC 9110 9.2.2).
bool is_idempotent(std::string_view method) noexcept;

}  // namespace meridian::http
