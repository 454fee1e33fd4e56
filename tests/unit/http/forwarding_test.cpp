// The header rules (docs/http-behaviour.md, headers; hop-by-hop fields per RFC 9110 7.6.1) on
// the heads meridian writes: the request sent upstream, the response sent downstream, and the
// replies meridian gives itself.
#include "meridian/http/forwarding.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/http/h1/parser.hpp"

namespace meridian::http {
namespace {

using Lines = std::vector<std::pair<std::string, std::string>>;

// A written head, taken apart: the start line, then every field in order.
struct WrittenHead {
  std::string start_line;
  Lines fields;
  std::string body;  // whatever follows the empty line

  std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : fields) {
      if (iequals(n, name)) out.push_back(v);
    }
    return out;
  }
  std::size_t count(std::string_view name) const { return all(name).size(); }
  std::string one(std::string_view name) const {
    const auto v = all(name);
    if (v.size() == 1) return v[0];
    std::string missing(1, '<');
    missing.append(std::to_string(v.size()));
    missing.append(" fields>");
    return missing;
  }
  // Several fields of one name joined as one list (RFC 9110 5.3).
  std::string joined(std::string_view name) const {
    std::string out;
    for (const auto& v : all(name)) {
      if (!out.empty()) out += ", ";
      out += v;
    }
    return out;
  }
  bool has(std::string_view name) const { return count(name) != 0; }
};

WrittenHead split(const std::string& text) {
  WrittenHead h;
  const auto end = text.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << "no end of head in: " << text;
  if (end == std::string::npos) return h;
  h.body = text.substr(end + 4);
  std::string_view rest(text.data(), end + 2);
  bool first = true;
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const auto line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    EXPECT_EQ(line.find('\n'), std::string_view::npos) << "bare LF in: " << line;
    EXPECT_EQ(line.find('\r'), std::string_view::npos) << "bare CR in: " << line;
    if (first) {
      h.start_line = std::string(line);
      first = false;
      continue;
    }
    const auto colon = line.find(": ");
    EXPECT_NE(colon, std::string_view::npos) << "not a field: " << line;
    if (colon == std::string_view::npos) continue;
    h.fields.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
  }
  return h;
}

RequestHead request(std::vector<Field> fields, std::string_view method = "GET",
                    std::string_view target = "/p?q=1", unsigned version = 11) {
  RequestHead h;
  h.method = method;
  h.target = target;
  h.path = target.substr(0, target.find('?'));
  h.version = version;
  h.fields = std::move(fields);
  for (const auto& f : h.fields) {
    if (iequals(f.name, "host")) h.host = f.value;
  }
  return h;
}

RequestForwarding fwd() {
  RequestForwarding f;
  f.peer_address = "203.0.113.7";
  f.proto = "http";
  f.via = "1.1 edge-fra-1";
  f.request_id = "generated-id-1";
  f.default_host = "10.0.1.10:8080";
  return f;
}

WrittenHead upstream(const RequestHead& head, const RequestForwarding& f = fwd()) {
  std::string out = "stale contents";
  write_upstream_request(head, f, out);
  return split(out);
}

// ---------------------------------------------------------------------------------------
// Requests.

TEST(UpstreamRequest, RequestLineIsHttp11OriginForm) {
  auto h = upstream(request({{"Host", "a.example"}}, "GET", "/p?q=1", 10));
  EXPECT_EQ(h.start_line, "GET /p?q=1 HTTP/1.1");
  h = upstream(request({{"Host", "a.example"}}, "OPTIONS", "*"));
  EXPECT_EQ(h.start_line, "OPTIONS * HTTP/1.1");
}

TEST(UpstreamRequest, OutputReplacesPreviousContents) {
  std::string out = "GARBAGE";
  write_upstream_request(request({{"Host", "a"}}), fwd(), out);
  EXPECT_EQ(out.rfind("GET /p?q=1 HTTP/1.1\r\n", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(UpstreamRequest, EndToEndIsAValidRequest) {
  const RequestHead head = request({{"Host", "a.example"},
                                    {"User-Agent", "t/1"},
                                    {"Connection", "keep-alive"},
                                    {"X-Forwarded-For", "198.51.100.1"}},
                                   "POST", "/u");
  RequestHead with_body = head;
  with_body.content_length = 3;
  std::string out;
  write_upstream_request(with_body, fwd(), out);
  out += "abc";
  RequestParser p;
  p.reset(ParserLimits{});
  ASSERT_EQ(p.parse_head(out), out.size() - 3) << p.error().reason << "\n" << out;
  EXPECT_EQ(p.head().method, "POST");
  EXPECT_EQ(p.head().host, "a.example");
  EXPECT_EQ(*p.head().content_length, 3u);
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(UpstreamRequest, HopByHopFieldsRemoved) {
  const auto h = upstream(request({{"Host", "a"},
                                   {"Connection", "keep-alive"},
                                   {"Keep-Alive", "timeout=5"},
                                   {"Proxy-Connection", "keep-alive"},
                                   {"TE", "trailers"},
                                   {"Trailer", "X-Checksum"},
                                   {"Upgrade", "h2c"},
                                   {"X-Kept", "1"}}));
  for (std::string_view name :
       {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"}) {
    EXPECT_FALSE(h.has(name)) << name;
  }
  EXPECT_EQ(h.one("X-Kept"), "1");
}

TEST(UpstreamRequest, HopByHopMatchIsCaseInsensitive) {
  const auto h = upstream(request({{"Host", "a"},
                                   {"CONNECTION", "close"},
                                   {"keep-alive", "timeout=5"},
                                   {"proxy-CONNECTION", "close"},
                                   {"te", "trailers"},
                                   {"TRAILER", "x"},
                                   {"upgrade", "h2c"}}));
  for (std::string_view name :
       {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"}) {
    EXPECT_FALSE(h.has(name)) << name;
  }
}

TEST(UpstreamRequest, FieldsNamedInConnectionRemoved) {
  const auto h = upstream(request({{"Host", "a"},
                                   {"Connection", "close, X-Secret ,x-other"},
                                   {"X-Secret", "s"},
                                   {"X-OTHER", "o"},
                                   {"X-Kept", "k"}}));
  EXPECT_FALSE(h.has("X-Secret"));
  EXPECT_FALSE(h.has("X-Other"));
  EXPECT_EQ(h.one("X-Kept"), "k");
}

TEST(UpstreamRequest, FieldsNamedInSeveralConnectionFieldsRemoved) {
  const auto h = upstream(request({{"Host", "a"},
                                   {"Connection", "X-One"},
                                   {"X-One", "1"},
                                   {"X-Two", "2"},
                                   {"connection", "x-two"}}));
  EXPECT_FALSE(h.has("X-One"));
  EXPECT_FALSE(h.has("X-Two"));
}

// Headers named in Connection are removed before forwarding (RFC 9110 7.6.1) — all of them,
// however many the client lists.
TEST(UpstreamRequest, EveryFieldNamedInConnectionRemovedEvenWhenMany) {
  std::vector<std::string> names;
  std::string list;
  for (int i = 0; i < 20; ++i) {
    names.push_back("X-Hop-" + std::to_string(i));
    if (!list.empty()) list += ", ";
    list += names.back();
  }
  std::vector<Field> fields{{"Host", "a"}, {"Connection", list}};
  for (const auto& n : names)
    fields.push_back({n, "v"});
  const auto h = upstream(request(fields));
  std::vector<std::string> leaked;
  for (const auto& n : names) {
    if (h.has(n)) leaked.push_back(n);
  }
  EXPECT_TRUE(leaked.empty()) << "forwarded although named in Connection: "
                              << ::testing::PrintToString(leaked);
}

// Naming Host in Connection must not lose the Host header: it is passed on unchanged.
TEST(UpstreamRequest, HostNamedInConnectionStillSent) {
  const auto h = upstream(request({{"Host", "Api.Example.com:8080"}, {"Connection", "Host"}}));
  EXPECT_EQ(h.one("Host"), "Api.Example.com:8080");
}

// Naming X-Forwarded-For in Connection drops the client's list, never meridian's own entry.
TEST(UpstreamRequest, ForwardedForNamedInConnectionStillCarriesPeer) {
  const auto h = upstream(
      request({{"Host", "a"}, {"Connection", "X-Forwarded-For"}, {"X-Forwarded-For", "1.1.1.1"}}));
  const auto xff = h.joined("X-Forwarded-For");
  EXPECT_EQ(xff.substr(xff.size() - std::string_view("203.0.113.7").size()), "203.0.113.7") << xff;
  EXPECT_EQ(h.one("X-Forwarded-Proto"), "http");
  EXPECT_EQ(h.one("Via"), "1.1 edge-fra-1");
}

TEST(UpstreamRequest, ForwardedForAddedWhenAbsent) {
  const auto h = upstream(request({{"Host", "a"}}));
  EXPECT_EQ(h.one("X-Forwarded-For"), "203.0.113.7");
}

TEST(UpstreamRequest, ForwardedForAppendedToExisting) {
  const auto h = upstream(request({{"Host", "a"}, {"X-Forwarded-For", "198.51.100.1, 10.0.0.2"}}));
  EXPECT_EQ(h.one("X-Forwarded-For"), "198.51.100.1, 10.0.0.2, 203.0.113.7");
}

TEST(UpstreamRequest, ForwardedForAppendedAfterSeveralFields) {
  const auto h = upstream(request({{"Host", "a"},
                                   {"X-Forwarded-For", "198.51.100.1"},
                                   {"X-Other", "o"},
                                   {"x-forwarded-for", "198.51.100.2, 198.51.100.3"}}));
  // One list across the fields, in order, with the peer last and only once.
  EXPECT_EQ(h.joined("X-Forwarded-For"), "198.51.100.1, 198.51.100.2, 198.51.100.3, 203.0.113.7");
}

TEST(UpstreamRequest, ForwardedProtoReplaced) {
  RequestForwarding f = fwd();
  f.proto = "https";
  auto h = upstream(request({{"Host", "a"}, {"X-Forwarded-Proto", "http"}}), f);
  EXPECT_EQ(h.one("X-Forwarded-Proto"), "https");
  h = upstream(
      request({{"Host", "a"}, {"x-forwarded-proto", "https"}, {"X-Forwarded-Proto", "ftp"}}));
  EXPECT_EQ(h.one("X-Forwarded-Proto"), "http");
  h = upstream(request({{"Host", "a"}}));
  EXPECT_EQ(h.one("X-Forwarded-Proto"), "http");
}

TEST(UpstreamRequest, RequestIdKeptWhenPresent) {
  const auto head = request({{"Host", "a"}, {"X-Request-Id", "client-id-42"}});
  EXPECT_EQ(request_id_of(head), "client-id-42");
  const auto h = upstream(head);
  EXPECT_EQ(h.one("X-Request-Id"), "client-id-42");
}

TEST(UpstreamRequest, RequestIdGeneratedWhenAbsent) {
  const auto head = request({{"Host", "a"}});
  EXPECT_EQ(request_id_of(head), "");
  const auto h = upstream(head);
  EXPECT_EQ(h.one("X-Request-Id"), "generated-id-1");
}

TEST(UpstreamRequest, RequestIdLookupIsCaseInsensitive) {
  const auto head = request({{"Host", "a"}, {"x-request-id", "lower"}});
  EXPECT_EQ(request_id_of(head), "lower");
  EXPECT_EQ(upstream(head).one("X-Request-Id"), "lower");
}

TEST(UpstreamRequest, ViaAppended) {
  auto h = upstream(request({{"Host", "a"}}));
  EXPECT_EQ(h.one("Via"), "1.1 edge-fra-1");
  h = upstream(request({{"Host", "a"}, {"Via", "1.0 cdn-a, 1.1 cdn-b"}}));
  EXPECT_EQ(h.joined("Via"), "1.0 cdn-a, 1.1 cdn-b, 1.1 edge-fra-1");
}

TEST(UpstreamRequest, HostPassedUnchanged) {
  const auto h = upstream(request({{"Host", "Api.Example.COM:8080"}}));
  EXPECT_EQ(h.one("Host"), "Api.Example.COM:8080");
  // Host keeps its place among the fields.
  const auto h2 = upstream(request({{"X-First", "1"}, {"Host", "a"}, {"X-Last", "2"}}));
  ASSERT_GE(h2.fields.size(), 3u);
  EXPECT_EQ(h2.fields[0].first, "X-First");
  EXPECT_EQ(h2.fields[1].first, "Host");
  EXPECT_EQ(h2.fields[2].first, "X-Last");
}

TEST(UpstreamRequest, Http10WithoutHostGetsDefaultHost) {
  const auto h = upstream(request({{"Accept", "*/*"}}, "GET", "/", 10));
  EXPECT_EQ(h.one("Host"), "10.0.1.10:8080");
}

TEST(UpstreamRequest, AbsoluteFormAuthorityIsTheHost) {
  // What the parser makes of "GET http://a.example/x HTTP/1.0" without a Host field.
  RequestHead head = request({{"Accept", "*/*"}}, "GET", "/x", 10);
  head.host = "a.example";
  EXPECT_EQ(upstream(head).one("Host"), "a.example");
}

TEST(UpstreamRequest, OtherFieldsKeepOrderCaseAndDuplicates) {
  const auto h = upstream(request(
      {{"Host", "a"}, {"accept", "text/html"}, {"X-Dup", "1"}, {"Cookie", "a=b"}, {"X-DUP", "2"}}));
  Lines passed;
  for (const auto& f : h.fields) {
    if (f.first == "accept" || iequals(f.first, "x-dup") || f.first == "Cookie") {
      passed.push_back(f);
    }
  }
  const Lines want{{"accept", "text/html"}, {"X-Dup", "1"}, {"Cookie", "a=b"}, {"X-DUP", "2"}};
  EXPECT_EQ(passed, want);
}

TEST(UpstreamRequest, ChunkedFramingRegenerated) {
  RequestHead head =
      request({{"Host", "a"}, {"Transfer-Encoding", "Chunked"}, {"Content-Type", "text/plain"}},
              "POST", "/u");
  head.chunked = true;
  const auto h = upstream(head);
  EXPECT_EQ(h.one("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(h.has("Content-Length"));
  EXPECT_EQ(h.one("Content-Type"), "text/plain");
}

TEST(UpstreamRequest, ContentLengthKeptOnce) {
  RequestHead head =
      request({{"Host", "a"}, {"Content-Length", "5"}, {"content-length", "5"}}, "POST", "/u");
  head.content_length = 5;
  const auto h = upstream(head);
  EXPECT_EQ(h.one("Content-Length"), "5");
  EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(UpstreamRequest, ContentLengthZeroKept) {
  RequestHead head = request({{"Host", "a"}, {"Content-Length", "0"}}, "POST", "/u");
  head.content_length = 0;
  EXPECT_EQ(upstream(head).one("Content-Length"), "0");
}

TEST(UpstreamRequest, NoBodyNoFraming) {
  const auto h = upstream(request({{"Host", "a"}}));
  EXPECT_FALSE(h.has("Content-Length"));
  EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(UpstreamRequest, ExpectDropped) {
  RequestHead head =
      request({{"Host", "a"}, {"Expect", "100-continue"}, {"Content-Length", "3"}}, "PUT", "/u");
  head.content_length = 3;
  head.expect_continue = true;
  const auto h = upstream(head);
  EXPECT_FALSE(h.has("Expect"));
  EXPECT_EQ(h.one("Content-Length"), "3");
}

// "gzip, chunked" is a final chunked (the parser accepts it), and the session only removes the
// chunked framing: the body upstream is still gzip-coded. The upstream must be told so, or the
// request must be refused at the parser; sending "Transfer-Encoding: chunked" alone hands the
// origin gzip bytes it takes for the plain body.
TEST(UpstreamRequest, TransferCodingsBeforeChunkedNotSilentlyDropped) {
  const std::string raw = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  RequestParser p;
  p.reset(ParserLimits{});
  const std::size_t n = p.parse_head(raw);
  if (n == 0) {
    EXPECT_NE(p.error().status, 0u);  // refused at the codec: acceptable
    return;
  }
  const auto h = upstream(p.head());
  EXPECT_EQ(h.joined("Transfer-Encoding"), "gzip, chunked");
}

// ---------------------------------------------------------------------------------------
// Responses.

ResponseHead response(std::vector<Field> fields, unsigned status = 200,
                      std::string_view reason = "OK", unsigned version = 11) {
  ResponseHead h;
  h.status = status;
  h.reason = reason;
  h.version = version;
  h.fields = std::move(fields);
  return h;
}

ResponseForwarding rfwd() {
  ResponseForwarding f;
  f.via = "1.1 edge-fra-1";
  return f;
}

WrittenHead downstream(const ResponseHead& head, const ResponseForwarding& f = rfwd()) {
  std::string out = "stale";
  write_downstream_response(head, f, out);
  return split(out);
}

// ---------------------------------------------------------------------------------------
// A route's header rules (routes[].headers) and the trace context, on both heads.

TEST(HeaderRules, RequestSetAndRemoveApplyAfterMeridiansOwnFields) {
  config::HeaderRules rules;
  rules.set = {{"x-env", "prod"}, {"x-forwarded-proto", "edge"}};
  rules.remove = {"x-debug", "via", "x-forwarded-for"};
  RequestForwarding f = fwd();
  f.rules = &rules;
  const auto h = upstream(request({{"Host", "a"},
                                   {"X-Debug", "1"},
                                   {"X-ENV", "dev"},
                                   {"x-env", "qa"},
                                   {"X-Forwarded-For", "198.51.100.1"},
                                   {"X-Kept", "k"}}),
                          f);
  EXPECT_EQ(h.one("x-env"), "prod");
  EXPECT_FALSE(h.has("X-Debug"));
  EXPECT_FALSE(h.has("Via"));                     // meridian's own field, removed by the rule
  EXPECT_FALSE(h.has("X-Forwarded-For"));         // the client's and meridian's addition
  EXPECT_EQ(h.one("X-Forwarded-Proto"), "edge");  // replaces meridian's "http"
  EXPECT_EQ(h.one("X-Kept"), "k");
  EXPECT_EQ(h.one("Host"), "a");
  EXPECT_EQ(h.one("X-Request-Id"), "generated-id-1");
}

TEST(HeaderRules, ResponseSetAndRemoveIncludingMeridiansOwn) {
  config::HeaderRules rules;
  rules.set = {{"strict-transport-security", "max-age=1"}};
  rules.remove = {"server", "via", "ratelimit-remaining"};
  ResponseForwarding f = rfwd();
  f.rules = &rules;
  f.rate_limit_headers = "RateLimit-Limit: 10\r\nRateLimit-Remaining: 9\r\n";
  const auto h = downstream(response({{"Server", "origin"},
                                      {"Strict-Transport-Security", "max-age=9"},
                                      {"Content-Length", "0"},
                                      {"X-Kept", "k"}}),
                            f);
  EXPECT_FALSE(h.has("Server"));
  EXPECT_FALSE(h.has("Via"));
  EXPECT_FALSE(h.has("RateLimit-Remaining"));
  EXPECT_EQ(h.one("RateLimit-Limit"), "10");
  EXPECT_EQ(h.one("Strict-Transport-Security"), "max-age=1");
  EXPECT_EQ(h.one("X-Kept"), "k");
  EXPECT_EQ(h.one("Content-Length"), "0");
}

TEST(TraceContext, TraceparentReplacedAndTracestateKeptOnlyWithTheClientsTrace) {
  RequestForwarding f = fwd();
  f.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
  f.keep_tracestate = true;
  const auto head =
      request({{"Host", "a"},
               {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
               {"tracestate", "congo=t61rcWkgMzE"}});
  auto h = upstream(head, f);
  EXPECT_EQ(h.one("traceparent"), f.traceparent);
  EXPECT_EQ(h.one("tracestate"), "congo=t61rcWkgMzE");
  f.keep_tracestate = false;
  h = upstream(head, f);
  EXPECT_EQ(h.one("traceparent"), f.traceparent);
  EXPECT_FALSE(h.has("tracestate"));
  // Tracing off: both pass through like any field.
  h = upstream(head);
  EXPECT_EQ(h.one("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(h.one("tracestate"), "congo=t61rcWkgMzE");
}

TEST(DownstreamResponse, StatusLine) {
  EXPECT_EQ(downstream(response({}, 200, "OK")).start_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(downstream(response({}, 404, "Nope")).start_line, "HTTP/1.1 404 Nope");
  EXPECT_EQ(downstream(response({}, 201, "")).start_line, "HTTP/1.1 201 Created");
  EXPECT_EQ(downstream(response({}, 200, "OK", 10)).start_line, "HTTP/1.1 200 OK");
}

TEST(DownstreamResponse, HopByHopRemoved) {
  const auto h = downstream(response({{"Connection", "keep-alive, X-Internal"},
                                      {"Keep-Alive", "timeout=5"},
                                      {"Proxy-Connection", "keep-alive"},
                                      {"TE", "trailers"},
                                      {"Trailer", "X-Sum"},
                                      {"Upgrade", "h2c"},
                                      {"X-Internal", "secret"},
                                      {"Content-Length", "0"},
                                      {"X-Kept", "k"}}));
  for (std::string_view name :
       {"Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "X-Internal"}) {
    EXPECT_FALSE(h.has(name)) << name;
  }
  EXPECT_FALSE(h.has("Connection"));
  EXPECT_EQ(h.one("X-Kept"), "k");
  EXPECT_EQ(h.one("Content-Length"), "0");
}

TEST(DownstreamResponse, ViaAdded) {
  auto h = downstream(response({{"Content-Length", "0"}}));
  EXPECT_EQ(h.one("Via"), "1.1 edge-fra-1");
  h = downstream(response({{"Via", "1.1 origin-proxy"}, {"Content-Length", "0"}}));
  EXPECT_EQ(h.joined("Via"), "1.1 origin-proxy, 1.1 edge-fra-1");
}

TEST(DownstreamResponse, RateLimitHeadersReplaceTheOrigins) {
  const auto origin = response({{"RateLimit-Limit", "1000"},
                                {"ratelimit-remaining", "999"},
                                {"RateLimit-Reset", "1"},
                                {"RateLimit-Policy", "1000;w=1"},
                                {"Content-Length", "0"}});
  // Without a limit of meridian's, the origin's fields pass.
  auto h = downstream(origin);
  EXPECT_EQ(h.one("RateLimit-Limit"), "1000");
  ResponseForwarding f = rfwd();
  f.rate_limit_headers = "RateLimit-Limit: 10\r\nRateLimit-Remaining: 9\r\nRateLimit-Reset: 6\r\n";
  h = downstream(origin, f);
  EXPECT_EQ(h.one("RateLimit-Limit"), "10");
  EXPECT_EQ(h.one("RateLimit-Remaining"), "9");
  EXPECT_EQ(h.one("RateLimit-Reset"), "6");
  EXPECT_EQ(h.one("RateLimit-Policy"), "1000;w=1");  // not one of the three; passes
}

TEST(DownstreamResponse, ContentLengthKeptWhenNotReframed) {
  const auto h = downstream(response({{"Content-Type", "text/plain"}, {"Content-Length", "42"}}));
  EXPECT_EQ(h.one("Content-Length"), "42");
  EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(DownstreamResponse, ChunkedReframingDropsContentLength) {
  ResponseForwarding f = rfwd();
  f.chunked = true;
  auto h = downstream(response({{"Transfer-Encoding", "chunked"}, {"X-A", "1"}}), f);
  EXPECT_EQ(h.one("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(h.has("Content-Length"));
  // A close-delimited upstream body re-framed as chunked, even if a length was announced.
  h = downstream(response({{"Content-Length", "10"}}), f);
  EXPECT_EQ(h.one("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(h.has("Content-Length"));
}

TEST(DownstreamResponse, UpstreamTransferEncodingNeverCopied) {
  const auto h = downstream(response({{"Transfer-Encoding", "chunked"}}));
  EXPECT_FALSE(h.has("Transfer-Encoding"));
}

TEST(DownstreamResponse, ConnectionCloseWhenClosing) {
  ResponseForwarding f = rfwd();
  f.close = true;
  const auto h = downstream(response({{"Content-Length", "0"}, {"Connection", "keep-alive"}}), f);
  EXPECT_EQ(h.one("Connection"), "close");
}

TEST(DownstreamResponse, KeepAliveForHttp10Client) {
  ResponseForwarding f = rfwd();
  f.keep_alive_10 = true;
  auto h = downstream(response({{"Content-Length", "0"}}), f);
  EXPECT_EQ(h.one("Connection"), "keep-alive");
  f.close = true;  // closing wins
  h = downstream(response({{"Content-Length", "0"}}), f);
  EXPECT_EQ(h.one("Connection"), "close");
}

TEST(DownstreamResponse, NoConnectionFieldByDefault) {
  // The upstream's "Connection: close" is about the upstream connection, not the client's.
  const auto h = downstream(response({{"Content-Length", "0"}, {"Connection", "close"}}));
  EXPECT_FALSE(h.has("Connection"));
}

TEST(DownstreamResponse, DebugHeaders) {
  ResponseForwarding f = rfwd();
  f.region = "eu-west";
  f.endpoint = "10.0.1.10:8080";
  auto h = downstream(response({{"Content-Length", "0"}}), f);
  EXPECT_EQ(h.one("x-meridian-region"), "eu-west");
  EXPECT_EQ(h.one("x-meridian-endpoint"), "10.0.1.10:8080");
  h = downstream(response({{"Content-Length", "0"}}));
  EXPECT_FALSE(h.has("x-meridian-region"));
  EXPECT_FALSE(h.has("x-meridian-endpoint"));
}

TEST(DownstreamResponse, RepeatedFieldsAndOrderKept) {
  const auto h = downstream(response({{"Set-Cookie", "a=1"},
                                      {"Content-Length", "0"},
                                      {"set-cookie", "b=2"},
                                      {"Cache-Control", "no-store"}}));
  Lines passed;
  for (const auto& f : h.fields) {
    if (iequals(f.first, "set-cookie") || f.first == "Cache-Control") passed.push_back(f);
  }
  const Lines want{{"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}, {"Cache-Control", "no-store"}};
  EXPECT_EQ(passed, want);
}

TEST(DownstreamResponse, EndToEndIsAValidResponse) {
  ResponseForwarding f = rfwd();
  f.chunked = true;
  f.close = true;
  std::string out;
  write_downstream_response(
      response({{"Content-Type", "text/plain"}, {"Transfer-Encoding", "chunked"}}), f, out);
  out += "3\r\nabc\r\n0\r\n\r\n";
  ResponseParser p;
  p.reset(ParserLimits{});
  const std::size_t n = p.parse_head(out);
  ASSERT_NE(n, 0u) << p.error().reason << "\n" << out;
  EXPECT_TRUE(p.head().chunked);
  EXPECT_FALSE(p.head().keep_alive);
  BodySlices slices;
  p.parse_body(std::string_view(out).substr(n), slices);
  EXPECT_TRUE(p.done());
}

// ---------------------------------------------------------------------------------------
// Local replies (the answers meridian gives itself).

TEST(LocalReply, Format) {
  std::string out = "stale";
  write_local_reply(404, "no route", false, "", "", out);
  const auto h = split(out);
  EXPECT_EQ(h.start_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(h.one("Content-Type").rfind("text/plain", 0), 0u) << h.one("Content-Type");
  EXPECT_EQ(h.one("Content-Length"), std::to_string(h.body.size()));
  EXPECT_EQ(h.body.rfind("no route", 0), 0u) << h.body;
  EXPECT_LE(h.body.size(), std::string_view("no route\r\n").size());  // short
  EXPECT_FALSE(h.has("Connection"));
  EXPECT_FALSE(h.has("Via"));
}

TEST(LocalReply, CloseOnlyWhenAsked) {
  std::string out;
  write_local_reply(400, "malformed request", true, "", "", out);
  auto h = split(out);
  EXPECT_EQ(h.start_line, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(h.one("Connection"), "close");
  write_local_reply(429, "rate limited", false, "", "", out);
  h = split(out);
  EXPECT_FALSE(h.has("Connection"));
}

TEST(LocalReply, ContentLengthMatchesBody) {
  for (std::string_view cause : {"", "x", "upstream timed out", "a much longer cause text here"}) {
    std::string out;
    write_local_reply(504, cause, false, "1.1 edge", "", out);
    const auto h = split(out);
    EXPECT_EQ(h.one("Content-Length"), std::to_string(h.body.size())) << cause;
    EXPECT_EQ(h.body.find(cause), 0u) << cause;
    EXPECT_EQ(h.one("Content-Type").rfind("text/plain", 0), 0u);
  }
}

TEST(LocalReply, ViaAndExtraHeaders) {
  std::string out;
  write_local_reply(503, "no eligible region", false, "1.1 edge-fra-1", "Retry-After: 1\r\n", out);
  const auto h = split(out);
  EXPECT_EQ(h.start_line, "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(h.one("Via"), "1.1 edge-fra-1");
  EXPECT_EQ(h.one("Retry-After"), "1");

  write_local_reply(429, "rate limited", true, "",
                    "Retry-After: 2\r\nRateLimit-Limit: 10\r\nRateLimit-Remaining: 0\r\n"
                    "RateLimit-Reset: 2\r\n",
                    out);
  const auto r = split(out);
  EXPECT_EQ(r.one("Retry-After"), "2");
  EXPECT_EQ(r.one("RateLimit-Limit"), "10");
  EXPECT_EQ(r.one("RateLimit-Remaining"), "0");
  EXPECT_EQ(r.one("RateLimit-Reset"), "2");
  EXPECT_EQ(r.one("Connection"), "close");
  EXPECT_FALSE(r.has("Via"));
}

TEST(LocalReply, ParsesAsAResponse) {
  std::string out;
  write_local_reply(431, "request header fields too large", true, "1.1 e", "", out);
  ResponseParser p;
  p.reset(ParserLimits{});
  const std::size_t n = p.parse_head(out);
  ASSERT_NE(n, 0u) << p.error().reason;
  EXPECT_EQ(p.head().status, 431u);
  EXPECT_FALSE(p.head().keep_alive);
  BodySlices slices;
  EXPECT_EQ(p.parse_body(std::string_view(out).substr(n), slices), out.size() - n);
  EXPECT_TRUE(p.done());
}

TEST(ReasonPhrase, SpecStatuses) {
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(408), "Request Timeout");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(414), "URI Too Long");
  EXPECT_EQ(reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(504), "Gateway Timeout");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_FALSE(reason_phrase(299).empty());
  EXPECT_FALSE(reason_phrase(599).empty());
}

TEST(IsHopByHop, FixedSet) {
  for (std::string_view name :
       {"Connection", "keep-alive", "PROXY-CONNECTION", "TE", "Trailer", "Upgrade"}) {
    EXPECT_TRUE(is_hop_by_hop(name)) << name;
  }
  for (std::string_view name : {"Host", "Trailers", "Content-Length", "Transfer-Encoding",
                                "X-Forwarded-For", "Via", "Connections"}) {
    EXPECT_FALSE(is_hop_by_hop(name)) << name;
  }
}

}  // namespace
}  // namespace meridian::http

// ---------------------------------------------------------------------------------------
// WebSocket handshakes: Upgrade is hop-by-hop and removed, except for WebSocket.

namespace meridian::http {
namespace {

const std::vector<Field> kHandshake = {{"Host", "a"},
                                       {"Upgrade", "websocket"},
                                       {"Connection", "keep-alive, Upgrade"},
                                       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                       {"Sec-WebSocket-Version", "13"}};

TEST(WebSocket, HandshakeRecognised) {
  EXPECT_TRUE(is_websocket_upgrade(request(kHandshake)));
  EXPECT_TRUE(is_websocket_upgrade(
      request({{"Host", "a"}, {"upgrade", "foo/2, WebSocket"}, {"connection", "upgrade"}})));
}

TEST(WebSocket, NotAHandshake) {
  EXPECT_FALSE(is_websocket_upgrade(request({{"Host", "a"}, {"Upgrade", "websocket"}})));
  EXPECT_FALSE(is_websocket_upgrade(
      request({{"Host", "a"}, {"Upgrade", "h2c"}, {"Connection", "Upgrade"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(kHandshake, "POST")));
  EXPECT_FALSE(is_websocket_upgrade(request(kHandshake, "GET", "/", 10)));
  auto with_body = request(kHandshake);
  with_body.content_length = 5;
  EXPECT_FALSE(is_websocket_upgrade(with_body));
}

TEST(WebSocket, UpgradeForwardedWithConnectionUpgrade) {
  auto f = fwd();
  f.upgrade = true;
  const auto h = upstream(request(kHandshake), f);
  EXPECT_EQ(h.one("Upgrade"), "websocket");
  EXPECT_EQ(h.one("Connection"), "Upgrade");
  EXPECT_EQ(h.one("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(h.one("Sec-WebSocket-Version"), "13");
  EXPECT_FALSE(h.has("Content-Length"));
  // Without the flag (a declined or non-WebSocket upgrade) both stay hop-by-hop.
  const auto plain = upstream(request(kHandshake));
  EXPECT_FALSE(plain.has("Upgrade"));
  EXPECT_FALSE(plain.has("Connection"));
}

TEST(WebSocket, SwitchingProtocolsResponse) {
  auto r = rfwd();
  r.upgrade = true;
  r.close = true;  // ignored: a tunnel follows
  const auto h = downstream(response({{"Upgrade", "websocket"},
                                      {"Connection", "Upgrade"},
                                      {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
                                     101, "Switching Protocols"),
                            r);
  EXPECT_EQ(h.start_line, "HTTP/1.1 101 Switching Protocols");
  EXPECT_EQ(h.one("Upgrade"), "websocket");
  EXPECT_EQ(h.one("Connection"), "Upgrade");
  EXPECT_EQ(h.one("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_FALSE(h.has("Content-Length"));
  EXPECT_FALSE(h.has("Transfer-Encoding"));
}

}  // namespace
}  // namespace meridian::http
