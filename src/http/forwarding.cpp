#include "meridian/http/forwarding.hpp"

#include <charconv>
#include <cstring>

#include "http/header_rules.hpp"

namespace meridian::http {

using detail::classify;
using detail::ConnectionTokens;
using detail::Kind;

namespace {

// Writes a head into `out` through a cursor: the string is sized once to a bound computed
// from the fields, filled with memcpy, and cut to length at the end -- one allocation at
// most (none once the reused string has grown), no capacity check per piece.
class HeadWriter {
 public:
  HeadWriter(std::string& out, std::size_t bound) : out_(out) {
    out_.resize(bound);
    p_ = out_.data();
  }
  ~HeadWriter() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  void put(std::string_view s) {
    if (s.empty()) return;  // an empty view may have no data pointer, which memcpy may not get
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void put(char c) { *p_++ = c; }
  void lines(std::string_view text) { put(text); }
  void number(std::uint64_t n) { p_ = std::to_chars(p_, p_ + 20, n).ptr; }
  void field(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  // "name: value, more": a list field with an element added at its end.
  void field(std::string_view name, std::string_view value, std::string_view more) {
    put(name);
    put(": ");
    put(value);
    put(", ");
    put(more);
    put("\r\n");
  }

 private:
  std::string& out_;
  char* p_;
};

// Room for the fields as received plus what the rewrite adds (each added value is bounded by
// its own size, passed in `extra`).
std::size_t bound_for(const std::vector<Field>& fields, std::size_t extra) {
  std::size_t n = 512 + extra;
  for (const auto& f : fields)
    n += f.name.size() + f.value.size() + 4;
  return n;
}

}  // namespace

bool is_hop_by_hop(std::string_view name) noexcept {
  return classify(name) == Kind::hop_by_hop;
}

std::string_view request_id_of(const RequestHead& head) {
  const Field* f = head.find("x-request-id");
  return f != nullptr ? f->value : std::string_view{};
}

bool is_websocket_upgrade(const RequestHead& head) {
  if (head.method != "GET" || head.version != 11 || head.has_body()) return false;
  // The Upgrade field first: most requests have none, and this pass compares lengths only.
  bool websocket = false;
  for (const auto& f : head.fields) {
    if (f.name.size() != 7 || !iequals(f.name, "upgrade")) continue;
    // A list of protocols (RFC 9110 7.8); "websocket" carries no version.
    websocket = websocket || detail::list_has_token(f.value, "websocket");
  }
  return websocket && ConnectionTokens<std::vector<Field>>(head.fields).contains("upgrade");
}

void write_upstream_request(const RequestHead& head, const RequestForwarding& fwd,
                            std::string& out) {
  HeadWriter w(
      out, bound_for(head.fields, head.method.size() + head.target.size() + head.host.size() +
                                      fwd.default_host.size() + fwd.peer_address.size() +
                                      fwd.proto.size() + fwd.request_id.size() + fwd.via.size() +
                                      fwd.traceparent.size() + detail::added_bytes(fwd.rules)));
  w.put(head.method);
  w.put(' ');
  w.put(head.target);
  w.put(" HTTP/1.1\r\n");
  const Field* transfer_encoding = detail::for_each_request_field(head, fwd, w);
  if (fwd.upgrade) w.put("Connection: Upgrade\r\n");
  if (head.chunked) {
    // The codec accepted only a token list ending in "chunked"; codings before it ("gzip,
    // chunked") describe the content inside the re-encoded chunks and travel on with it.
    const bool plain = transfer_encoding == nullptr || iequals(transfer_encoding->value, "chunked");
    w.field("Transfer-Encoding", plain ? std::string_view("chunked") : transfer_encoding->value);
  } else if (head.content_length) {
    w.put("Content-Length: ");
    w.number(*head.content_length);
    w.put("\r\n");
  }
  w.put("\r\n");
}

void write_downstream_response(const ResponseHead& head, const ResponseForwarding& fwd,
                               std::string& out) {
  const std::string_view reason = head.reason.empty() ? reason_phrase(head.status) : head.reason;
  HeadWriter w(
      out, bound_for(head.fields, reason.size() + fwd.via.size() + fwd.rate_limit_headers.size() +
                                      fwd.region.size() + fwd.endpoint.size() +
                                      fwd.set_cookie.size() + detail::added_bytes(fwd.rules)));
  w.put("HTTP/1.1 ");
  w.number(head.status);
  w.put(' ');
  w.put(reason);
  w.put("\r\n");
  detail::for_each_response_field(head, fwd, w);
  if (fwd.chunked) w.put("Transfer-Encoding: chunked\r\n");
  if (fwd.upgrade) {
    w.put("Connection: Upgrade\r\n");
  } else if (fwd.close) {
    w.put("Connection: close\r\n");
  } else if (fwd.keep_alive_10) {
    w.put("Connection: keep-alive\r\n");
  }
  w.put("\r\n");
}

void write_last_chunk(const std::vector<Field>& trailers, std::string& out) {
  HeadWriter w(out, bound_for(trailers, 8));
  w.put("0\r\n");
  detail::for_each_trailer_field(trailers, w);
  w.put("\r\n");
}

void write_local_reply(unsigned status, std::string_view cause, bool close, std::string_view via,
                       std::string_view extra_headers, std::string& out) {
  HeadWriter w(out, 256 + cause.size() + via.size() + extra_headers.size());
  w.put("HTTP/1.1 ");
  w.number(status);
  w.put(' ');
  w.put(reason_phrase(status));
  w.put("\r\nContent-Type: text/plain\r\nContent-Length: ");
  w.number(cause.size() + 1);
  w.put("\r\n");
  if (!via.empty()) w.field("Via", via);
  w.put(extra_headers);
  if (close) w.put("Connection: close\r\n");
  w.put("\r\n");
  w.put(cause);
  w.put('\n');
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
