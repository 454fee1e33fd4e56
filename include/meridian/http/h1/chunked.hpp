// The HTTP/1.1 chunked coding (RFC 9112 7.1), writing side: a body's pieces framed as one
// chunk each time they are handed over, and the last chunk. The one chunk encoder of the proxy:
// the response to an HTTP/1.1 client and the request to an HTTP/1.1 origin are both re-chunked
// with it (the reading side is the codec's, parser.hpp).
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "meridian/http/h1/parser.hpp"

namespace meridian::http::h1 {

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
// Room for a chunk's size line: 16 hex digits and CRLF.
inline constexpr std::size_t kChunkLineSize = 24;

// "<size in hex>\r\n" into `line` (kChunkLineSize bytes); returns its length.
inline std::size_t chunk_line(char* line, std::uint64_t n) {
  auto r = std::to_chars(line, line + 16, n, 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  return static_cast<std::size_t>(r.ptr - line);
}

// Appends `pieces` to `out` as they are, or framed as one chunk (its size line written into
// `line`) when `chunked`; nothing for no bytes (a zero-size chunk would end the body).
inline void frame_body(const BodySlices& pieces, bool chunked, char* line,
                       std::vector<boost::asio::const_buffer>& out) {
  std::uint64_t n = 0;
  for (auto s : pieces)
    n += s.size();
  if (n == 0) return;
  if (chunked) out.emplace_back(line, chunk_line(line, n));
  for (auto s : pieces)
    out.emplace_back(s.data(), s.size());
  if (chunked) out.emplace_back(kCrlf.data(), kCrlf.size());
}

}  // namespace meridian::http::h1
