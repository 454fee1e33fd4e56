// gRPC over HTTP/2, as an edge proxy sees it (github.com/grpc/grpc, doc/PROTOCOL-HTTP2.md):
// telling a gRPC request apart, its deadline (grpc-timeout), and the answers meridian gives
// itself to one -- a "trailers-only" response (HTTP 200, content-type application/grpc and
// grpc-status/grpc-message in the one HEADERS frame), since a gRPC client reads the status
// from there, not from :status. Pure functions; the HTTP/2 session sends the fields.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http::grpc {

// Status codes (doc/statuscodes.md) meridian answers with.
enum Status : unsigned {
  kOk = 0,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
};

// content-type application/grpc, alone or with a subtype ("application/grpc+proto").
bool is_grpc(const RequestHead& head);

// The grpc-timeout field's value ("100m", "5S": at most 8 digits and a unit of H, M, S, m,
// u or n), or nothing when it is absent or malformed (no deadline then).
std::optional<std::chrono::nanoseconds> timeout(const RequestHead& head);

// The gRPC status for an answer meridian would give an HTTP client with `http_status`:
// 429 and the size limits RESOURCE_EXHAUSTED, 504 and 408 DEADLINE_EXCEEDED, 502 and 503
// (no eligible region, upstream failure) UNAVAILABLE, 404 UNIMPLEMENTED, other 4xx
// INTERNAL (a request the proxy refused), UNKNOWN otherwise.
Status status_for(unsigned http_status);

// grpc-message as the protocol wants it: percent-encoded outside printable ASCII and '%'.
std::string encode_message(std::string_view text);

// A trailers-only answer: :status 200, content-type application/grpc, grpc-status,
// grpc-message (`cause`), via, and `extra_headers` ("Name: value\r\n" lines: RateLimit-*,
// Retry-After).
void encode_local_reply(Status status, std::string_view cause, std::string_view via,
                        std::string_view extra_headers, h2::FieldBlock& out);

}  // namespace meridian::http::grpc
