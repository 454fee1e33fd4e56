// Process log: one line per event on stderr, "2026-11-23T08:00:00.123Z level message".
// Not for the request path's per-request lines (the access log has its own writer); used for
// start-up, reload, health transitions and errors. Thread-safe: each line is one write(2).
#pragma once

#include <sstream>
#include <string_view>

namespace meridian::log {

enum class Level { debug, info, warn, error };

// Lines below this level are dropped. Set once at start-up (MERIDIAN_LOG_LEVEL).
void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view message);

template <typename... Args>
void emit(Level level, const Args&... args) {
  if (!enabled(level)) return;
  std::ostringstream s;
  (s << ... << args);
  write(level, s.str());
}

template <typename... Args>
void debug(const Args&... args) {
  emit(Level::debug, args...);
}
template <typename... Args>
void info(const Args&... args) {
  emit(Level::info, args...);
}
template <typename... Args>
void warn(const Args&... args) {
  emit(Level::warn, args...);
}
template <typename... Args>
void error(const Args&... args) {
  emit(Level::error, args...);
}

}  // namespace meridian::log
