// libFuzzer target: the PROXY protocol v1/v2 parser in every mode. Properties: a header is
// never longer than the input; a proper prefix of an accepted header is "incomplete"
// (so a header split across reads is read the same); a header accepted in v1 or v2 mode is
// accepted identically in `any` mode.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "meridian/net/proxy_protocol.hpp"

using meridian::config::ProxyProtocol;
using meridian::net::parse_proxy_header;
using Status = meridian::net::ProxyHeader::Status;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto mode : {ProxyProtocol::v1, ProxyProtocol::v2, ProxyProtocol::any}) {
    const auto h = parse_proxy_header(input, mode);
    if (h.status != Status::done) continue;
    if (h.length == 0 || h.length > input.size()) std::abort();
    // Every short prefix, and the longest ones (a v2 header may be 2 KiB: all would be slow).
    for (std::size_t n = 0; n < h.length; n = n < 128 || n + 8 >= h.length ? n + 1 : h.length - 8) {
      if (parse_proxy_header(input.substr(0, n), mode).status != Status::incomplete) std::abort();
    }
    const auto any = parse_proxy_header(input, ProxyProtocol::any);
    if (any.status != Status::done || any.length != h.length || any.source != h.source) {
      std::abort();
    }
  }
  return 0;
}
