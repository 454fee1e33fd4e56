// Error collection for the config loader. Every problem found while walking the YAML tree
// is recorded with its position and key path, so that one run of `meridian --check` shows
// them all instead of making the operator fix them one at a time.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "meridian/config/loader.hpp"

namespace meridian::config::detail {

// A YAML value together with the key path that names it in messages, e.g.
// "backends[0].regions[1].endpoints[0].address".
struct Field {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;  // where the value starts (the key's position when the value is null)
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(const YAML::Mark& mark, std::string key, std::string message);
  void error(const Field& field, std::string message) {
    error(field.mark, field.path, std::move(message));
  }
  // For problems that have no place in the file (unreadable file).
  void error_without_position(std::string message);

  bool empty() const { return errors_.empty(); }
  std::size_t count() const { return errors_.size(); }

  // The errors in file order; those without a position come first.
  std::vector<ConfigError> take_sorted();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// `text` in double quotes with control characters, quotes and backslashes escaped, so a
// message shows exactly what was written.
std::string quoted(std::string_view text);

// The candidate closest to `word` by edit distance when it is close enough to be a likely
// typo, else "". Used for `unknown key "lisen" (did you mean "listen"?)`.
std::string_view closest_match(std::string_view word, std::span<const std::string_view> candidates);

// `did you mean "x"?` suffix for a message, or "" when nothing is close.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

// Child paths: "a" + "b" -> "a.b"; "" + "b" -> "b"; "a" + [2] -> "a[2]".
std::string child_path(const std::string& parent, std::string_view key);
std::string index_path(const std::string& parent, std::size_t index);

}  // namespace meridian::config::detail
