// The header rules (docs/http-behaviour.md, headers): what a request looks like when it leaves
// for the upstream, and what a response looks like when it goes back to the client. Pure
// functions over the protocol-neutral heads (message_head.hpp), so HTTP/2 reuses them; the
// output is always an HTTP/1.1 head because upstream connections are HTTP/1.1.
#pragma once

#include <string>
#include <string_view>

#include "meridian/config/config.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

// Hop-by-hop headers (RFC 9110 7.6.1): never forwarded in either direction.
bool is_hop_by_hop(std::string_view name) noexcept;

struct RequestForwarding {
  std::string_view peer_address;  // appended to X-Forwarded-For: who connected to us
  std::string_view proto;         // X-Forwarded-Proto: "http" or "https"
  std::string_view via;           // e.g. "1.1 edge-fra-1"
  std::string_view request_id;    // X-Request-Id to add when the request has none
  std::string_view default_host;  // Host to send when the request has none (HTTP/1.0)
  // A WebSocket handshake (is_websocket_upgrade): its Upgrade field passes, with
  // "Connection: Upgrade" (the one exception to the hop-by-hop rule).
  bool upgrade = false;
  // tracing.propagate: w3c: the traceparent to send (replacing the client's), and whether
  // the client's tracestate goes with it (it does when its trace is continued). Empty: off.
  std::string_view traceparent = {};
  bool keep_tracestate = false;
  // The route's headers.request rules, applied after meridian's own; null when none.
  const config::HeaderRules* rules = nullptr;
};

// An HTTP/1.1 GET without a body asking to switch to WebSocket (RFC 6455 4.1): "Upgrade:
// websocket" and "upgrade" among the Connection tokens.
bool is_websocket_upgrade(const RequestHead& head);

// Writes the upstream request head into `out` (replacing its contents). Framing follows the
// parsed head: "Transfer-Encoding: chunked" for a chunked body (the session re-encodes the
// chunks it decoded), Content-Length for a sized one, nothing for no body. Expect is dropped:
// meridian answers 100-continue itself.
void write_upstream_request(const RequestHead& head, const RequestForwarding& fwd,
                            std::string& out);

// The X-Request-Id the request carries, or empty.
std::string_view request_id_of(const RequestHead& head);

struct ResponseForwarding {
  std::string_view via;
  bool chunked = false;        // the body goes to the client chunked (re-encoded)
  bool close = false;          // meridian closes the client connection after this response
  bool keep_alive_10 = false;  // an HTTP/1.0 client that asked for keep-alive, and gets it
  std::string_view region;     // debug headers, when not empty (debug_headers: true)
  std::string_view endpoint;
  // meridian's RateLimit-* lines, complete "Name: value\r\n" lines, or empty. When present,
  // the origin's own RateLimit-Limit/-Remaining/-Reset fields are dropped.
  std::string_view rate_limit_headers;
  // A 101 answering a WebSocket handshake: the Upgrade field passes, with "Connection:
  // Upgrade" and no framing; the connection becomes a tunnel after it.
  bool upgrade = false;
  // The affinity cookie for the client, a complete "Set-Cookie: ...\r\n" line, or empty.
  std::string_view set_cookie = {};
  // The route's headers.response rules, applied after meridian's own; null when none.
  const config::HeaderRules* rules = nullptr;
};

// Writes the client response head into `out` (replacing its contents).
void write_downstream_response(const ResponseHead& head, const ResponseForwarding& fwd,
                               std::string& out);

// The last chunk of a chunked body with its trailer section (RFC 9112 7.1.2), into `out`:
// the trailer fields that may pass (not framing, routing or connection fields, RFC 9110
// 6.5.1), for the HTTP/1.1 client of an origin that sent trailers.
void write_last_chunk(const std::vector<Field>& trailers, std::string& out);

// A response meridian gives itself (docs/http-behaviour.md, answers meridian gives itself):
// short text/plain body naming the cause. `extra_headers` is zero or more complete "Name:
// value\r\n" lines.
void write_local_reply(unsigned status, std::string_view cause, bool close, std::string_view via,
                       std::string_view extra_headers, std::string& out);

std::string_view reason_phrase(unsigned status) noexcept;

}  // namespace meridian::http
