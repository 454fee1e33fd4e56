// The PROXY protocol header an L4 balancer (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB,
// ...) puts in front of a connection to pass on the client's address (a listener's
// `proxy_protocol`, docs/configuration.md, listeners), versions 1 (text) and 2 (binary), as
// haproxy.org/download/2.6/doc/proxy-protocol.txt defines them.
//
// A pure function over the bytes received so far: no I/O, no allocation. It is strict -- a
// header that is not exactly right is invalid and the connection is closed, never guessed
// at -- because whoever can forge it chooses the client address that GeoIP, rate limits and
// X-Forwarded-For see.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "meridian/config/config.hpp"

namespace meridian::net {

struct ProxyHeader {
  enum class Status {
    incomplete,  // a prefix of a valid header: read more
    absent,      // mode `any` and the connection does not start with a header
    invalid,     // malformed, or missing where the mode requires one: close
    done,        // `length` bytes are the header
  };
  Status status = Status::incomplete;
  std::size_t length = 0;
  // The client's address, or none when the header carries none (v1 UNKNOWN, v2 LOCAL -- a
  // balancer's own health check -- or a family other than TCP over IPv4/IPv6): the
  // connection's peer stands then.
  std::optional<boost::asio::ip::address> source;
  std::uint16_t source_port = 0;
  std::string_view error;  // why it is invalid, for the debug log
};

// v1 headers are at most 107 bytes; v2 headers with TLVs beyond this are refused.
inline constexpr std::size_t kMaxProxyHeaderV2 = 16 + 2048;

// `mode` must not be off.
ProxyHeader parse_proxy_header(std::string_view data, config::ProxyProtocol mode);

}  // namespace meridian::net
