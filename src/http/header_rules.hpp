// The header rules shared by the HTTP/1.1 head writer (forwarding.cpp) and the HTTP/2 field
// encoder (h2/message.cpp): which fields a message names as hop-by-hop, how a field name is
// classified, and which of a response's fields reach the client. Internal to the http module.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http::detail {

// The field names the Connection header(s) list (RFC 9110 7.6.1). The first kMax are kept
// inline; a message listing more falls back to scanning the Connection values for each
// field, so every named field is removed however many there are, without allocating.
template <typename Fields>
class ConnectionTokens {
 public:
  static constexpr std::size_t kMax = 16;

  explicit ConnectionTokens(const Fields& fields) : fields_(fields) {
    for_each_token([this](std::string_view token) {
      if (count_ == kMax) {
        overflow_ = true;
        return false;
      }
      items_[count_++] = token;
      return true;
    });
  }

  bool contains(std::string_view name) const {
    if (!overflow_) {
      for (std::size_t i = 0; i < count_; ++i) {
        if (iequals(items_[i], name)) return true;
      }
      return false;
    }
    bool found = false;
    for_each_token([&](std::string_view token) {
      found = iequals(token, name);
      return !found;
    });
    return found;
  }

 private:
  // Calls f(token) for each listed name until f returns false.
  template <typename F>
  void for_each_token(F&& f) const {
    for (const auto& field : fields_) {
      if (!iequals(field.name, "connection")) continue;
      std::string_view list = field.value;
      while (!list.empty()) {
        const auto comma = list.find(',');
        const auto token = trim_ows(list.substr(0, comma));
        if (!token.empty() && !f(token)) return;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }

  const Fields& fields_;
  std::string_view items_[kMax];
  std::size_t count_ = 0;
  bool overflow_ = false;
};

// Calls f(name, value) for each "Name: value\r\n" line of `lines`.
template <typename F>
void for_each_line(std::string_view lines, F&& f) {
  while (!lines.empty()) {
    const auto eol = lines.find("\r\n");
    const auto line = lines.substr(0, eol);
    lines = eol == std::string_view::npos ? std::string_view{} : lines.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) f(line.substr(0, colon), trim_ows(line.substr(colon + 1)));
  }
}

// The operator's header rules (routes[].headers) over another field writer: a field they set
// or remove is dropped on its way through -- whether the message brought it or meridian's own
// rules added it -- and finish() adds the fields they set. Used only when a route has rules.
template <typename Out>
class RuledFields {
 public:
  RuledFields(Out& out, const config::HeaderRules& rules) : out_(out), rules_(rules) {}

  void field(std::string_view name, std::string_view value) {
    if (!ruled(name)) out_.field(name, value);
  }
  void field(std::string_view name, std::string_view value, std::string_view more) {
    if (!ruled(name)) out_.field(name, value, more);
  }
  void lines(std::string_view text) {
    for_each_line(text, [this](std::string_view n, std::string_view v) { field(n, v); });
  }
  void finish() {
    for (const auto& [name, value] : rules_.set)
      out_.field(name, value);
  }

 private:
  bool ruled(std::string_view name) const {
    for (const auto& n : rules_.remove) {
      if (iequals(n, name)) return true;
    }
    for (const auto& s : rules_.set) {
      if (iequals(s.first, name)) return true;
    }
    return false;
  }
  Out& out_;
  const config::HeaderRules& rules_;
};

// The bytes RuledFields::finish() may add to a head (for a writer's size bound).
inline std::size_t added_bytes(const config::HeaderRules* rules) {
  std::size_t n = 0;
  if (rules != nullptr) {
    for (const auto& [name, value] : rules->set)
      n += name.size() + value.size() + 4;
  }
  return n;
}

// The fields the rewrite treats specially, told apart by one switch on the name's length
// and at most two comparisons, instead of a dozen comparisons per field.
enum class Kind : std::uint8_t {
  other,
  hop_by_hop,  // Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade
  content_length,
  transfer_encoding,
  expect,
  host,
  x_forwarded_for,
  x_forwarded_proto,
  x_request_id,
  rate_limit,  // RateLimit-Limit, -Remaining, -Reset
  traceparent,
  tracestate,
};

inline Kind classify(std::string_view n) noexcept {
  switch (n.size()) {
    case 2:
      return iequals(n, "te") ? Kind::hop_by_hop : Kind::other;
    case 4:
      return iequals(n, "host") ? Kind::host : Kind::other;
    case 6:
      return iequals(n, "expect") ? Kind::expect : Kind::other;
    case 7:
      return iequals(n, "trailer") || iequals(n, "upgrade") ? Kind::hop_by_hop : Kind::other;
    case 10:
      if (iequals(n, "connection") || iequals(n, "keep-alive")) return Kind::hop_by_hop;
      return iequals(n, "tracestate") ? Kind::tracestate : Kind::other;
    case 11:
      return iequals(n, "traceparent") ? Kind::traceparent : Kind::other;
    case 12:
      return iequals(n, "x-request-id") ? Kind::x_request_id : Kind::other;
    case 14:
      return iequals(n, "content-length") ? Kind::content_length : Kind::other;
    case 15:
      if (iequals(n, "x-forwarded-for")) return Kind::x_forwarded_for;
      return iequals(n, "ratelimit-limit") || iequals(n, "ratelimit-reset") ? Kind::rate_limit
                                                                            : Kind::other;
    case 16:
      return iequals(n, "proxy-connection") ? Kind::hop_by_hop : Kind::other;
    case 17:
      if (iequals(n, "transfer-encoding")) return Kind::transfer_encoding;
      return iequals(n, "x-forwarded-proto") ? Kind::x_forwarded_proto : Kind::other;
    case 19:
      return iequals(n, "ratelimit-remaining") ? Kind::rate_limit : Kind::other;
    default:
      return Kind::other;
  }
}

// Calls out.field(name, value) for each field of the client's response head that the header
// rules let through or add -- the origin's fields without hop-by-hop ones and without framing
// (the caller frames the body), then Via, meridian's RateLimit-* fields (out.lines() with
// their "Name: value\r\n" text) and the debug headers -- in that order.
template <typename Out>
void response_fields(const ResponseHead& head, const ResponseForwarding& fwd, Out& out) {
  const ConnectionTokens<std::vector<Field>> named(head.fields);
  for (const auto& f : head.fields) {
    const Kind kind = classify(f.name);
    if (fwd.upgrade && kind == Kind::hop_by_hop && iequals(f.name, "upgrade")) {
      out.field(f.name, f.value);
      continue;
    }
    switch (kind) {
      case Kind::hop_by_hop:
      case Kind::transfer_encoding:  // re-framed by the caller when needed
        continue;
      case Kind::content_length:
        // Passes when the body keeps its length; a chunked or close-delimited upstream body
        // is re-framed.
        if (fwd.chunked) continue;
        break;
      case Kind::rate_limit:
        // meridian's own RateLimit-* fields replace an origin's of the same names.
        if (!fwd.rate_limit_headers.empty()) continue;
        break;
      default:
        break;
    }
    if (named.contains(f.name)) continue;
    out.field(f.name, f.value);
  }
  out.field("Via", fwd.via);
  out.lines(fwd.rate_limit_headers);
  out.lines(fwd.set_cookie);
  if (!fwd.region.empty()) out.field("x-meridian-region", fwd.region);
  if (!fwd.endpoint.empty()) out.field("x-meridian-endpoint", fwd.endpoint);
}

// The same, through the route's response header rules when it has some.
template <typename Out>
void for_each_response_field(const ResponseHead& head, const ResponseForwarding& fwd, Out& out) {
  if (fwd.rules == nullptr) {
    response_fields(head, fwd, out);
    return;
  }
  RuledFields<Out> ruled(out, *fwd.rules);
  response_fields(head, fwd, ruled);
  ruled.finish();
}

// Calls out.field(name, value) for each trailer field that passes on: not the framing,
// routing and connection fields a trailer must not carry (RFC 9110 6.5.1), nor fields the
// codec should never have let in (pseudo-fields).
template <typename Out>
void for_each_trailer_field(const std::vector<Field>& trailers, Out& out) {
  for (const auto& f : trailers) {
    if (f.name.empty() || f.name.front() == ':') continue;
    switch (classify(f.name)) {
      case Kind::hop_by_hop:
      case Kind::content_length:
      case Kind::transfer_encoding:
      case Kind::host:
      case Kind::expect:
        continue;
      default:
        out.field(f.name, f.value);
    }
  }
}

// Calls out.field(name, value) for each field of the upstream request that the header rules
// let through or add -- the client's fields without hop-by-hop ones, framing, Expect (meridian
// answers 100-continue itself) and X-Forwarded-Proto; Host where the client had it, or added;
// X-Forwarded-For extended with the peer (out.field(name, value, more) on the last one) or
// added; X-Forwarded-Proto, X-Request-Id when the client sent none, and Via -- plus Upgrade
// for a WebSocket handshake. Framing is the caller's. Returns the client's first
// Transfer-Encoding field (as the codec checked it), or null.
template <typename Out>
const Field* request_fields(const RequestHead& head, const RequestForwarding& fwd, Out& out) {
  const ConnectionTokens<std::vector<Field>> named(head.fields);
  const Field* last_xff = nullptr;
  for (const auto& f : head.fields) {
    if (classify(f.name) == Kind::x_forwarded_for) last_xff = &f;
  }
  bool host_written = false;
  bool xff_written = false;
  bool request_id_seen = false;
  const Field* transfer_encoding = nullptr;
  for (const auto& f : head.fields) {
    const Kind kind = classify(f.name);
    if (kind == Kind::transfer_encoding && transfer_encoding == nullptr) transfer_encoding = &f;
    if (fwd.upgrade && kind == Kind::hop_by_hop && iequals(f.name, "upgrade")) {
      out.field(f.name, f.value);
      continue;
    }
    if (kind == Kind::hop_by_hop || kind == Kind::content_length ||
        kind == Kind::transfer_encoding || kind == Kind::expect ||  // 100-continue is ours
        kind == Kind::x_forwarded_proto || named.contains(f.name)) {
      continue;
    }
    // With tracing on, meridian writes the traceparent; the client's tracestate goes on only
    // with the client's trace.
    if (!fwd.traceparent.empty() &&
        (kind == Kind::traceparent || (kind == Kind::tracestate && !fwd.keep_tracestate))) {
      continue;
    }
    if (kind == Kind::host) {
      // An absolute-form target already set head.host to the same authority (the parser
      // refuses a disagreeing Host), so the field can pass unchanged.
      host_written = true;
    } else if (kind == Kind::x_forwarded_for && &f == last_xff) {
      // Several X-Forwarded-For fields are one list (RFC 9110 5.3); ours goes at its end,
      // so it is appended to the last one and the others pass unchanged.
      out.field(f.name, f.value, fwd.peer_address);
      xff_written = true;
      continue;
    } else if (kind == Kind::x_request_id) {
      request_id_seen = true;
    }
    out.field(f.name, f.value);
  }
  if (!host_written) out.field("Host", head.host.empty() ? fwd.default_host : head.host);
  if (!xff_written) out.field("X-Forwarded-For", fwd.peer_address);
  out.field("X-Forwarded-Proto", fwd.proto);
  if (!request_id_seen) out.field("X-Request-Id", fwd.request_id);
  out.field("Via", fwd.via);
  if (!fwd.traceparent.empty()) out.field("traceparent", fwd.traceparent);
  return transfer_encoding;
}

// The same, through the route's request header rules when it has some.
template <typename Out>
const Field* for_each_request_field(const RequestHead& head, const RequestForwarding& fwd,
                                    Out& out) {
  if (fwd.rules == nullptr) return request_fields(head, fwd, out);
  RuledFields<Out> ruled(out, *fwd.rules);
  const Field* transfer_encoding = request_fields(head, fwd, ruled);
  ruled.finish();
  return transfer_encoding;
}

// True when the comma-separated list `value` (RFC 9110 5.6.1) has an element equal to `token`,
// case-insensitively.
inline bool list_has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), token)) return true;
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
  }
  return false;
}

}  // namespace meridian::http::detail
