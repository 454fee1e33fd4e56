// HTTP/2 messages in the proxy's protocol-neutral terms (RFC 9113 section 8), so that a
// stream is routed, rate-limited, forwarded and logged by the same code as an HTTP/1.1
// request. nghttp2 does the framing, HPACK and the RFC 9113 field syntax checks (no upper
// case names, no connection-specific fields, pseudo-fields first, Content-Length equal to
// the DATA received); this file adds what the proxy needs on top: header list limits, the
// request as a RequestHead (Host from :authority, cookies joined, body framing for the
// HTTP/1.1 upstream), and response heads as HTTP/2 fields, encoded directly from the
// structured head.
//
// Thread: one owner (a stream on one worker).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/parser.hpp"
#include "meridian/http/h2/codec.hpp"
#include "meridian/http/message_head.hpp"
#include "meridian/http/trailer_fields.hpp"

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

  // A trailer field, after the body (copies). A section larger than the head limits is
  // dropped whole: the request is under way, so nothing can be refused any more.
  void add_trailer(std::string_view name, std::string_view value);
  // Clears, and frees the storage of a header block larger than `keep` bytes (the rest is
  // reused).
  void trim(std::size_t keep);
  // The trailer section is complete: trailers() holds it (valid until reset()).
  void finish_trailers();
  const std::vector<Field>& trailers() const { return trailers_.fields(); }

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
  TrailerFields trailers_;
  bool trailers_dropped_ = false;
};

// The upstream request as HTTP/2 fields: :method, :scheme (`scheme`), :authority (the
// request's host), :path, then what the header rules let through or add (the same rules as
// the HTTP/1.1 head, forwarding.hpp) without Host and the connection-specific fields;
// content-length when the body's length is known, and "te: trailers" when the client asked
// for trailers with it (gRPC does; RFC 9113 8.2.2 allows nothing else in TE).
void encode_request(const RequestHead& head, const RequestForwarding& fwd, std::string_view scheme,
                    h2::FieldBlock& out);

// The client's response head as HTTP/2 fields: :status, then what the header rules let
// through (the same rules as the HTTP/1.1 head, forwarding.hpp), without the HTTP/1.1
// connection-specific fields (RFC 9113 8.2.2); the body is framed by DATA frames.
void encode_response(const ResponseHead& head, const ResponseForwarding& fwd, h2::FieldBlock& out);

// Trailer fields as an HTTP/2 header block (forwarding.hpp, write_last_chunk, for the rules).
void encode_trailers(const std::vector<Field>& trailers, h2::FieldBlock& out);

// A response meridian gives itself (forwarding.hpp, write_local_reply): :status,
// content-type, content-length, via and `extra_headers` ("Name: value\r\n" lines). Its body
// is local_reply_body(cause).
void encode_local_reply(unsigned status, std::string_view cause, std::string_view via,
                        std::string_view extra_headers, h2::FieldBlock& out);
std::string local_reply_body(std::string_view cause);

}  // namespace meridian::http
