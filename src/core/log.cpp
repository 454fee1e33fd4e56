#include "meridian/core/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>
#include <unistd.h>

namespace meridian::log {

namespace {

std::atomic<Level> g_level{Level::info};

constexpr std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "?";
}

}  // namespace

void set_level(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}

bool enabled(Level level) {
  return level >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[40];
  const auto n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line;
  line.reserve(message.size() + 48);
  line.append(stamp, n);
  char frac[8];
  const int m = std::snprintf(frac, sizeof frac, ".%03dZ ", static_cast<int>(millis));
  line.append(frac, static_cast<std::size_t>(m));
  line.append(level_name(level));
  line.push_back(' ');
  line.append(message);
  line.push_back('\n');
  // One write per line, so lines from several threads never interleave (PIPE_BUF atomicity
  // for short lines; longer ones are rare and still whole in practice on regular files).
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t w = ::write(STDERR_FILENO, p, left);
    if (w <= 0) break;
    p += w;
    left -= static_cast<std::size_t>(w);
  }
}

}  // namespace meridian::log
