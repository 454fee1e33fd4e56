// The RFC 9113 rules for a request's header block and its trailers (8.2, 8.3), one field at a
// time, for the server codec: lower-case token names, values without NUL, CR, LF or other
// control characters and without leading or trailing whitespace, no connection-specific
// fields, "te" only as "trailers", pseudo-fields only before the regular ones, only the four
// request pseudo-fields and each once, a single content-length of digits. A block breaking one
// of them is a malformed request: the stream is reset with PROTOCOL_ERROR (8.1.1).
//
// The state lives in the stream (references here), so a check costs no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace meridian::http::h2 {

struct RequestFieldCheck {
  enum Pseudo : std::uint8_t { kMethod = 1, kScheme = 2, kAuthority = 4, kPath = 8, kHost = 16 };

  std::uint8_t& seen;  // Pseudo bits (kHost: a host field)
  bool& regular_seen;
  std::int64_t& content_length;
  bool& method_options;
  bool& path_asterisk;
  bool& connect;

  bool field(std::string_view name, std::string_view value);
  bool trailer(std::string_view name, std::string_view value);
  // The block is complete: the pseudo-fields a request needs are there (8.3.1, 8.5).
  bool complete() const;
};

// RFC 9110 5.6.2 token characters, and the same restricted to lower case (field names).
bool is_token(std::string_view s);
bool is_lower_case_token(std::string_view s);
// RFC 9113 8.2.1: no NUL, CR, LF (nor other controls but HTAB), no leading/trailing SP/HTAB.
bool is_field_value(std::string_view s);

}  // namespace meridian::http::h2
