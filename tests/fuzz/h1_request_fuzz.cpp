// libFuzzer target: the HTTP/1.1 request head parser and its validation (RFC 9112, refused
// input), the body decoding that follows the head (chunked or sized), and the header rewrite
// of an accepted head. Property checked beyond "no crash": the upstream head written for an
// accepted request parses again as a request with the same method, target and body framing,
// so the backend never sees something meridian did not parse as one request.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/parser.hpp"

using namespace meridian;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static http::RequestParser parser;
  // Limits well under libFuzzer's default input length (4096), so the 414/431 paths are
  // reached too.
  parser.reset({1024, 16, 1 << 20});
  const std::size_t head_length = parser.parse_head(input);
  if (parser.error() || head_length == 0) return 0;
  check(head_length <= input.size());
  const auto& head = parser.head();

  // The rewrite of an accepted head, and the property above.
  std::string upstream;
  const http::RequestForwarding fwd{"192.0.2.1",      "http",
                                    "1.1 fuzz",       "0123456789abcdef",
                                    "origin.test:80", http::is_websocket_upgrade(head)};
  http::write_upstream_request(head, fwd, upstream);
  static http::RequestParser again;
  again.reset({1 << 20, 1024, 0});
  const std::size_t n = again.parse_head(upstream);
  check(!again.error() && n == upstream.size());
  check(again.head().method == head.method);
  check(again.head().target == head.target);
  check(again.head().chunked == head.chunked);
  check(again.head().content_length == head.content_length);

  // The body, fed in pieces as sessions do: what was consumed is never more than given.
  std::string_view rest = input.substr(head_length);
  http::BodySlices slices;
  while (!rest.empty() && !parser.done() && !parser.error()) {
    slices.clear();
    const std::size_t consumed = parser.parse_body(rest, slices);
    check(consumed <= rest.size());
    std::size_t decoded = 0;
    for (auto s : slices)
      decoded += s.size();
    check(decoded <= consumed);
    if (consumed == 0) break;  // needs more than there is
    rest.remove_prefix(consumed);
  }
  return 0;
}
