// HTTP/1.1 message parser for both directions, on Boost.Beast's basic_parser.
//
// Beast does the tokenizing, Content-Length/chunked framing and chunk decoding; this class
// adds what an edge proxy needs on top (RFC 9112; docs/http-behaviour.md, input that is
// refused): it refuses obs-fold, a Transfer-Encoding that is not a final "chunked", Host
// errors, too many fields, unsupported versions, and it reports *which* status to answer.
// Fields are not copied: the views in head() point into the caller's buffer, which must stay
// unchanged until the caller has used them. Body bytes come out decoded (chunk framing
// removed), also as views into the caller's buffer. No allocation per message once the field
// vector has grown.
//
// Thread: one owner (a session on one worker).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/beast/http/basic_parser.hpp>

#include "meridian/http/message_head.hpp"
#include "meridian/http/trailer_fields.hpp"

namespace meridian::http {

// Why a message was refused, and the status to answer.
struct ParseError {
  unsigned status = 0;      // 0: no error
  std::string_view reason;  // short text for the local reply body and the log
  explicit operator bool() const { return status != 0; }
};

struct ParserLimits {
  std::uint64_t max_head_bytes = 64 * 1024;
  std::uint32_t max_fields = 100;
  std::uint64_t max_body_bytes = 0;  // 0 = unlimited
};

// Decoded body pieces produced by one parse_body() call.
using BodySlices = std::vector<std::string_view>;

template <bool IsRequest>
class H1Parser final {
 public:
  using Head = std::conditional_t<IsRequest, RequestHead, ResponseHead>;

  H1Parser() { head_.fields.reserve(32); }
  H1Parser(const H1Parser&) = delete;
  H1Parser& operator=(const H1Parser&) = delete;

  // Starts a new message. For responses, `head_request` tells that the request was HEAD
  // (no body follows whatever the headers say).
  void reset(const ParserLimits& limits, bool head_request = false);

  // Feeds the head. Returns the bytes consumed: 0 while the head is incomplete (call again
  // with more data, from the same start), or the head's length once it is complete.
  // On error returns 0 and error() is set.
  std::size_t parse_head(std::string_view data);

  // Feeds body bytes (after the head). Appends decoded pieces to `out` and returns the bytes
  // consumed; may consume less than given (call again with the rest after using `out`).
  std::size_t parse_body(std::string_view data, BodySlices& out);

  // For a body delimited by connection close: the origin closed, the message is complete.
  void finish_on_eof();

  bool head_done() const { return impl_ && impl_->is_header_done(); }
  bool done() const { return impl_ && impl_->is_done(); }
  const Head& head() const { return head_; }
  const ParseError& error() const { return error_; }
  // The trailer fields of a chunked body, once done() (copies: valid until reset()).
  const std::vector<Field>& trailers() const { return trailers_.fields(); }

 private:
  // Beast 1.81's basic_parser is an abstract class with virtual callbacks and no reset, so a
  // fresh one is emplaced per message (no heap allocation: we always pass one buffer).
  class Impl final : public boost::beast::http::basic_parser<IsRequest> {
   public:
    explicit Impl(H1Parser& owner) : owner_(owner) {}

   private:
    using string_view = boost::beast::string_view;
    using error_code = boost::beast::error_code;
    void on_request_impl(boost::beast::http::verb, string_view method, string_view target,
                         int version, error_code& ec) override {
      owner_.on_request(method, target, version, ec);
    }
    void on_response_impl(int code, string_view reason, int version, error_code& ec) override {
      owner_.on_response(code, reason, version, ec);
    }
    void on_field_impl(boost::beast::http::field f, string_view name, string_view value,
                       error_code& ec) override {
      owner_.on_field(f, name, value, ec);
    }
    void on_header_impl(error_code& ec) override { owner_.on_header(ec); }
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override {
      ec = {};
    }
    std::size_t on_body_impl(string_view body, error_code& ec) override {
      return owner_.on_body(body, ec);
    }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override { ec = {}; }
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
      return owner_.on_body(body, ec);
    }
    void on_finish_impl(error_code& ec) override {
      ec = {};
      owner_.on_finish();
    }

    H1Parser& owner_;
  };

  void on_request(std::string_view method, std::string_view target, int version,
                  boost::beast::error_code& ec);
  void on_response(int code, std::string_view reason, int version, boost::beast::error_code& ec);
  void on_field(boost::beast::http::field f, std::string_view name, std::string_view value,
                boost::beast::error_code& ec);
  void on_header(boost::beast::error_code& ec);
  std::size_t on_body(std::string_view body, boost::beast::error_code& ec);
  void on_trailer(std::string_view name, std::string_view value, boost::beast::error_code& ec);
  void on_finish();

  std::size_t find_head_end(std::string_view data);
  void fail_head(unsigned status, std::string_view reason);
  void fail(unsigned status, std::string_view reason, boost::beast::error_code& ec);
  void translate_beast_error(const boost::beast::error_code& ec, std::string_view data);

  std::optional<Impl> impl_;
  Head head_;
  ParseError error_;
  ParserLimits limits_;
  const char* input_begin_ = nullptr;  // the buffer given to parse_head, to spot obs-fold
  const char* input_end_ = nullptr;
  BodySlices* body_out_ = nullptr;
  std::size_t scanned_ = 0;         // find_head_end() resumes here
  std::size_t first_line_end_ = 0;  // offset after the start line's LF, 0 until seen
  unsigned host_count_ = 0;
  bool transfer_encoding_seen_ = false;
  bool head_request_ = false;
  TrailerFields trailers_;
};

using RequestParser = H1Parser<true>;
using ResponseParser = H1Parser<false>;

extern template class H1Parser<true>;
extern template class H1Parser<false>;

// True when `data` begins with a complete first line of three or more words whose last one
// does not begin with "HTTP/": not an HTTP/1 request line at all, but a client speaking
// something else (an HTTP/2 client whose connection preface is broken, say).
bool is_foreign_request_line(std::string_view data) noexcept;

// True when `host` is a valid Host value: reg-name, IPv4 or [IPv6], optional :port.
bool is_valid_host(std::string_view host) noexcept;

}  // namespace meridian::http
