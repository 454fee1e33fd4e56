// libFuzzer target: chunked body decoding (RFC 9112 7.1). The first input byte picks how the
// bytes are split across parse_body() calls, the rest is the body after a fixed chunked
// head. Properties: the decoded bytes, whether the body completes, and whether it is refused
// do not depend on how the input was split (a proxy must not decode differently depending
// on TCP segmentation); decoded bytes never exceed the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "meridian/http/h1/parser.hpp"

using namespace meridian;

namespace {

constexpr std::string_view kHead =
    "POST /upload HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n";

struct Outcome {
  std::string decoded;
  bool done = false;
  unsigned error = 0;
};

Outcome decode(std::string_view body, std::size_t step) {
  static http::RequestParser parser;
  parser.reset({4096, 32, 0});
  if (parser.parse_head(kHead) != kHead.size()) std::abort();
  Outcome out;
  std::string pending;  // what the parser left unconsumed, as a session keeps it
  std::size_t offset = 0;
  http::BodySlices slices;
  while (!parser.done() && !parser.error()) {
    const std::size_t take = std::min(step, body.size() - offset);
    pending.append(body.substr(offset, take));
    offset += take;
    slices.clear();
    const std::size_t consumed = parser.parse_body(pending, slices);
    if (consumed > pending.size()) std::abort();
    for (auto s : slices)
      out.decoded.append(s);
    pending.erase(0, consumed);
    if (take == 0 && consumed == 0) break;  // input exhausted
  }
  out.done = parser.done();
  out.error = parser.error().status;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t step = data[0] % 16 + 1;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const Outcome whole = decode(body, body.size() + 1);
  const Outcome split = decode(body, step);
  if (whole.decoded.size() > body.size()) std::abort();
  // Refusals may come at different points, but an accepted complete body must be the same.
  if (whole.done != split.done || (whole.error == 0) != (split.error == 0)) std::abort();
  if (whole.done && whole.decoded != split.decoded) std::abort();
  return 0;
}
