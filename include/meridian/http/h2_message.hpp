// HTTP/2 messages in the proxy's protocol-neutral terms (RFC 9113 section 8), so that a
// stream is routed, rate-limited, forwarded and logged by the same code as an HTTP/1.1
// request. nghttp2 does the framing, HPACK and the RFC 9113 field syntax checks (no upper
// case names, no connection-specific fields, pseudo-fields first, Content-Length equal to
// the DATA received); this file adds what the proxy needs on top: header list limits, the
// request as a RequestHead (Host from :authority, cookies joined, body framing for the
// HTTP/1.1 upstream), and a response head as HTTP/2 fields.
//
// Thread: one owner (a stream on one worker). No nghttp2 types here: the proxy module
// turns the fields into nghttp2_nv.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/http/h1_parser.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

// Collects one stream's request header block and describes it as a RequestHead.
class H2RequestBuilder {
 public:
  // Ready for a new header block; `limits` bound it as they bound an HTTP/1.1 head
  // (limits.max_request_header_bytes and max_request_headers): max_head_bytes counts each
  // field as name + value + 32 (RFC 7541 4.1, the same measure as
  // SETTINGS_MAX_HEADER_LIST_SIZE), max_fields the regular fields.
  void reset(const ParserLimits& limits);
  // One decoded field. Past a limit the rest is counted, not stored, and finish() reports 431.
  void add(std::string_view name, std::string_view value);
  // The block is complete; `has_body`: the stream stays open for DATA (no END_STREAM on
  // HEADERS). Fills head() (views into this object, valid until reset()) or error().
  void finish(bool has_body);

  const RequestHead& head() const { return head_; }
  const ParseError& error() const { return error_; }

 private:
  struct Span {
    std::uint32_t offset = 0;
    std::uint32_t length = 0;
  };
  Span store(std::string_view s);
  std::string_view view(Span s) const {
    return std::string_view(store_).substr(s.offset, s.length);
  }
  void fail(unsigned status, std::string_view reason);

  ParserLimits limits_;
  std::string store_;  // every name and value, back to back
  std::vector<std::pair<Span, Span>> fields_;
  Span method_, scheme_, authority_, path_;
  bool has_method_ = false, has_scheme_ = false, has_authority_ = false, has_path_ = false;
  std::string cookie_;  // the cookie crumbs joined with "; " (RFC 9113 8.2.3)
  bool has_cookie_ = false;
  std::uint64_t list_size_ = 0;
  std::uint32_t regular_fields_ = 0;
  RequestHead head_;
  ParseError error_;
};

// A response head for an HTTP/2 client: :status and the fields in lower case, without the
// HTTP/1.1 connection-specific ones (RFC 9113 8.2.2). Views into `store`.
struct H2ResponseFields {
  unsigned status = 0;
  std::vector<Field> fields;
  std::string store;
  std::string_view body;  // what followed the head in the text (a local reply's body)
};

// Converts an HTTP/1.1 response head, as write_downstream_response or write_local_reply
// wrote it (the header rules already applied), to HTTP/2 fields. False when the text is not a
// complete head (a bug: the writers produce complete heads).
bool to_h2_response(std::string_view h1_head, H2ResponseFields& out);

}  // namespace meridian::http
