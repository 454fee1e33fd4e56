#include "meridian/http/h1/parser.hpp"

#include <cstring>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace meridian::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// The last element of a comma-separated list must be "chunked" and no other element may be.
bool is_final_chunked(std::string_view list) {
  bool last_is_chunked = false;
  while (true) {
    const auto comma = list.find(',');
    const auto token = trim_ows(list.substr(0, comma));
    if (token.empty()) return false;  // "chunked,," and friends
    for (char c : token) {
      if (!is_tchar(c)) return false;  // parameters or junk: refuse rather than guess
    }
    if (last_is_chunked) return false;  // "chunked" not final
    last_is_chunked = iequals(token, "chunked");
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return last_is_chunked;
}

// True when the request line ends in a well-formed HTTP-version ("HTTP/" DIGIT "." DIGIT,
// RFC 9112 2.3) other than 1.0 and 1.1, the only ones meridian speaks.
bool is_other_http_version(std::string_view data) {
  const auto eol = data.find("\r\n");
  if (eol == std::string_view::npos || eol < 8) return false;
  const auto v = data.substr(eol - 8, 8);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const bool spoken = v[5] == '1' && (v[7] == '0' || v[7] == '1');
  return v.substr(0, 5) == "HTTP/" && digit(v[5]) && v[6] == '.' && digit(v[7]) && !spoken &&
         eol > 8 && data[eol - 9] == ' ';
}

}  // namespace

bool is_foreign_request_line(std::string_view data) noexcept {
  // The line ends at the first LF (a bare LF included: that is malformed HTTP/1, not another
  // protocol); any version spelled "HTTP/..." in any case is HTTP/1's business.
  const auto eol = data.find('\n');
  if (eol == std::string_view::npos) return false;
  auto line = data.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) return false;  // HTTP/0.9 or one word
  return !iequals(line.substr(last + 1).substr(0, 5), "http/");
}

bool is_idempotent(std::string_view m) noexcept {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

const Field* RequestHead::find(std::string_view name) const {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return &f;
  }
  return nullptr;
}

const Field* ResponseHead::find(std::string_view name) const {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return &f;
  }
  return nullptr;
}

void RequestHead::clear() {
  method = target = path = host = {};
  version = 11;
  fields.clear();
  content_length.reset();
  chunked = false;
  keep_alive = true;
  expect_continue = false;
}

void ResponseHead::clear() {
  status = 0;
  reason = {};
  version = 11;
  fields.clear();
  content_length.reset();
  chunked = false;
  keep_alive = true;
  has_body = true;
  until_eof = false;
}

bool is_valid_host(std::string_view host) noexcept {
  if (host.empty()) return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : host.substr(1, close - 1)) {
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                      c == ':' || c == '.';
      if (!ok) return false;
    }
    const auto rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    name = {};
  } else {
    const auto colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      port = host.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (name.empty()) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  // reg-name = *( unreserved / pct-encoded / sub-delims )
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("-._~%!$&'()*+,;=", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

template <bool IsRequest>
void H1Parser<IsRequest>::reset(const ParserLimits& limits, bool head_request) {
  impl_.emplace(*this);
  head_.clear();
  error_ = {};
  trailers_.clear();
  limits_ = limits;
  host_count_ = 0;
  transfer_encoding_seen_ = false;
  head_request_ = head_request;
  impl_->eager(false);
  // find_head_end() enforces max_head_bytes over the whole head; Beast counts the start line
  // and the fields separately, so its own limit only needs to stay out of the way.
  impl_->header_limit(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(limits.max_head_bytes + 1024, UINT32_MAX)));
  scanned_ = 0;
  first_line_end_ = 0;
  if (limits.max_body_bytes == 0) {
    impl_->body_limit(boost::none);
  } else {
    impl_->body_limit(limits.max_body_bytes);
  }
  if constexpr (!IsRequest) {
    if (head_request) impl_->skip(true);
  }
}

template <bool IsRequest>
std::size_t H1Parser<IsRequest>::parse_head(std::string_view data) {
  if (error_ || !impl_) return 0;
  const std::size_t end = find_head_end(data);
  if (end == 0) return 0;  // incomplete, or error_ set
  // Beast gets the complete head in one put(): fed an incomplete head it would consume the
  // start line alone, and the next call (from the same start) would be misread.
  const auto head = data.substr(0, end);
  input_begin_ = head.data();
  input_end_ = head.data() + head.size();
  beast::error_code ec;
  const std::size_t n = impl_->put(boost::asio::const_buffer(head.data(), head.size()), ec);
  if (ec && ec != bhttp::error::need_more) {
    translate_beast_error(ec, data);
    return 0;
  }
  if (error_) return 0;
  if (!impl_->is_header_done() || n != end) {
    fail_head(IsRequest ? 400 : 502, "malformed message head");
    return 0;
  }
  return n;
}

namespace {

// The request line ends in " HTTP/" and something: what tells HTTP/1.x from HTTP/0.9 (the
// version itself is checked by the parser proper).
bool has_version(std::string_view line) {
  const auto space = line.rfind(' ');
  return space != std::string_view::npos && line.substr(space + 1).starts_with("HTTP/");
}

}  // namespace

template <bool IsRequest>
std::size_t H1Parser<IsRequest>::find_head_end(std::string_view data) {
  // One pass over the head as it arrives (resuming at scanned_): every line must end in
  // CRLF (a bare LF is refused, RFC 9112 2.2), no line may start with whitespace (obs-fold,
  // or whitespace before the first field: RFC 9112 5.2 and 2.2), and the whole head --
  // request line and fields together -- must fit max_head_bytes (limits.max_request_header_bytes).
  const std::size_t limit = limits_.max_head_bytes;
  const char* base = data.data();
  std::size_t i = scanned_;
  while (i < data.size()) {
    const void* found = std::memchr(base + i, '\n', data.size() - i);
    if (found == nullptr) break;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - base);
    if (lf == 0 || base[lf - 1] != '\r') {
      fail_head(IsRequest ? 400 : 502, IsRequest ? "malformed request: bare LF in the head"
                                                 : "invalid response from upstream: bare LF");
      return 0;
    }
    if (first_line_end_ == 0) {
      first_line_end_ = lf + 1;
      // An HTTP/0.9 request is one line with no version, and its client waits for an
      // answer without sending the empty line that ends an HTTP/1.x head: refuse it as soon
      // as its line is complete rather than at header_timeout.
      if (IsRequest && !has_version(std::string_view(base, lf - 1))) {
        fail_head(400, "malformed request: no HTTP version (HTTP/0.9 is not served)");
        return 0;
      }
    }
    const bool empty_line = lf >= 2 && base[lf - 2] == '\n';
    if (empty_line && lf + 1 > first_line_end_) {
      if (lf + 1 > limit) {
        if (!IsRequest) {
          fail_head(502, "invalid response from upstream: head too large");
        } else if (first_line_end_ > limit) {
          fail_head(414, "request line too long");
        } else {
          fail_head(431, "request header fields too large");
        }
        return 0;
      }
      scanned_ = lf + 1;
      return lf + 1;
    }
    if (lf + 1 == data.size()) {
      scanned_ = lf;  // the next byte decides between a fold and a new field: look again
      break;
    }
    const char next = base[lf + 1];
    if (next == ' ' || next == '\t') {
      fail_head(IsRequest ? 400 : 502,
                IsRequest ? "malformed request: obsolete line folding"
                          : "invalid response from upstream: obsolete line folding");
      return 0;
    }
    i = lf + 1;
    scanned_ = i;
  }
  if (data.size() > limit) {
    const bool line_done = first_line_end_ != 0 && first_line_end_ <= limit;
    if (IsRequest) {
      fail_head(line_done ? 431 : 414,
                line_done ? "request header fields too large" : "request line too long");
    } else {
      fail_head(502, "invalid response from upstream: head too large");
    }
  }
  return 0;
}

template <bool IsRequest>
void H1Parser<IsRequest>::fail_head(unsigned status, std::string_view reason) {
  if (!error_) error_ = ParseError{status, reason};
}

template <bool IsRequest>
std::size_t H1Parser<IsRequest>::parse_body(std::string_view data, BodySlices& out) {
  if (error_ || !impl_ || impl_->is_done()) return 0;
  body_out_ = &out;
  std::size_t total = 0;
  // Beast consumes one framing element per call (a chunk header, a run of body bytes), so
  // loop until it needs more input or the message ends.
  while (total < data.size() && !impl_->is_done()) {
    beast::error_code ec;
    const std::size_t n =
        impl_->put(boost::asio::const_buffer(data.data() + total, data.size() - total), ec);
    total += n;
    if (ec == bhttp::error::need_more) break;
    if (ec) {
      translate_beast_error(ec, data);
      break;
    }
    if (n == 0) break;
  }
  body_out_ = nullptr;
  return total;
}

template <bool IsRequest>
void H1Parser<IsRequest>::finish_on_eof() {
  if (!impl_) return;
  beast::error_code ec;
  impl_->put_eof(ec);
  if (ec) fail(502, "upstream closed the connection mid-message", ec);
}

template <bool IsRequest>
void H1Parser<IsRequest>::fail(unsigned status, std::string_view reason, beast::error_code& ec) {
  if (!error_) error_ = ParseError{status, reason};
  ec = bhttp::error::bad_value;
}

template <bool IsRequest>
void H1Parser<IsRequest>::translate_beast_error(const beast::error_code& ec,
                                                std::string_view data) {
  if (error_) return;
  if constexpr (!IsRequest) {
    error_ = ParseError{502, "invalid response from upstream"};
    (void)ec;
    (void)data;
  } else {
    if (ec == bhttp::error::header_limit) {
      // 414 when the request line alone does not fit, 431 when the fields do not.
      const auto line_end = data.substr(0, limits_.max_head_bytes).find("\r\n");
      error_ = line_end == std::string_view::npos
                   ? ParseError{414, "request line too long"}
                   : ParseError{431, "request header fields too large"};
    } else if (ec == bhttp::error::body_limit) {
      error_ = ParseError{413, "request body too large"};
    } else if (ec == bhttp::error::bad_line_ending) {
      error_ = ParseError{400, "malformed request: bad line ending"};
    } else if (ec == bhttp::error::bad_field || ec == bhttp::error::bad_value) {
      error_ = ParseError{400, "malformed request: invalid header field"};
    } else if (ec == bhttp::error::bad_content_length ||
               ec == bhttp::error::multiple_content_length) {
      error_ = ParseError{400, "malformed request: invalid Content-Length"};
    } else if (ec == bhttp::error::bad_transfer_encoding) {
      error_ = ParseError{400, "malformed request: invalid Transfer-Encoding"};
    } else if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension) {
      error_ = ParseError{400, "malformed request: invalid chunk"};
    } else if (ec == bhttp::error::bad_method) {
      error_ = ParseError{400, "malformed request: invalid method"};
    } else if (ec == bhttp::error::bad_version) {
      // Beast accepts only HTTP/1.x; a well-formed other version ("HTTP/2.0") is a version we
      // do not support (505), anything else is malformed (400).
      error_ = is_other_http_version(data)
                   ? ParseError{505, "HTTP version not supported"}
                   : ParseError{400, "malformed request: invalid HTTP version"};
    } else {
      error_ = ParseError{400, "malformed request"};
    }
  }
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_request(std::string_view method, std::string_view target, int version,
                                     beast::error_code& ec) {
  if constexpr (IsRequest) {
    ec = {};
    if (version / 10 != 1) return fail(505, "HTTP version not supported", ec);
    head_.method = method;
    head_.version = static_cast<unsigned>(version);
    if (method == "CONNECT") return fail(400, "CONNECT is not supported", ec);
    if (target.empty()) return fail(400, "malformed request: empty target", ec);
    if (target.front() == '/') {
      head_.target = target;
    } else if (target == "*") {
      if (method != "OPTIONS") return fail(400, "malformed request: '*' target", ec);
      head_.target = target;
    } else {
      // absolute-form: scheme "://" authority [path]. Routed by the authority, forwarded in
      // origin-form; the Host field must agree (checked in on_header_impl).
      const auto scheme_end = target.find("://");
      if (scheme_end == std::string_view::npos) {
        return fail(400, "malformed request: invalid target", ec);
      }
      const auto scheme = target.substr(0, scheme_end);
      if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
        return fail(400, "malformed request: invalid target scheme", ec);
      }
      auto rest = target.substr(scheme_end + 3);
      const auto path_start = rest.find_first_of("/?");
      const auto authority = rest.substr(0, path_start);
      if (!is_valid_host(authority)) return fail(400, "malformed request: invalid target", ec);
      head_.host = authority;
      head_.target =
          path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
      if (head_.target.front() == '?') return fail(400, "malformed request: invalid target", ec);
    }
    head_.path = head_.target.substr(0, head_.target.find('?'));
  } else {
    (void)method;
    (void)target;
    (void)version;
    ec = bhttp::error::bad_method;
  }
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_trailer(std::string_view name, std::string_view value,
                                     beast::error_code& ec) {
  // Bounded like the head: a trailer section as large as the head limit, as many fields.
  if (!trailers_.add(name, value, limits_.max_head_bytes, limits_.max_fields)) {
    return fail(
        IsRequest ? 431 : 502,
        IsRequest ? "request trailer fields too large" : "response trailer fields too large", ec);
  }
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_finish() {
  trailers_.finish();
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_response(int code, std::string_view reason, int version,
                                      beast::error_code& ec) {
  if constexpr (!IsRequest) {
    ec = {};
    if (version / 10 != 1) return fail(502, "upstream answered with an unsupported version", ec);
    head_.status = static_cast<unsigned>(code);
    head_.reason = reason;
    head_.version = static_cast<unsigned>(version);
  } else {
    (void)code;
    (void)reason;
    (void)version;
    ec = bhttp::error::bad_version;
  }
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_field(bhttp::field f, std::string_view name, std::string_view value,
                                   beast::error_code& ec) {
  ec = {};
  if (impl_->is_header_done()) return on_trailer(name, value, ec);
  // Beast unfolds obs-fold into a private buffer; a value that does not point into our input
  // was folded, which RFC 9112 5.2 lets a server refuse, and an edge proxy must.
  if (value.data() < input_begin_ || value.data() > input_end_) {
    return fail(IsRequest ? 400 : 502,
                IsRequest ? "malformed request: obsolete line folding"
                          : "invalid response from upstream: obsolete line folding",
                ec);
  }
  if (head_.fields.size() >= limits_.max_fields) {
    return fail(IsRequest ? 431 : 502,
                IsRequest ? "too many request header fields" : "too many response header fields",
                ec);
  }
  if constexpr (IsRequest) {
    if (f == bhttp::field::host) {
      if (++host_count_ > 1) return fail(400, "malformed request: several Host fields", ec);
      if (!is_valid_host(value)) return fail(400, "malformed request: invalid Host", ec);
      if (!head_.host.empty()) {
        // absolute-form already named the authority
        if (!iequals(head_.host, value)) {
          return fail(400, "malformed request: Host differs from the target's authority", ec);
        }
      } else {
        head_.host = value;
      }
    } else if (f == bhttp::field::transfer_encoding) {
      if (head_.version == 10) {
        return fail(400, "malformed request: Transfer-Encoding in HTTP/1.0", ec);
      }
      if (transfer_encoding_seen_) {
        return fail(400, "malformed request: several Transfer-Encoding fields", ec);
      }
      transfer_encoding_seen_ = true;
      if (!is_final_chunked(value)) {
        return fail(400, "malformed request: Transfer-Encoding must end with chunked", ec);
      }
    } else if (f == bhttp::field::expect) {
      if (iequals(value, "100-continue")) head_.expect_continue = true;
    }
  }
  head_.fields.push_back(Field{name, value});
}

template <bool IsRequest>
void H1Parser<IsRequest>::on_header(beast::error_code& ec) {
  ec = {};
  const auto cl = impl_->content_length();
  head_.chunked = impl_->chunked();
  if (cl && !head_.chunked) head_.content_length = *cl;
  head_.keep_alive = impl_->keep_alive();
  if constexpr (IsRequest) {
    if (head_.version == 11 && host_count_ == 0) {
      return fail(400, "malformed request: no Host field", ec);
    }
  } else {
    const unsigned s = head_.status;
    head_.has_body = !(head_request_ || (s >= 100 && s < 200) || s == 204 || s == 304);
    head_.until_eof = head_.has_body && !head_.chunked && !head_.content_length;
    if (head_.until_eof) head_.keep_alive = false;
  }
}

template <bool IsRequest>
std::size_t H1Parser<IsRequest>::on_body(std::string_view body, beast::error_code& ec) {
  ec = {};
  if (body_out_ != nullptr && !body.empty()) body_out_->push_back(body);
  return body.size();
}

template class H1Parser<true>;
template class H1Parser<false>;

}  // namespace meridian::http
