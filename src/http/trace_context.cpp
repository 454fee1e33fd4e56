#include "meridian/http/trace_context.hpp"

#include <algorithm>

namespace meridian::http {

namespace {

constexpr char kHex[] = "0123456789abcdef";

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

int hex_digit(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

void put_hex(char* out, std::uint64_t v) {
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view v) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const auto version = v.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append "-..." fields.
  if (version == "00" ? v.size() != 55 : v.size() > 55 && v[55] != '-') return std::nullopt;
  TraceParent p{v.substr(3, 32), v.substr(36, 16), 0};
  const auto flags = v.substr(53, 2);
  if (!lower_hex(p.trace_id) || all_zero(p.trace_id) || !lower_hex(p.parent_id) ||
      all_zero(p.parent_id) || !lower_hex(flags)) {
    return std::nullopt;
  }
  p.flags = static_cast<std::uint8_t>(hex_digit(flags[0]) * 16 + hex_digit(flags[1]));
  return p;
}

void TraceContext::begin(const RequestHead& head, RequestIdGenerator& random) {
  active_ = true;
  std::optional<TraceParent> parent;
  int seen = 0;
  for (const auto& f : head.fields) {
    if (f.name.size() != 11 || !iequals(f.name, "traceparent")) continue;
    // Two traceparent fields are no trace at all (the specification's rule).
    if (++seen > 1) {
      parent.reset();
      break;
    }
    parent = parse_traceparent(f.value);
  }
  char* out = value_.data();
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  continued_ = parent.has_value();
  std::uint8_t flags = 0x01;  // a trace meridian starts is sampled: the origin records it
  if (parent) {
    std::copy(parent->trace_id.begin(), parent->trace_id.end(), out + 3);
    std::copy(parent->parent_id.begin(), parent->parent_id.end(), parent_.data());
    flags = parent->flags & 0x01;  // version 00 defines only "sampled"
  } else {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;
    while (hi == 0 && lo == 0) {
      hi = random.next_u64();
      lo = random.next_u64();
    }
    put_hex(out + 3, hi);
    put_hex(out + 19, lo);
  }
  out[35] = '-';
  std::uint64_t span = 0;
  while (span == 0)
    span = random.next_u64();
  put_hex(out + 36, span);
  out[52] = '-';
  out[53] = kHex[flags >> 4];
  out[54] = kHex[flags & 0xf];
}

}  // namespace meridian::http
