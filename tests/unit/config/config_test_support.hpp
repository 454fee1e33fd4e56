// Helpers shared by the config loader tests: load a YAML string, assert on one error by key,
// and make throw-away files for the checks that open files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "meridian/config/loader.hpp"

namespace meridian::config::test {

inline constexpr const char* kFile = "test.yaml";

// Raw strings in the tests start with a newline after R"( for readability; drop it so the
// first line of the literal is line 1.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline LoadResult load(std::string_view text) {
  return load_config_string(yaml(text), kFile);
}

// A complete, valid listeners section (6 lines) routing to backend "api"; appended after the
// part under test so that the line numbers written in the test stay exact.
inline constexpr std::string_view kListenersTail = R"(
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: all
        backend: api
)";

// A complete, valid backends section with backend "api", region "eu".
inline constexpr std::string_view kBackendsTail = R"(
backends:
  - name: api
    regions:
      - name: eu
        location: {lat: 50.1, lon: 8.7}
        endpoints:
          - address: 127.0.0.1:9000
)";

// `text` followed by the standard listeners section.
inline LoadResult load_with_listeners(std::string_view text) {
  return load_config_string(yaml(text) + std::string(kListenersTail), kFile);
}
// `text` followed by the standard backends section.
inline LoadResult load_with_backends(std::string_view text) {
  return load_config_string(yaml(text) + std::string(kBackendsTail), kFile);
}
// `text` followed by both standard sections.
inline LoadResult load_with_both(std::string_view text) {
  return load_config_string(yaml(text) + std::string(kListenersTail) + std::string(kBackendsTail),
                            kFile);
}

inline std::string all_errors(const LoadResult& result) {
  std::string out;
  for (const auto& e : result.errors)
    out += "\n  " + e.to_string();
  return out.empty() ? "\n  (no errors)" : out;
}

// Success when `result` holds an error with exactly this key, position and a message
// containing `message`; the failure lists every error found.
inline ::testing::AssertionResult has_error(const LoadResult& result, std::string_view key,
                                            int line, int column, std::string_view message) {
  for (const auto& e : result.errors) {
    if (e.key == key && e.line == line && e.column == column &&
        e.message.find(message) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no error " << key << " at " << line << ":" << column << " containing \"" << message
         << "\"; errors were:" << all_errors(result);
}

// Success when `result` has exactly one error and it matches.
inline ::testing::AssertionResult has_only_error(const LoadResult& result, std::string_view key,
                                                 int line, int column, std::string_view message) {
  if (result.errors.size() != 1) {
    return ::testing::AssertionFailure() << "expected exactly one error, got "
                                         << result.errors.size() << ":" << all_errors(result);
  }
  if (result.config) return ::testing::AssertionFailure() << "config set despite errors";
  return has_error(result, key, line, column, message);
}

inline ::testing::AssertionResult is_ok(const LoadResult& result) {
  if (result.ok() && result.config) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "load failed:" << all_errors(result);
}

// A file under the system temp directory, removed when the object goes away.
class TempFile {
 public:
  explicit TempFile(std::string_view contents, std::string_view suffix = ".tmp");
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The loopback GeoIP test database (tests/data/geoip/README.md).
inline std::string geoip_test_database() {
  return MERIDIAN_SOURCE_DIR "/tests/data/geoip/loopback-city.mmdb";
}

// Replaces every "{NAME}" in `text` with `value`.
std::string substitute(std::string text, std::string_view name, std::string_view value);

}  // namespace meridian::config::test
