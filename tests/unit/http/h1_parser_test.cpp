// The HTTP/1.1 codec (h1_parser.hpp) at byte level: every refusal docs/http-behaviour.md
// lists under "Input that is refused", with the exact status it gives, and the framing a proxy
// relies on (heads split anywhere, chunked bodies split anywhere, pipelined messages, response
// bodies without a length).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "meridian/http/h1/parser.hpp"

namespace meridian::http {
namespace {

using namespace std::string_view_literals;

ParserLimits limits(std::uint64_t head = 64 * 1024, std::uint32_t fields = 100,
                    std::uint64_t body = 0) {
  ParserLimits l;
  l.max_head_bytes = head;
  l.max_fields = fields;
  l.max_body_bytes = body;
  return l;
}

// What became of one raw request fed to a fresh parser in a single buffer.
struct Outcome {
  unsigned status = 0;     // 0: accepted (or still incomplete, see complete)
  bool head_done = false;  // parse_head returned the head's length
  bool complete = false;   // the whole message (head and body) was parsed
  std::size_t head_length = 0;
  std::size_t body_consumed = 0;
  std::string body;
};

template <bool IsRequest>
Outcome run(H1Parser<IsRequest>& p, std::string_view raw) {
  Outcome o;
  o.head_length = p.parse_head(raw);
  o.head_done = o.head_length != 0;
  if (o.head_done && !p.done()) {
    std::string_view rest = raw.substr(o.head_length);
    while (!rest.empty() && !p.done() && !p.error()) {
      BodySlices slices;
      const std::size_t n = p.parse_body(rest, slices);
      for (auto s : slices)
        o.body.append(s);
      o.body_consumed += n;
      rest.remove_prefix(n);
      if (n == 0) break;
    }
  }
  o.status = p.error().status;
  o.complete = p.done() && !p.error();
  return o;
}

Outcome parse_request(std::string_view raw, const ParserLimits& l = limits()) {
  RequestParser p;
  p.reset(l);
  return run(p, raw);
}

// Status the codec answers for `raw` (0 when it accepts it).
unsigned refusal(std::string_view raw, const ParserLimits& l = limits()) {
  return parse_request(raw, l).status;
}

// "3, 5-9, 12" for a sorted list of positions.
std::string ranges(const std::vector<std::size_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1)
      ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(v[i]);
    if (j > i) {
      out.push_back('-');
      out.append(std::to_string(v[j]));
    }
    i = j + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Input that is refused (RFC 9112; docs/http-behaviour.md), one raw request each.

struct Refusal {
  const char* name;
  std::string_view raw;
  unsigned status;
};

std::ostream& operator<<(std::ostream& os, const Refusal& r) {
  return os << r.name;
}

class RequestRefusal : public ::testing::TestWithParam<Refusal> {};

TEST_P(RequestRefusal, AnswersTheSpecStatus) {
  const Refusal& r = GetParam();
  RequestParser p;
  p.reset(limits());
  const Outcome o = run(p, r.raw);
  EXPECT_EQ(o.status, r.status) << "raw: " << ::testing::PrintToString(std::string(r.raw))
                                << "\nreason: " << p.error().reason;
  EXPECT_FALSE(o.complete) << "a refused request must never come out as a complete message";
  if (o.status != 0) {
    EXPECT_FALSE(p.error().reason.empty());
  }
}

// clang-format off
const Refusal kRefusals[] = {
    // Content-Length together with Transfer-Encoding, in either order.
    {"CLThenTE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
    {"TEThenCL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
    {"CLZeroAndTE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    // Several differing Content-Length values.
    {"CLTwoFieldsDiffer", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
    {"CLListDiffers", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400},
    {"CLListAndFieldDiffer", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
    // Invalid Content-Length values.
    {"CLNotANumber", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400},
    {"CLNegative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
    {"CLPlusSign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400},
    {"CLHex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400},
    {"CLEmpty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
    {"CLOverflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
    {"CLWithInnerSpace", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nhello world!", 400},
    // Transfer-Encoding other than a final "chunked".
    {"TEGzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400},
    {"TEChunkedThenGzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
    {"TEXChunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
    {"TEChunkedX", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", 400},
    {"TEIdentity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
    {"TEChunkedTwiceInList", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
    {"TEChunkedTwiceInFields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"TEEmptyListElement", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,,\r\n\r\n0\r\n\r\n", 400},
    {"TEWithParameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400},
    {"TEEmpty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400},
    {"TEInHttp10", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    // Invalid chunk size (and invalid chunk framing).
    {"ChunkSizeNotHex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeNegative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeOverflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeHexPrefix", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeEmpty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeLeadingSpace", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400},
    {"ChunkSizeBareLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
    {"ChunkDataTooLong", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", 400},
    {"ChunkDataBareLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400},
    // Bare LF (and bare CR) in the head.
    {"BareLFEndsRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
    {"BareLFEndsField", "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400},
    {"BareLFEndsHead", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
    {"BareLFEveryLine", "GET / HTTP/1.1\nHost: a\n\n", 400},
    {"BareCRInField", "GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400},
    {"BareCRInRequestLine", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // obs-fold.
    {"ObsFoldSpace", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400},
    {"ObsFoldTab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", 400},
    {"ObsFoldAfterEmptyValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n two\r\n\r\n", 400},
    {"ObsFoldAfterBlankValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A:   \r\n two\r\n\r\n", 400},
    {"ObsFoldOfHost", "GET / HTTP/1.1\r\nHost:\r\n a\r\n\r\n", 400},
    {"ObsFoldOfContentLength", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\nhello", 400},
    {"ObsFoldOfTransferEncoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
    {"WhitespaceBeforeFirstField", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
    // Whitespace before a header colon.
    {"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"TabBeforeColon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
    {"SpaceBeforeColonOfCL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", 400},
    {"SpaceBeforeColonOfTE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
    // Control characters, NUL included, in a field value or name.
    {"NulInValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n"sv, 400},
    {"CtlInValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n", 400},
    {"DelInValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f" "c\r\n\r\n", 400},
    {"EscInValue", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1b" "c\r\n\r\n", 400},
    {"NulInName", "GET / HTTP/1.1\r\nHost: a\r\nX-\0A: b\r\n\r\n"sv, 400},
    {"CtlInName", "GET / HTTP/1.1\r\nHost: a\r\nX-\x01" "A: b\r\n\r\n", 400},
    {"DelInName", "GET / HTTP/1.1\r\nHost: a\r\nX-\x7f" "A: b\r\n\r\n", 400},
    {"NulInHost", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"sv, 400},
    {"EmptyFieldName", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
    {"SeparatorInName", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400},
    {"NoColon", "GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", 400},
    {"CtlInTarget", "GET /a\x01" "b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"NulInTarget", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"sv, 400},
    // Host.
    {"NoHostHttp11", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
    {"TwoHostFields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
    {"TwoDifferentHostFields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"TwoHostFieldsHttp10", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
    {"HostListInOneField", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400},
    {"HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"HostUnterminatedIpv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
    {"HostIpv6Junk", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
    {"HostIpv6NotHex", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400},
    {"HostPortNotNumeric", "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", 400},
    {"HostPortTooLong", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400},
    {"HostTwoPorts", "GET / HTTP/1.1\r\nHost: a:80:81\r\n\r\n", 400},
    {"HostOnlyPort", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
    {"HostWithUserinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
    {"HostWithPath", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"HostWithQuery", "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400},
    // Invalid method token.
    {"MethodWithSeparator", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodWithCtl", "GE\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodWithSlash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodEmpty", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"MethodWithNonAscii", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // Request-line shape.
    {"TwoSpacesBeforeTarget", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TwoSpacesBeforeVersion", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"TrailingSpaceAfterVersion", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"TabSeparators", "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"RelativeTarget", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AsteriskForGet", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"Connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400},
    {"AbsoluteFormFtp", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormUserinfo", "GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"AbsoluteFormHostDiffers", "GET http://a/p HTTP/1.1\r\nHost: b\r\n\r\n", 400},
    {"AbsoluteFormPortDiffers", "GET http://a:8080/p HTTP/1.1\r\nHost: a:9090\r\n\r\n", 400},
    {"AbsoluteFormNoHost", "GET http://a/p HTTP/1.1\r\n\r\n", 400},
    {"AbsoluteFormEmptyAuthority", "GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    // HTTP/0.9 and malformed versions: 400.
    {"Http09", "GET /\r\n\r\n", 400},
    {"Http09NoTarget", "GET\r\n\r\n", 400},
    {"VersionLowerCase", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"VersionTwoDigitMinor", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
    {"VersionMissingMinor", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
    {"VersionJunk", "GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400},
    // Well-formed versions meridian does not speak: 505.
    {"Http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"Http30", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
    {"Http09Explicit", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    // RFC 9112 2.3 lets a server treat HTTP/1.2 as 1.1; meridian cannot re-label it on the
    // way to an HTTP/1.1 upstream, so it refuses it, with the version status, not 400.
    {"Http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Spec11, RequestRefusal, ::testing::ValuesIn(kRefusals),
                         [](const ::testing::TestParamInfo<Refusal>& param_info) {
                           return std::string(param_info.param.name);
                         });

// A refused parser stays refused until reset, and reset makes it usable again.
TEST(RequestParser, ErrorIsStickyUntilReset) {
  RequestParser p;
  p.reset(limits());
  const std::string_view bad = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
  EXPECT_EQ(p.parse_head(bad), 0u);
  EXPECT_EQ(p.error().status, 400u);
  EXPECT_TRUE(static_cast<bool>(p.error()));
  const std::string_view good = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(p.parse_head(good), 0u);
  EXPECT_EQ(p.error().status, 400u);
  BodySlices slices;
  EXPECT_EQ(p.parse_body("abc", slices), 0u);
  EXPECT_TRUE(slices.empty());

  p.reset(limits());
  EXPECT_FALSE(static_cast<bool>(p.error()));
  EXPECT_EQ(p.parse_head(good), good.size());
  EXPECT_TRUE(p.done());
}

// ---------------------------------------------------------------------------------------
// Content-Length duplicates that agree: RFC 9112 6.3 lets a recipient accept "5, 5" or two
// "Content-Length: 5" fields as one length, and meridian refuses only *differing* values.
// Beast accepts both forms; the proxy regenerates the framing headers anyway.

TEST(RequestParser, IdenticalDuplicateContentLengthFieldsAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o =
      run(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  ASSERT_TRUE(o.complete);
  ASSERT_TRUE(p.head().content_length.has_value());
  EXPECT_EQ(*p.head().content_length, 5u);
  EXPECT_EQ(o.body, "hello");
}

TEST(RequestParser, IdenticalContentLengthListAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  ASSERT_TRUE(o.complete);
  ASSERT_TRUE(p.head().content_length.has_value());
  EXPECT_EQ(*p.head().content_length, 5u);
  EXPECT_EQ(o.body, "hello");
}

// Leading whitespace before a field value is OWS, not part of the coding.
TEST(RequestParser, TransferEncodingWithSurroundingWhitespaceAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o =
      run(p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   chunked \t\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_TRUE(o.complete);
  EXPECT_TRUE(p.head().chunked);
}

TEST(RequestParser, TransferEncodingChunkedIsCaseInsensitive) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(
      p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_TRUE(o.complete);
  EXPECT_TRUE(p.head().chunked);
  EXPECT_EQ(o.body, "abc");
}

// "gzip, chunked" *is* a final chunked: it is not refused (what the proxy then sends upstream
// is checked in forwarding_test.cpp).
TEST(RequestParser, TransferEncodingGzipThenChunkedIsFinalChunked) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p,
                     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, "
                     "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_TRUE(p.head().chunked);
}

// ---------------------------------------------------------------------------------------
// Host rules that accept.

TEST(RequestParser, Http10WithoutHostAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_TRUE(o.complete);
  EXPECT_EQ(p.head().version, 10u);
  EXPECT_TRUE(p.head().host.empty());
}

TEST(RequestParser, ValidHostForms) {
  for (std::string_view host :
       {"example.com", "Example.COM:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:443",
        "[2001:db8::1]", "xn--bcher-kva.example", "a-b.c_d~e.example", "localhost"}) {
    std::string raw = "GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n";
    RequestParser p;
    p.reset(limits());
    const auto o = run(p, raw);
    EXPECT_EQ(o.status, 0u) << host << ": " << p.error().reason;
    EXPECT_EQ(p.head().host, host);
  }
}

TEST(IsValidHost, Cases) {
  EXPECT_TRUE(is_valid_host("example.com"));
  EXPECT_TRUE(is_valid_host("example.com:1"));
  EXPECT_TRUE(is_valid_host("EXAMPLE.com:65535"));
  EXPECT_TRUE(is_valid_host("10.0.0.1"));
  EXPECT_TRUE(is_valid_host("[::1]"));
  EXPECT_TRUE(is_valid_host("[::1]:8080"));
  EXPECT_TRUE(is_valid_host("[::ffff:10.0.0.1]"));
  EXPECT_FALSE(is_valid_host(""));
  EXPECT_FALSE(is_valid_host("a b"));
  EXPECT_FALSE(is_valid_host(" a"));
  EXPECT_FALSE(is_valid_host("[::1"));
  EXPECT_FALSE(is_valid_host("[]"));
  EXPECT_FALSE(is_valid_host("[::1]:"));
  EXPECT_FALSE(is_valid_host("[::1]x"));
  EXPECT_FALSE(is_valid_host("[::1]:8o"));
  EXPECT_FALSE(is_valid_host("a:"));
  EXPECT_FALSE(is_valid_host(":80"));
  EXPECT_FALSE(is_valid_host("a:123456"));
  EXPECT_FALSE(is_valid_host("a:8x"));
  EXPECT_FALSE(is_valid_host("a/b"));
  EXPECT_FALSE(is_valid_host("a@b"));
  EXPECT_FALSE(is_valid_host("a\0b"sv));
  EXPECT_FALSE(is_valid_host("a\tb"));
}

// ---------------------------------------------------------------------------------------
// Request targets.

TEST(RequestParser, OriginFormTargetAndPath) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET /a/b?x=1&y=/z HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().method, "GET");
  EXPECT_EQ(p.head().target, "/a/b?x=1&y=/z");
  EXPECT_EQ(p.head().path, "/a/b");
  EXPECT_EQ(p.head().host, "h");
  EXPECT_EQ(p.head().version, 11u);
}

TEST(RequestParser, AbsoluteFormSetsHostAndOriginFormTarget) {
  RequestParser p;
  p.reset(limits());
  const auto o =
      run(p, "GET http://Example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().host, "Example.com:8080");
  EXPECT_EQ(p.head().target, "/a/b?q=1");
  EXPECT_EQ(p.head().path, "/a/b");
  EXPECT_TRUE(o.complete);
}

TEST(RequestParser, AbsoluteFormWithoutPathBecomesSlash) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().host, "a.example");
  EXPECT_EQ(p.head().target, "/");
  EXPECT_EQ(p.head().path, "/");
}

TEST(RequestParser, AbsoluteFormHttpsSchemeAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET HTTPS://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().host, "a.example");
  EXPECT_EQ(p.head().target, "/x");
}

// An absolute-form request in HTTP/1.0 needs no Host field: the authority is the host.
TEST(RequestParser, AbsoluteFormHttp10WithoutHostField) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET http://a.example/x HTTP/1.0\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().host, "a.example");
  EXPECT_EQ(p.head().target, "/x");
}

TEST(RequestParser, OptionsAsteriskAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().method, "OPTIONS");
  EXPECT_EQ(p.head().target, "*");
  EXPECT_TRUE(o.complete);
}

// Methods are case-sensitive tokens; unknown ones are still requests (RFC 9110 9.1).
TEST(RequestParser, ExtensionMethodAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "PURGE-ALL /x HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().method, "PURGE-ALL");
}

// ---------------------------------------------------------------------------------------
// Limits: 414 for the request line, 431 for the head or the number of fields, 413 for the
// body.

TEST(RequestLimits, RequestLineOverLimitIs414) {
  const std::string raw = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(refusal(raw, limits(128)), 414u);
}

TEST(RequestLimits, IncompleteRequestLineOverLimitIs414) {
  const std::string raw = "GET /" + std::string(200, 'a');  // no CRLF yet
  EXPECT_EQ(refusal(raw, limits(128)), 414u);
}

// A session re-feeds its growing buffer from the start after every read.
std::pair<unsigned, std::size_t> refusal_fed_in_pieces(std::string_view raw, std::size_t step,
                                                       const ParserLimits& l) {
  RequestParser p;
  p.reset(l);
  for (std::size_t len = step;; len += step) {
    const std::size_t n = p.parse_head(raw.substr(0, std::min(len, raw.size())));
    if (p.error() || n != 0 || len >= raw.size()) return {p.error().status, len};
  }
}

TEST(RequestLimits, RequestLineOverLimitFedInPiecesIs414) {
  const std::string raw = "GET /" + std::string(300, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  const auto [status, at] = refusal_fed_in_pieces(raw, 10, limits(128));
  EXPECT_EQ(status, 414u);
  EXPECT_LE(at, 140u) << "refused only after " << at << " bytes";
}

TEST(RequestLimits, FieldsOverLimitFedInPiecesIs431) {
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(300, 'b') + "\r\n\r\n";
  const auto [status, at] = refusal_fed_in_pieces(raw, 10, limits(128));
  EXPECT_EQ(status, 431u);
  EXPECT_LE(at, 140u) << "refused only after " << at << " bytes";
}

TEST(RequestLimits, FieldsOverLimitIs431) {
  const std::string raw =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200, 'b') + "\r\n\r\n";
  EXPECT_EQ(refusal(raw, limits(128)), 431u);
}

TEST(RequestLimits, IncompleteFieldsOverLimitIs431) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200, 'b');
  EXPECT_EQ(refusal(raw, limits(128)), 431u);
}

// limits.max_request_header_bytes counts the request line *plus* the fields.
TEST(RequestLimits, LineAndFieldsTogetherOverLimitIs431) {
  // Line 84 bytes, fields 84 bytes: each alone fits in 128, together they do not.
  const std::string line = "GET /" + std::string(68, 'a') + " HTTP/1.1\r\n";
  const std::string fields = "Host: a\r\nX-Pad: " + std::string(64, 'b') + "\r\n\r\n";
  ASSERT_EQ(line.size(), 84u);
  ASSERT_EQ(fields.size(), 84u);
  EXPECT_EQ(refusal(line + fields, limits(128)), 431u);
}

TEST(RequestLimits, HeadExactlyAtLimitAccepted) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  std::string raw = head + std::string(128 - head.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(raw.size(), 128u);
  RequestParser p;
  p.reset(limits(128));
  EXPECT_EQ(p.parse_head(raw), 128u) << p.error().reason;
  EXPECT_EQ(p.error().status, 0u);
}

TEST(RequestLimits, HeadOneByteOverLimitIs431) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  std::string raw = head + std::string(129 - head.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(raw.size(), 129u);
  EXPECT_EQ(refusal(raw, limits(128)), 431u);
}

TEST(RequestLimits, TooManyFieldsIs431) {
  const std::string_view raw = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  EXPECT_EQ(refusal(raw, limits(64 * 1024, 4)), 431u);
  EXPECT_EQ(refusal(raw, limits(64 * 1024, 5)), 0u);
}

TEST(RequestLimits, ContentLengthOverBodyLimitIs413) {
  const std::string_view raw =
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
  EXPECT_EQ(refusal(raw, limits(64 * 1024, 100, 10)), 413u);
  // Known at the head: refused before any body byte.
  RequestParser p;
  p.reset(limits(64 * 1024, 100, 10));
  EXPECT_EQ(p.parse_head(raw), 0u);
  EXPECT_EQ(p.error().status, 413u);
}

TEST(RequestLimits, ContentLengthAtBodyLimitAccepted) {
  const auto o = parse_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789",
                               limits(64 * 1024, 100, 10));
  EXPECT_EQ(o.status, 0u);
  EXPECT_TRUE(o.complete);
  EXPECT_EQ(o.body, "0123456789");
}

TEST(RequestLimits, ChunkedOverBodyLimitIs413) {
  const std::string_view raw =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
  const auto o = parse_request(raw, limits(64 * 1024, 100, 10));
  EXPECT_TRUE(o.head_done);
  EXPECT_EQ(o.status, 413u);
  EXPECT_FALSE(o.complete);
}

TEST(RequestLimits, SingleHugeChunkOverBodyLimitIs413) {
  const std::string_view raw =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nabc";
  EXPECT_EQ(parse_request(raw, limits(64 * 1024, 100, 10)).status, 413u);
}

TEST(RequestLimits, ChunkedAtBodyLimitAccepted) {
  const std::string_view raw =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n";
  const auto o = parse_request(raw, limits(64 * 1024, 100, 10));
  EXPECT_EQ(o.status, 0u);
  EXPECT_TRUE(o.complete);
  EXPECT_EQ(o.body, "abcdefghij");
}

// ---------------------------------------------------------------------------------------
// Heads: fields, trimming, keep-alive, and heads that arrive in pieces.

TEST(RequestParser, FieldsKeptInOrderWithOriginalCase) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p,
                     "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: 1\r\nx-bar: 2\r\nX-FOO: 3\r\n"
                     "Set-Cookie: a=b\r\nset-cookie: c=d\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  const auto& f = p.head().fields;
  ASSERT_EQ(f.size(), 6u);
  const std::pair<std::string_view, std::string_view> want[] = {
      {"Host", "a"},  {"X-Foo", "1"},        {"x-bar", "2"},
      {"X-FOO", "3"}, {"Set-Cookie", "a=b"}, {"set-cookie", "c=d"}};
  for (std::size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(f[i].name, want[i].first) << i;
    EXPECT_EQ(f[i].value, want[i].second) << i;
  }
  ASSERT_NE(p.head().find("x-foo"), nullptr);
  EXPECT_EQ(p.head().find("x-foo")->value, "1");  // the first one
  EXPECT_EQ(p.head().find("X-Missing"), nullptr);
}

TEST(RequestParser, ValuesTrimmedOfOwsOnly) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p,
                     "GET / HTTP/1.1\r\nHost:a\r\nX-A:   v  \t\r\nX-B:\tin  side\t\r\nX-C:\r\n"
                     "X-D:    \r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  const auto& h = p.head();
  EXPECT_EQ(h.host, "a");
  ASSERT_NE(h.find("x-a"), nullptr);
  EXPECT_EQ(h.find("x-a")->value, "v");
  EXPECT_EQ(h.find("x-b")->value, "in  side");
  ASSERT_NE(h.find("x-c"), nullptr);
  EXPECT_EQ(h.find("x-c")->value, "");
  ASSERT_NE(h.find("x-d"), nullptr);
  EXPECT_EQ(h.find("x-d")->value, "");
}

// obs-text (bytes >= 0x80) is allowed in a value (RFC 9110 5.5).
TEST(RequestParser, ObsTextInValueAccepted) {
  RequestParser p;
  p.reset(limits());
  const auto o = run(p, "GET / HTTP/1.1\r\nHost: a\r\nX-Name: J\xc3\xbcrgen\r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().find("x-name")->value, "J\xc3\xbcrgen");
}

TEST(RequestParser, FieldViewsPointIntoTheCallersBuffer) {
  const std::string raw = "GET /p HTTP/1.1\r\nHost: a\r\nX-A: value\r\n\r\n";
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(raw), raw.size());
  const char* begin = raw.data();
  const char* end = raw.data() + raw.size();
  for (const auto& f : p.head().fields) {
    EXPECT_GE(f.name.data(), begin);
    EXPECT_LE(f.name.data() + f.name.size(), end);
    EXPECT_GE(f.value.data(), begin);
    EXPECT_LE(f.value.data() + f.value.size(), end);
  }
  EXPECT_GE(p.head().target.data(), begin);
  EXPECT_LE(p.head().target.data(), end);
}

struct KeepAliveCase {
  std::string_view raw;
  bool keep_alive;
};

TEST(RequestParser, KeepAlive) {
  const KeepAliveCase cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    RequestParser p;
    p.reset(limits());
    const auto o = run(p, c.raw);
    ASSERT_EQ(o.status, 0u) << c.raw << p.error().reason;
    EXPECT_EQ(p.head().keep_alive, c.keep_alive) << c.raw;
  }
}

TEST(RequestParser, ExpectContinue) {
  RequestParser p;
  p.reset(limits());
  auto o =
      run(p, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(o.status, 0u);
  EXPECT_TRUE(p.head().expect_continue);
  p.reset(limits());
  o = run(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
  EXPECT_FALSE(p.head().expect_continue);
}

TEST(RequestParser, FramingFlags) {
  RequestParser p;
  p.reset(limits());
  ASSERT_NE(p.parse_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0u);
  EXPECT_FALSE(p.head().has_body());
  EXPECT_FALSE(p.head().chunked);
  EXPECT_FALSE(p.head().content_length.has_value());
  EXPECT_TRUE(p.done());

  p.reset(limits());
  ASSERT_NE(p.parse_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0u);
  EXPECT_FALSE(p.head().has_body());
  ASSERT_TRUE(p.head().content_length.has_value());
  EXPECT_EQ(*p.head().content_length, 0u);
  EXPECT_TRUE(p.done());

  p.reset(limits());
  ASSERT_NE(p.parse_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n"), 0u);
  EXPECT_TRUE(p.head().has_body());
  EXPECT_EQ(*p.head().content_length, 7u);
  EXPECT_FALSE(p.done());

  p.reset(limits());
  ASSERT_NE(p.parse_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0u);
  EXPECT_TRUE(p.head().has_body());
  EXPECT_TRUE(p.head().chunked);
  EXPECT_FALSE(p.head().content_length.has_value());
  EXPECT_FALSE(p.done());
}

TEST(RequestParser, ParseHeadReturnsHeadLengthWhenBodyFollows) {
  const std::string_view head = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  const std::string raw = std::string(head) + "hello";
  RequestParser p;
  p.reset(limits());
  EXPECT_EQ(p.parse_head(raw), head.size());
  EXPECT_TRUE(p.head_done());
  EXPECT_FALSE(p.done());
}

// The contract: 0 while incomplete, call again with more data from the same start.
TEST(RequestParser, HeadFedInGrowingPrefixes) {
  const std::string raw =
      "POST /upload?x=1 HTTP/1.1\r\nHost: a.example\r\nX-A: one\r\nContent-Length: 3\r\n\r\n";
  RequestParser p;
  p.reset(limits());
  for (std::size_t i = 1; i < raw.size(); ++i) {
    ASSERT_EQ(p.parse_head(std::string_view(raw).substr(0, i)), 0u) << "prefix " << i;
    ASSERT_EQ(p.error().status, 0u) << "prefix " << i << ": " << p.error().reason;
  }
  ASSERT_EQ(p.parse_head(raw), raw.size()) << p.error().reason;
  EXPECT_EQ(p.head().method, "POST");
  EXPECT_EQ(p.head().target, "/upload?x=1");
  EXPECT_EQ(p.head().host, "a.example");
  ASSERT_EQ(p.head().fields.size(), 3u);
  EXPECT_EQ(p.head().fields[1].value, "one");
  EXPECT_EQ(*p.head().content_length, 3u);
}

// The common split: the request line arrives first, the fields in a later read.
TEST(RequestParser, HeadSplitAfterRequestLine) {
  const std::string raw = "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n";
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(std::string_view(raw).substr(0, 17)), 0u);  // "GET /x HTTP/1.1\r\n"
  ASSERT_EQ(p.error().status, 0u) << p.error().reason;
  ASSERT_EQ(p.parse_head(raw), raw.size()) << p.error().reason;
  EXPECT_EQ(p.head().target, "/x");
  EXPECT_EQ(p.head().host, "a");
  EXPECT_EQ(p.head().fields.size(), 2u);
}

// A head larger than one read (big cookies): the first read ends inside the fields.
TEST(RequestParser, HeadSplitInsideFields) {
  const std::string raw =
      "GET /x HTTP/1.1\r\nHost: a\r\nCookie: " + std::string(3000, 'c') + "\r\nX-After: 1\r\n\r\n";
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(std::string_view(raw).substr(0, 1448)), 0u);
  ASSERT_EQ(p.error().status, 0u) << p.error().reason;
  ASSERT_EQ(p.parse_head(raw), raw.size()) << p.error().reason;
  EXPECT_EQ(p.head().host, "a");
  ASSERT_NE(p.head().find("x-after"), nullptr);
}

// Two reads, the first ending at every possible byte: the head must parse the same way.
TEST(RequestParser, HeadSplitAtEveryPosition) {
  const std::string raw =
      "POST /u?q=1 HTTP/1.1\r\nHost: a.example:8080\r\nX-A: one\r\nContent-Length: 3\r\n\r\n";
  std::vector<std::size_t> broken;
  for (std::size_t i = 1; i < raw.size(); ++i) {
    RequestParser p;
    p.reset(limits());
    const std::size_t first = p.parse_head(std::string_view(raw).substr(0, i));
    const std::size_t second = first == 0 && !p.error() ? p.parse_head(raw) : 0;
    if (first != 0 || p.error() || second != raw.size() || p.head().target != "/u?q=1" ||
        p.head().host != "a.example:8080" || p.head().fields.size() != 3) {
      broken.push_back(i);
    }
  }
  EXPECT_TRUE(broken.empty()) << "first read of N bytes breaks the head for N in " << ranges(broken)
                              << " (head is " << raw.size() << " bytes)";
}

// Pieces of the head reach the caller through several reads into a buffer that grows (and may
// move); views must refer to the final buffer passed.
TEST(RequestParser, HeadFedFromMovingBuffer) {
  const std::string raw =
      "GET /x HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(100, 'v') + "\r\n\r\n";
  RequestParser p;
  p.reset(limits());
  std::string buf;
  std::size_t n = 0;
  for (std::size_t i = 0; i < raw.size() && n == 0; i += 7) {
    std::string bigger = buf + raw.substr(i, 7);  // new allocation each time
    buf.swap(bigger);
    n = p.parse_head(buf);
    ASSERT_EQ(p.error().status, 0u) << "after " << buf.size() << " bytes: " << p.error().reason;
  }
  ASSERT_EQ(n, raw.size());
  EXPECT_EQ(p.head().find("x-long")->value, std::string(100, 'v'));
  EXPECT_EQ(p.head().host, "a");
}

// ---------------------------------------------------------------------------------------
// Bodies.

// Feeds `body_wire` to a parser whose head is done, in the pieces `splits` gives, keeping the
// unconsumed rest as a session does. Returns the decoded bytes; consumed counts all bytes.
template <bool IsRequest>
std::string feed_body(H1Parser<IsRequest>& p, std::string_view body_wire,
                      const std::vector<std::size_t>& splits, std::size_t& consumed) {
  std::string decoded;
  std::string pending;
  std::size_t pos = 0;
  consumed = 0;
  auto drain = [&] {
    while (!pending.empty() && !p.done() && !p.error()) {
      BodySlices slices;
      const std::size_t n = p.parse_body(pending, slices);
      for (auto s : slices)
        decoded.append(s);
      consumed += n;
      pending.erase(0, n);
      if (n == 0) break;
    }
  };
  for (std::size_t len : splits) {
    pending.append(body_wire.substr(pos, len));
    pos += len;
    drain();
  }
  if (pos < body_wire.size()) {
    pending.append(body_wire.substr(pos));
    drain();
  }
  return decoded;
}

constexpr std::string_view kChunkedHead =
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kChunkedBody =
    "5\r\nhello\r\n"
    "1;name=value\r\n,\r\n"
    "A\r\n0123456789\r\n"
    "1a ; a=\"q s\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "\r\n";
constexpr std::string_view kChunkedDecoded = "hello,0123456789abcdefghijklmnopqrstuvwxyz";

TEST(RequestBody, ChunkedDecodedInOneBuffer) {
  const std::string head(kChunkedHead);
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head), head.size());
  std::size_t consumed = 0;
  const std::string decoded = feed_body(p, kChunkedBody, {}, consumed);
  EXPECT_EQ(p.error().status, 0u) << p.error().reason;
  EXPECT_TRUE(p.done());
  EXPECT_EQ(consumed, kChunkedBody.size());
  EXPECT_EQ(decoded, kChunkedDecoded);
}

TEST(RequestBody, ChunkedDecodedByteByByte) {
  const std::string head(kChunkedHead);
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head), head.size());
  std::size_t consumed = 0;
  const std::string decoded =
      feed_body(p, kChunkedBody, std::vector<std::size_t>(kChunkedBody.size(), 1), consumed);
  EXPECT_EQ(p.error().status, 0u) << p.error().reason;
  EXPECT_TRUE(p.done());
  EXPECT_EQ(consumed, kChunkedBody.size());
  EXPECT_EQ(decoded, kChunkedDecoded);
}

TEST(RequestBody, ChunkedDecodedInRandomSplits) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::size_t> splits;
    std::size_t total = 0;
    while (total < kChunkedBody.size()) {
      const std::size_t len = std::uniform_int_distribution<std::size_t>(1, 12)(rng);
      splits.push_back(len);
      total += len;
    }
    const std::string head(kChunkedHead);
    RequestParser p;
    p.reset(limits());
    ASSERT_EQ(p.parse_head(head), head.size());
    std::size_t consumed = 0;
    const std::string decoded = feed_body(p, kChunkedBody, splits, consumed);
    ASSERT_EQ(p.error().status, 0u) << "round " << round << ": " << p.error().reason;
    ASSERT_TRUE(p.done()) << "round " << round;
    ASSERT_EQ(consumed, kChunkedBody.size()) << "round " << round;
    ASSERT_EQ(decoded, kChunkedDecoded) << "round " << round;
  }
}

// A large random body, chunked with random chunk sizes, fed in random splits.
TEST(RequestBody, LargeChunkedBodyRoundTrips) {
  std::mt19937 rng(7);
  std::string payload(100000, '\0');
  for (auto& c : payload)
    c = static_cast<char>(rng() & 0xff);
  std::string wire;
  for (std::size_t pos = 0; pos < payload.size();) {
    const std::size_t len =
        std::min(payload.size() - pos, std::uniform_int_distribution<std::size_t>(1, 5000)(rng));
    char size_hex[32];
    const int k = std::snprintf(size_hex, sizeof size_hex, "%zx\r\n", len);
    wire.append(size_hex, static_cast<std::size_t>(k));
    wire.append(payload, pos, len);
    wire.append("\r\n");
    pos += len;
  }
  wire.append("0\r\n\r\n");
  std::vector<std::size_t> splits;
  for (std::size_t total = 0; total < wire.size();) {
    const std::size_t len = std::uniform_int_distribution<std::size_t>(1, 3000)(rng);
    splits.push_back(len);
    total += len;
  }
  const std::string head(kChunkedHead);
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head), head.size());
  std::size_t consumed = 0;
  const std::string decoded = feed_body(p, wire, splits, consumed);
  EXPECT_EQ(p.error().status, 0u) << p.error().reason;
  EXPECT_TRUE(p.done());
  EXPECT_EQ(consumed, wire.size());
  EXPECT_TRUE(decoded == payload) << "decoded " << decoded.size() << " bytes";
}

TEST(RequestBody, ChunkTrailersAreNotHeadFields) {
  const std::string head(kChunkedHead);
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head), head.size());
  const std::size_t fields_before = p.head().fields.size();
  std::size_t consumed = 0;
  feed_body(p, "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n", {}, consumed);
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.head().fields.size(), fields_before);
  EXPECT_EQ(p.head().find("x-checksum"), nullptr);
}

TEST(RequestBody, ContentLengthBodySplit) {
  const std::string head = "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 26\r\n\r\n";
  const std::string_view body = "abcdefghijklmnopqrstuvwxyz";
  for (std::vector<std::size_t> splits :
       {std::vector<std::size_t>{}, std::vector<std::size_t>(26, 1),
        std::vector<std::size_t>{3, 10, 1, 12}}) {
    RequestParser p;
    p.reset(limits());
    ASSERT_EQ(p.parse_head(head), head.size());
    std::size_t consumed = 0;
    EXPECT_EQ(feed_body(p, body, splits, consumed), body);
    EXPECT_EQ(consumed, body.size());
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.error().status, 0u);
  }
}

// parse_body stops where the message ends; what follows is the next request.
TEST(RequestBody, PipelinedAfterContentLengthBody) {
  const std::string head = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: b\r\n\r\n";
  const std::string raw = head + "hello" + next;
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(raw), head.size());
  BodySlices slices;
  std::string_view rest = std::string_view(raw).substr(head.size());
  std::size_t consumed = 0;
  while (!p.done()) {
    const std::size_t n = p.parse_body(rest.substr(consumed), slices);
    ASSERT_NE(n, 0u);
    consumed += n;
  }
  EXPECT_EQ(consumed, 5u);
  std::string body;
  for (auto s : slices)
    body.append(s);
  EXPECT_EQ(body, "hello");
  EXPECT_EQ(p.parse_body(rest.substr(consumed), slices), 0u);  // done: consumes nothing more

  p.reset(limits());
  ASSERT_EQ(p.parse_head(rest.substr(consumed)), next.size()) << p.error().reason;
  EXPECT_EQ(p.head().method, "GET");
  EXPECT_EQ(p.head().target, "/next");
  EXPECT_EQ(p.head().host, "b");
}

TEST(RequestBody, PipelinedAfterChunkedBody) {
  const std::string head(kChunkedHead);
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: b\r\n\r\n";
  const std::string raw = head + body + next;
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(raw), head.size());
  std::string_view rest = std::string_view(raw).substr(head.size());
  std::size_t consumed = 0;
  std::string decoded;
  while (!p.done() && !p.error()) {
    BodySlices slices;
    const std::size_t n = p.parse_body(rest.substr(consumed), slices);
    for (auto s : slices)
      decoded.append(s);
    ASSERT_NE(n, 0u);
    consumed += n;
  }
  EXPECT_EQ(p.error().status, 0u);
  EXPECT_EQ(decoded, "abc");
  EXPECT_EQ(consumed, body.size());
  p.reset(limits());
  ASSERT_EQ(p.parse_head(rest.substr(consumed)), next.size()) << p.error().reason;
  EXPECT_EQ(p.head().target, "/next");
}

TEST(RequestBody, PipelinedRequestsWithoutBodies) {
  const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string two = "HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string raw = one + two;
  RequestParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(raw), one.size());
  EXPECT_TRUE(p.done());
  p.reset(limits());
  ASSERT_EQ(p.parse_head(std::string_view(raw).substr(one.size())), two.size());
  EXPECT_EQ(p.head().method, "HEAD");
  EXPECT_EQ(p.head().target, "/2");
}

// ---------------------------------------------------------------------------------------
// Responses (the upstream side).

Outcome parse_response(ResponseParser& p, std::string_view raw, bool head_request = false) {
  p.reset(limits(), head_request);
  return run(p, raw);
}

TEST(ResponseParser, ContentLengthBody) {
  ResponseParser p;
  const auto o = parse_response(
      p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().status, 200u);
  EXPECT_EQ(p.head().reason, "OK");
  EXPECT_EQ(p.head().version, 11u);
  EXPECT_TRUE(p.head().has_body);
  EXPECT_FALSE(p.head().until_eof);
  EXPECT_TRUE(p.head().keep_alive);
  EXPECT_EQ(*p.head().content_length, 5u);
  EXPECT_EQ(o.body, "hello");
  EXPECT_TRUE(o.complete);
  ASSERT_EQ(p.head().fields.size(), 2u);
  EXPECT_EQ(p.head().fields[0].name, "Content-Type");
}

TEST(ResponseParser, ChunkedTrailersAreKept) {
  ResponseParser p;
  const auto o = parse_response(p,
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n0\r\ngrpc-status: 0\r\nX-Sum:  abc \r\n\r\n");
  ASSERT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_TRUE(o.complete);
  EXPECT_EQ(o.body, "hello");
  ASSERT_EQ(p.trailers().size(), 2u);
  EXPECT_EQ(p.trailers()[0].name, "grpc-status");
  EXPECT_EQ(p.trailers()[0].value, "0");
  EXPECT_EQ(p.trailers()[1].name, "X-Sum");
  EXPECT_EQ(p.trailers()[1].value, "abc");
  EXPECT_TRUE(p.head().find("grpc-status") == nullptr);  // not mixed into the head
  p.reset(limits());
  EXPECT_TRUE(p.trailers().empty());
}

TEST(ResponseParser, TrailerSectionOverTheHeadLimitIs502) {
  ResponseParser p;
  p.reset({64, 100, 0});
  const std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: " + std::string(100, 'a') +
      "\r\n\r\n";
  const auto head = p.parse_head(text);
  ASSERT_GT(head, 0u) << p.error().reason;
  BodySlices out;
  p.parse_body(std::string_view(text).substr(head), out);
  EXPECT_EQ(p.error().status, 502u);
}

TEST(ResponseParser, NoContentHasNoBody) {
  ResponseParser p;
  const auto o = parse_response(p, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
  ASSERT_EQ(o.status, 0u);
  EXPECT_FALSE(p.head().has_body);
  EXPECT_FALSE(p.head().until_eof);
  EXPECT_TRUE(p.head().keep_alive);
  EXPECT_TRUE(o.complete);
}

TEST(ResponseParser, NotModifiedWithContentLengthHasNoBody) {
  const std::string head =
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n";
  ResponseParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head + "HTTP/1.1 200 OK\r\n"), head.size());
  EXPECT_FALSE(p.head().has_body);
  EXPECT_TRUE(p.done());
  EXPECT_TRUE(p.head().keep_alive);
}

TEST(ResponseParser, HeadAnswerHasNoBody) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
  ResponseParser p;
  p.reset(limits(), /*head_request=*/true);
  ASSERT_EQ(p.parse_head(head), head.size());
  EXPECT_FALSE(p.head().has_body);
  EXPECT_TRUE(p.done());
  EXPECT_TRUE(p.head().keep_alive);

  // Without a length either: still no body and the connection stays reusable.
  p.reset(limits(), true);
  const std::string_view bare = "HTTP/1.1 200 OK\r\n\r\n";
  ASSERT_EQ(p.parse_head(bare), bare.size());
  EXPECT_FALSE(p.head().has_body);
  EXPECT_FALSE(p.head().until_eof);
  EXPECT_TRUE(p.done());
}

TEST(ResponseParser, HeadRequestFlagDoesNotStick) {
  ResponseParser p;
  p.reset(limits(), true);
  ASSERT_NE(p.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), 0u);
  EXPECT_TRUE(p.done());
  const auto o = parse_response(p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_TRUE(p.head().has_body);
  EXPECT_EQ(o.body, "abc");
}

TEST(ResponseParser, CloseDelimitedBody) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  ResponseParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(head + "abc"), head.size());
  EXPECT_TRUE(p.head().has_body);
  EXPECT_TRUE(p.head().until_eof);
  EXPECT_FALSE(p.head().keep_alive);
  std::size_t consumed = 0;
  const std::string decoded = feed_body(p, "abcdefghij", {3, 3, 4}, consumed);
  EXPECT_EQ(decoded, "abcdefghij");
  EXPECT_EQ(consumed, 10u);
  EXPECT_FALSE(p.done());
  p.finish_on_eof();
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.error().status, 0u);
}

TEST(ResponseParser, Http10ResponseWithoutLengthIsCloseDelimited) {
  ResponseParser p;
  p.reset(limits());
  ASSERT_NE(p.parse_head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"), 0u);
  EXPECT_EQ(p.head().version, 10u);
  EXPECT_TRUE(p.head().until_eof);
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(ResponseParser, Http10KeepAlive) {
  ResponseParser p;
  p.reset(limits());
  ASSERT_NE(p.parse_head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), 0u);
  EXPECT_FALSE(p.head().keep_alive);
  p.reset(limits());
  ASSERT_NE(p.parse_head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"),
            0u);
  EXPECT_TRUE(p.head().keep_alive);
  p.reset(limits());
  ASSERT_NE(p.parse_head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), 0u);
  EXPECT_FALSE(p.head().keep_alive);
}

TEST(ResponseParser, TruncatedContentLengthBodyIs502OnEof) {
  ResponseParser p;
  p.reset(limits());
  const std::string_view raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  const auto o = run(p, raw);
  EXPECT_EQ(o.body, "abc");
  EXPECT_FALSE(p.done());
  p.finish_on_eof();
  EXPECT_EQ(p.error().status, 502u);
}

TEST(ResponseParser, TruncatedChunkedBodyIs502OnEof) {
  ResponseParser p;
  p.reset(limits());
  run(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
  EXPECT_FALSE(p.done());
  p.finish_on_eof();
  EXPECT_EQ(p.error().status, 502u);
}

TEST(ResponseParser, InformationalThenFinal) {
  const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string early = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
  const std::string final_head = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n";
  const std::string raw = cont + early + final_head + "ok";
  ResponseParser p;
  std::string_view rest = raw;

  p.reset(limits());
  ASSERT_EQ(p.parse_head(rest), cont.size());
  EXPECT_EQ(p.head().status, 100u);
  EXPECT_FALSE(p.head().has_body);
  EXPECT_TRUE(p.done());
  rest.remove_prefix(cont.size());

  p.reset(limits());
  ASSERT_EQ(p.parse_head(rest), early.size());
  EXPECT_EQ(p.head().status, 103u);
  EXPECT_FALSE(p.head().has_body);
  EXPECT_TRUE(p.done());
  ASSERT_NE(p.head().find("link"), nullptr);
  rest.remove_prefix(early.size());

  p.reset(limits());
  const auto o = run(p, rest);
  EXPECT_EQ(p.head().status, 201u);
  EXPECT_EQ(o.body, "ok");
  EXPECT_TRUE(o.complete);
}

TEST(ResponseParser, ChunkedResponseSplitAnywhere) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::mt19937 rng(99);
  for (int round = 0; round < 100; ++round) {
    std::vector<std::size_t> splits;
    for (std::size_t total = 0; total < kChunkedBody.size();) {
      const std::size_t len = std::uniform_int_distribution<std::size_t>(1, 9)(rng);
      splits.push_back(len);
      total += len;
    }
    ResponseParser p;
    p.reset(limits());
    ASSERT_EQ(p.parse_head(head), head.size());
    EXPECT_TRUE(p.head().chunked);
    EXPECT_TRUE(p.head().has_body);
    EXPECT_FALSE(p.head().until_eof);
    EXPECT_TRUE(p.head().keep_alive);
    std::size_t consumed = 0;
    const std::string decoded = feed_body(p, kChunkedBody, splits, consumed);
    ASSERT_EQ(p.error().status, 0u) << p.error().reason;
    ASSERT_TRUE(p.done());
    ASSERT_EQ(consumed, kChunkedBody.size());
    ASSERT_EQ(decoded, kChunkedDecoded);
  }
}

TEST(ResponseParser, ResponseHeadSplitAfterStatusLine) {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: b\r\n\r\n";
  ResponseParser p;
  p.reset(limits());
  ASSERT_EQ(p.parse_head(std::string_view(raw).substr(0, 17)), 0u);
  ASSERT_EQ(p.error().status, 0u) << p.error().reason;
  ASSERT_EQ(p.parse_head(raw), raw.size()) << p.error().reason;
  EXPECT_EQ(p.head().status, 200u);
  EXPECT_EQ(p.head().fields.size(), 2u);
}

TEST(ResponseParser, ResponseHeadSplitAtEveryPosition) {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: b\r\n\r\n";
  std::vector<std::size_t> broken;
  for (std::size_t i = 1; i < raw.size(); ++i) {
    ResponseParser p;
    p.reset(limits());
    const std::size_t first = p.parse_head(std::string_view(raw).substr(0, i));
    const std::size_t second = first == 0 && !p.error() ? p.parse_head(raw) : 0;
    if (first != 0 || p.error() || second != raw.size() || p.head().status != 200 ||
        p.head().fields.size() != 2) {
      broken.push_back(i);
    }
  }
  EXPECT_TRUE(broken.empty()) << "first read of N bytes breaks the head for N in " << ranges(broken)
                              << " (head is " << raw.size() << " bytes)";
}

TEST(ResponseParser, TooManyFieldsIs502) {
  ResponseParser p;
  p.reset(limits(64 * 1024, 2));
  const auto o = run(p, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(o.status, 502u);
}

TEST(ResponseParser, HeadOverLimitIs502) {
  ResponseParser p;
  p.reset(limits(64));
  const auto o = run(p, "HTTP/1.1 200 OK\r\nX-Big: " + std::string(100, 'b') + "\r\n\r\n");
  EXPECT_EQ(o.status, 502u);
}

TEST(ResponseParser, EmptyReasonAccepted) {
  ResponseParser p;
  const auto o = parse_response(p, "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(o.status, 0u) << p.error().reason;
  EXPECT_EQ(p.head().reason, "");
}

struct BadResponse {
  const char* name;
  std::string_view raw;
};

TEST(ResponseParser, InvalidResponsesAre502) {
  const BadResponse cases[] = {
      {"http2", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
      {"garbage", "HTTP/1.1 2OO OK\r\n\r\n"},
      {"cl_and_te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {"differing_cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
      {"obs_fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
      {"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
      {"nul_in_value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n"sv},
      {"bad_chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
      {"space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
  };
  for (const auto& c : cases) {
    ResponseParser p;
    const auto o = parse_response(p, c.raw);
    EXPECT_EQ(o.status, 502u) << c.name << " reason: " << p.error().reason;
  }
}

}  // namespace
}  // namespace meridian::http

namespace meridian::http {
namespace {

TEST(ForeignRequestLine, OnlyLinesThatAreNotHttp1AtAll) {
  EXPECT_TRUE(is_foreign_request_line("INVALID CONNECTION PREFACE\r\n\r\n"));
  EXPECT_TRUE(is_foreign_request_line("A B C D\r\n"));
  EXPECT_FALSE(is_foreign_request_line("GET /v HTTP/1.x\r\n"));         // malformed HTTP/1: 400
  EXPECT_FALSE(is_foreign_request_line("GET /a http/1.1\r\n"));         // ... in any case
  EXPECT_FALSE(is_foreign_request_line("GET /a HTTP/1.1\nHost: x\n"));  // bare LF
  EXPECT_FALSE(is_foreign_request_line("GET /\r\n"));                   // HTTP/0.9
  EXPECT_FALSE(is_foreign_request_line("INVALID CONNECTION"));          // line not complete
}

}  // namespace
}  // namespace meridian::http
