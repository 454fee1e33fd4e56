#include "meridian/http/h2/message.hpp"

#include <charconv>

#include "meridian/http/forwarding.hpp"

#include "http/header_rules.hpp"

namespace meridian::http {

namespace {

// RFC 7541 4.1: each field counts its name, its value and 32 octets of overhead.
constexpr std::uint64_t kFieldOverhead = 32;

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

void H2RequestBuilder::reset(const ParserLimits& limits) {
  limits_ = limits;
  store_.clear();
  fields_.clear();
  has_method_ = has_scheme_ = has_authority_ = has_path_ = has_cookie_ = false;
  cookie_.clear();
  list_size_ = 0;
  regular_fields_ = 0;
  head_.clear();
  error_ = {};
  trailers_.clear();
  trailers_dropped_ = false;
}

void H2RequestBuilder::trim(std::size_t keep) {
  reset(limits_);  // nothing may point into what goes
  release_storage_over(store_, keep);
  release_storage_over(cookie_, keep);
  release_storage_over(fields_, keep);
  trailers_.trim(keep);
}

void H2RequestBuilder::add_trailer(std::string_view name, std::string_view value) {
  if (trailers_dropped_) return;
  if (!trailers_.add(name, value, limits_.max_head_bytes, limits_.max_fields)) {
    trailers_dropped_ = true;
    trailers_.clear();
  }
}

void H2RequestBuilder::finish_trailers() {
  trailers_.finish();
}

H2RequestBuilder::Span H2RequestBuilder::store(std::string_view s) {
  Span span{static_cast<std::uint32_t>(store_.size()), static_cast<std::uint32_t>(s.size())};
  store_.append(s);
  return span;
}

void H2RequestBuilder::fail(unsigned status, std::string_view reason) {
  if (!error_) error_ = ParseError{status, reason};
}

void H2RequestBuilder::add(std::string_view name, std::string_view value) {
  list_size_ += name.size() + value.size() + kFieldOverhead;
  if (list_size_ > limits_.max_head_bytes) fail(431, "request header fields too large");
  if (error_) return;  // counted, not stored: the request is refused anyway
  if (!name.empty() && name.front() == ':') {
    // nghttp2 checked that pseudo-fields come first, once each, and are known.
    if (name == ":method") {
      method_ = store(value);
      has_method_ = true;
    } else if (name == ":scheme") {
      scheme_ = store(value);
      has_scheme_ = true;
    } else if (name == ":authority") {
      authority_ = store(value);
      has_authority_ = true;
    } else if (name == ":path") {
      path_ = store(value);
      has_path_ = true;
    } else {
      fail(400, "malformed request: unsupported pseudo-header");  // :protocol
    }
    return;
  }
  if (++regular_fields_ > limits_.max_fields) {
    fail(431, "too many header fields");
    return;
  }
  if (name == "cookie") {
    // RFC 9113 8.2.3: an HTTP/1.1 upstream gets one Cookie field, the crumbs joined.
    if (has_cookie_) cookie_.append("; ");
    cookie_.append(value);
    has_cookie_ = true;
    return;
  }
  fields_.emplace_back(store(name), store(value));
}

void H2RequestBuilder::finish(bool has_body) {
  if (error_) return;
  if (!has_method_) return fail(400, "malformed request: no :method");
  const auto method = view(method_);
  // As for HTTP/1.1: a tunnel is not something this proxy offers.
  if (method == "CONNECT") return fail(400, "CONNECT is not supported");
  if (!has_path_ || !has_scheme_) return fail(400, "malformed request: no :path or :scheme");
  const auto target = view(path_);
  if (target.empty() || (target.front() != '/' && !(target == "*" && method == "OPTIONS"))) {
    return fail(400, "malformed request: invalid :path");
  }
  // The request's authority: :authority, else Host (RFC 9113 8.3.1). With :authority, any
  // Host field gives way to it, so that routing and the upstream see the same name.
  std::string_view host;
  const std::string_view authority = has_authority_ ? view(authority_) : std::string_view{};
  std::size_t host_fields = 0;
  for (const auto& [n, v] : fields_) {
    if (view(n) == "host") {
      ++host_fields;
      host = view(v);
    }
  }
  if (!authority.empty()) {
    host = authority;
  } else if (host_fields != 1) {
    return fail(400, host_fields == 0 ? "malformed request: no :authority or Host"
                                      : "malformed request: several Host fields");
  }
  if (!is_valid_host(host)) return fail(400, "malformed request: invalid :authority");

  head_.method = method;
  head_.target = target;
  head_.path = target.substr(0, target.find('?'));
  head_.host = host;
  head_.version = 20;
  head_.keep_alive = true;
  head_.fields.reserve(fields_.size() + 2);
  if (!authority.empty()) head_.fields.push_back(Field{"host", authority});
  for (const auto& [n, v] : fields_) {
    const auto name = view(n);
    const auto value = view(v);
    if (name == "host") {
      if (!authority.empty()) continue;
    } else if (name == "content-length") {
      std::uint64_t length = 0;
      if (!parse_u64(value, length)) return fail(400, "malformed request: invalid Content-Length");
      head_.content_length = length;
    } else if (name == "expect") {
      if (iequals(value, "100-continue")) head_.expect_continue = true;
    }
    head_.fields.push_back(Field{name, value});
  }
  if (has_cookie_) head_.fields.push_back(Field{"cookie", cookie_});
  if (limits_.max_body_bytes != 0 && head_.content_length &&
      *head_.content_length > limits_.max_body_bytes) {
    return fail(413, "request body too large");
  }
  // HTTP/2 frames the body itself; the HTTP/1.1 upstream needs a length or chunks.
  if (has_body && !head_.content_length) head_.chunked = true;
  if (!has_body) {
    head_.content_length.reset();  // END_STREAM on HEADERS: there is no body, whatever it says
    head_.expect_continue = false;
  }
}

namespace {

// Collects the fields the header rules let through, lower-cased, without the HTTP/1.1
// connection-specific ones (the rules already dropped the hop-by-hop fields).
struct H2Fields {
  h2::FieldBlock& out;
  void field(std::string_view name, std::string_view value) {
    // :authority carries the host; the rest are HTTP/1.1 framing (RFC 9113 8.2.2).
    if (iequals(name, "transfer-encoding") || iequals(name, "host")) return;
    out.add(name, value);
  }
  void field(std::string_view name, std::string_view value, std::string_view more) {
    out.add(name, value, more);
  }
  void lines(std::string_view text) {
    detail::for_each_line(text, [this](std::string_view n, std::string_view v) { field(n, v); });
  }
};

}  // namespace

namespace {

// The client's TE lists "trailers".
bool asks_for_trailers(const RequestHead& head) {
  for (const auto& f : head.fields) {
    if (iequals(f.name, "te") && detail::list_has_token(f.value, "trailers")) return true;
  }
  return false;
}

}  // namespace

void encode_request(const RequestHead& head, const RequestForwarding& fwd, std::string_view scheme,
                    h2::FieldBlock& out) {
  out.clear();
  out.add(":method", head.method);
  out.add(":scheme", scheme);
  out.add(":authority", head.host.empty() ? fwd.default_host : head.host);
  out.add(":path", head.target);
  H2Fields fields{out};
  detail::for_each_request_field(head, fwd, fields);
  if (head.content_length) out.add_number("content-length", *head.content_length);
  if (asks_for_trailers(head)) out.add("te", "trailers");
}

void encode_response(const ResponseHead& head, const ResponseForwarding& fwd, h2::FieldBlock& out) {
  out.clear();
  out.add_status(head.status);
  H2Fields fields{out};
  detail::for_each_response_field(head, fwd, fields);
}

void encode_trailers(const std::vector<Field>& trailers, h2::FieldBlock& out) {
  out.clear();
  H2Fields fields{out};
  detail::for_each_trailer_field(trailers, fields);
}

void encode_local_reply(unsigned status, std::string_view cause, std::string_view via,
                        std::string_view extra_headers, h2::FieldBlock& out) {
  out.clear();
  out.add_status(status);
  out.add("content-type", "text/plain");
  out.add_number("content-length", cause.size() + 1);
  if (!via.empty()) out.add("via", via);
  H2Fields fields{out};
  fields.lines(extra_headers);
}

std::string local_reply_body(std::string_view cause) {
  std::string body(cause);
  body.push_back('\n');
  return body;
}

}  // namespace meridian::http
