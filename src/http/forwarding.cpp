#include "meridian/http/forwarding.hpp"

#include <charconv>

namespace meridian::http {

namespace {

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

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, std::uint64_t n) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, static_cast<std::size_t>(r.ptr - digits));
}

// Fields whose framing meaning meridian recomputes; never copied through.
bool is_framing(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding");
}

}  // namespace

bool is_hop_by_hop(std::string_view name) noexcept {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "proxy-connection") || iequals(name, "te") || iequals(name, "trailer") ||
         iequals(name, "upgrade");
}

std::string_view request_id_of(const RequestHead& head) {
  const Field* f = head.find("x-request-id");
  return f != nullptr ? f->value : std::string_view{};
}

void write_upstream_request(const RequestHead& head, const RequestForwarding& fwd,
                            std::string& out) {
  const ConnectionTokens<std::vector<Field>> named(head.fields);
  out.clear();
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(" HTTP/1.1\r\n");

  bool host_written = false;
  bool xff_written = false;
  bool request_id_seen = false;
  for (const auto& f : head.fields) {
    if (is_hop_by_hop(f.name) || is_framing(f.name) || named.contains(f.name)) continue;
    if (iequals(f.name, "expect") || iequals(f.name, "x-forwarded-proto")) continue;
    if (iequals(f.name, "host")) {
      // An absolute-form target already set head.host to the same authority (the parser
      // refuses a disagreeing Host), so the field can pass unchanged.
      host_written = true;
    } else if (iequals(f.name, "x-forwarded-for")) {
      // Several X-Forwarded-For fields are one list (RFC 9110 5.3); ours goes at its end, so
      // it is appended to the last one and the others pass unchanged.
      bool last = true;
      for (const Field* g = &f + 1; g < head.fields.data() + head.fields.size(); ++g) {
        if (iequals(g->name, "x-forwarded-for")) last = false;
      }
      if (last) {
        out.append(f.name);
        out.append(": ");
        out.append(f.value);
        out.append(", ");
        out.append(fwd.peer_address);
        out.append("\r\n");
        xff_written = true;
        continue;
      }
    } else if (iequals(f.name, "x-request-id")) {
      request_id_seen = true;
    }
    append_field(out, f.name, f.value);
  }
  if (!host_written) {
    append_field(out, "Host", head.host.empty() ? fwd.default_host : head.host);
  }
  if (!xff_written) append_field(out, "X-Forwarded-For", fwd.peer_address);
  append_field(out, "X-Forwarded-Proto", fwd.proto);
  if (!request_id_seen) append_field(out, "X-Request-Id", fwd.request_id);
  append_field(out, "Via", fwd.via);
  if (head.chunked) {
    // The codec accepted only a token list ending in "chunked"; codings before it ("gzip,
    // chunked") describe the content inside the re-encoded chunks and travel on with it.
    const Field* te = head.find("transfer-encoding");
    const bool plain = te == nullptr || iequals(te->value, "chunked");
    append_field(out, "Transfer-Encoding", plain ? std::string_view("chunked") : te->value);
  } else if (head.content_length) {
    out.append("Content-Length: ");
    append_number(out, *head.content_length);
    out.append("\r\n");
  }
  out.append("\r\n");
}

namespace {

// The fields of meridian's own rate limit (SPEC 8); an origin's fields of the same names
// would contradict them.
bool is_rate_limit_field(std::string_view name) {
  return iequals(name, "ratelimit-limit") || iequals(name, "ratelimit-remaining") ||
         iequals(name, "ratelimit-reset");
}

}  // namespace

void write_downstream_response(const ResponseHead& head, const ResponseForwarding& fwd,
                               std::string& out) {
  const ConnectionTokens<std::vector<Field>> named(head.fields);
  out.clear();
  out.append("HTTP/1.1 ");
  append_number(out, head.status);
  out.push_back(' ');
  out.append(head.reason.empty() ? reason_phrase(head.status) : head.reason);
  out.append("\r\n");
  for (const auto& f : head.fields) {
    if (is_hop_by_hop(f.name) || named.contains(f.name)) continue;
    // Content-Length passes when the body keeps its length; a chunked or close-delimited
    // upstream body is re-framed below.
    if (iequals(f.name, "transfer-encoding")) continue;
    if (iequals(f.name, "content-length") && fwd.chunked) continue;
    if (!fwd.rate_limit_headers.empty() && is_rate_limit_field(f.name)) continue;
    append_field(out, f.name, f.value);
  }
  append_field(out, "Via", fwd.via);
  out.append(fwd.rate_limit_headers);
  if (!fwd.region.empty()) append_field(out, "x-meridian-region", fwd.region);
  if (!fwd.endpoint.empty()) append_field(out, "x-meridian-endpoint", fwd.endpoint);
  if (fwd.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (fwd.close) {
    out.append("Connection: close\r\n");
  } else if (fwd.keep_alive_10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

void write_local_reply(unsigned status, std::string_view cause, bool close, std::string_view via,
                       std::string_view extra_headers, std::string& out) {
  out.clear();
  out.append("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append_number(out, cause.size() + 1);
  out.append("\r\n");
  if (!via.empty()) append_field(out, "Via", via);
  out.append(extra_headers);
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(cause);
  out.push_back('\n');
}

std::string_view reason_phrase(unsigned status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 200   ? "Informational"
             : status < 300 ? "Success"
             : status < 400 ? "Redirection"
             : status < 500 ? "Client Error"
                            : "Server Error";
  }
}

}  // namespace meridian::http
