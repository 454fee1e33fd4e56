#include "meridian/http/grpc.hpp"

#include <charconv>

#include "http/header_rules.hpp"

namespace meridian::http::grpc {

bool is_grpc(const RequestHead& head) {
  const auto* f = head.find("content-type");
  if (f == nullptr) return false;
  constexpr std::string_view kGrpc = "application/grpc";
  const auto v = f->value;
  if (v.size() < kGrpc.size() || !iequals(v.substr(0, kGrpc.size()), kGrpc)) return false;
  return v.size() == kGrpc.size() || v[kGrpc.size()] == '+' || v[kGrpc.size()] == ';';
}

std::optional<std::chrono::nanoseconds> timeout(const RequestHead& head) {
  const auto* f = head.find("grpc-timeout");
  if (f == nullptr) return std::nullopt;
  const auto v = f->value;
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::uint64_t n = 0;
  const auto digits = v.substr(0, v.size() - 1);
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  using namespace std::chrono;
  const auto count = static_cast<std::int64_t>(n);
  switch (v.back()) {
    case 'H':
      return duration_cast<nanoseconds>(hours(count));
    case 'M':
      return duration_cast<nanoseconds>(minutes(count));
    case 'S':
      return duration_cast<nanoseconds>(seconds(count));
    case 'm':
      return duration_cast<nanoseconds>(milliseconds(count));
    case 'u':
      return duration_cast<nanoseconds>(microseconds(count));
    case 'n':
      return nanoseconds(count);
    default:
      return std::nullopt;
  }
}

Status status_for(unsigned http_status) {
  switch (http_status) {
    case 429:
    case 413:
    case 414:
    case 431:
      return kResourceExhausted;
    case 408:
    case 504:
      return kDeadlineExceeded;
    case 502:
    case 503:
      return kUnavailable;
    case 404:
      return kUnimplemented;
    default:
      return http_status >= 400 && http_status < 500 ? kInternal : kUnknown;
  }
}

std::string encode_message(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b <= 0x7e && b != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
  return out;
}

void encode_local_reply(Status status, std::string_view cause, std::string_view via,
                        std::string_view extra_headers, h2::FieldBlock& out) {
  out.clear();
  out.add_status(200);
  out.add("content-type", "application/grpc");
  out.add_number("grpc-status", status);
  out.add("grpc-message", encode_message(cause));
  if (!via.empty()) out.add("via", via);
  detail::for_each_line(extra_headers,
                        [&out](std::string_view n, std::string_view v) { out.add(n, v); });
}

}  // namespace meridian::http::grpc
