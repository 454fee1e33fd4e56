// W3C Trace Context (https://www.w3.org/TR/trace-context/), `tracing.propagate: w3c`
// (docs/http-behaviour.md, tracing): meridian is one hop of the trace. A request that carries
// a valid `traceparent` continues that trace: meridian's span gets a fresh span id, the
// client's id becomes its parent, the sampled flag passes on, and `tracestate` passes
// unchanged. A request without one, or with one that does not parse, starts a new trace (and
// loses any `tracestate`, which belongs to the trace it came with). The origin gets
// `traceparent: 00-<trace-id>-<meridian's span id>-<flags>`.
//
// No span is exported yet; the access log carries trace_id and span_id. SpanSink is the seam
// for an exporter (OTLP): it receives what one finished span holds.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "meridian/core/request_id.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

// A traceparent as parsed: the parts of any version meridian understands the first four
// fields of (version 00, or a later one per the specification's forward compatibility).
struct TraceParent {
  std::string_view trace_id;   // 32 lower-case hex digits, not all zero
  std::string_view parent_id;  // 16 lower-case hex digits, not all zero
  std::uint8_t flags = 0;
};

// nullopt when `value` is not a valid traceparent.
std::optional<TraceParent> parse_traceparent(std::string_view value);

// One request's place in a trace, kept with the request (no allocation).
class TraceContext {
 public:
  // Continues the trace of `head` (exactly one valid traceparent field) or starts one.
  void begin(const RequestHead& head, RequestIdGenerator& random);

  bool active() const { return active_; }
  void clear() { active_ = false; }
  // Whether the client's trace was continued (its tracestate may pass on).
  bool continued() const { return continued_; }
  // The traceparent value for the origin.
  std::string_view traceparent() const { return {value_.data(), value_.size()}; }
  std::string_view trace_id() const { return traceparent().substr(3, 32); }
  std::string_view span_id() const { return traceparent().substr(36, 16); }
  // The client's span id; empty for a trace meridian started.
  std::string_view parent_id() const {
    return continued_ ? std::string_view(parent_.data(), parent_.size()) : std::string_view{};
  }

 private:
  std::array<char, 55> value_{};
  std::array<char, 16> parent_{};
  bool active_ = false;
  bool continued_ = false;
};

// What an exporter would receive for one finished span (the seam for OTLP; nothing
// implements it yet).
struct SpanRecord {
  std::string_view trace_id, span_id, parent_id;
  std::chrono::system_clock::time_point start, end;
  std::string_view route, backend, region, endpoint;
  unsigned status = 0;
};
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void record(const SpanRecord& span) = 0;
};

}  // namespace meridian::http
