#include "meridian/accesslog/format.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "meridian/core/json.hpp"

namespace meridian::accesslog {

namespace {

void refresh(TimeCache& cache, std::int64_t second) {
  if (cache.second == second) return;
  cache.second = second;
  const std::time_t t = static_cast<std::time_t>(second);
  std::tm utc{};
  gmtime_r(&t, &utc);
  std::strftime(cache.rfc3339, sizeof cache.rfc3339, "%Y-%m-%dT%H:%M:%S", &utc);
  std::strftime(cache.clf, sizeof cache.clf, "%d/%b/%Y:%H:%M:%S +0000", &utc);
}

void append_uint(std::string& out, std::uint64_t v) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, r.ptr);
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out.push_back(',');
  json::append_string(out, name);
  out.push_back(':');
  json::append_string(out, value);
}

// Inside a combined-format quoted field: '"' and '\' escaped, so that a request cannot
// forge fields of its own line.
void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
}

// A combined-format quoted field, "-" for empty (as nginx).
void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  if (s.empty()) out.push_back('-');
  append_escaped(out, s);
  out.push_back('"');
}

}  // namespace

void format(config::AccessLogFormat format, const Entry& e, TimeCache& cache, std::string& out) {
  out.clear();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count();
  refresh(cache, ms / 1000);
  if (format == config::AccessLogFormat::combined) {
    out.append(e.client.empty() ? std::string_view("-") : e.client);
    out.append(" - - [");
    out.append(cache.clf);
    out.append("] \"");
    if (e.method.empty()) {
      out.push_back('-');
    } else {
      out.append(e.method);
      out.push_back(' ');
      append_escaped(out, e.target);
      out.append(e.version == 10 ? " HTTP/1.0" : e.version == 20 ? " HTTP/2.0" : " HTTP/1.1");
    }
    out.append("\" ");
    append_uint(out, e.status);
    out.push_back(' ');
    append_uint(out, e.bytes_out);
    out.push_back(' ');
    append_quoted(out, e.referer);
    out.push_back(' ');
    append_quoted(out, e.user_agent);
    out.push_back('\n');
    return;
  }
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
  out.append("{\"time\":\"");
  out.append(cache.rfc3339);
  out.append(millis);
  out.push_back('"');
  field(out, "client", e.client);
  field(out, "method", e.method);
  field(out, "host", e.host);
  field(out, "path", e.path);
  out.append(",\"status\":");
  append_uint(out, e.status);
  out.append(",\"bytes_out\":");
  append_uint(out, e.bytes_out);
  char duration[32];
  std::snprintf(duration, sizeof duration, ",\"duration_ms\":%.3f", e.duration_ms);
  out.append(duration);
  field(out, "listener", e.listener);
  field(out, "route", e.route);
  field(out, "backend", e.backend);
  field(out, "region", e.region);
  field(out, "endpoint", e.endpoint);
  field(out, "request_id", e.request_id);
  if (!e.trace_id.empty()) {
    field(out, "trace_id", e.trace_id);
    field(out, "span_id", e.span_id);
  }
  field(out, "user_agent", e.user_agent);
  out.append("}\n");
}

}  // namespace meridian::accesslog
