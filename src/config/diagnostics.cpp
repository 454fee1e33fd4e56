#include "config/diagnostics.hpp"

#include <algorithm>
#include <cstdio>

namespace meridian::config {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line) + ':' + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

namespace detail {

void Diagnostics::error(const YAML::Mark& mark, std::string key, std::string message) {
  // yaml-cpp marks are 0-based and -1 when unknown; ConfigError is 1-based with 0 = none.
  int line = mark.line >= 0 ? mark.line + 1 : 0;
  int column = mark.line >= 0 ? mark.column + 1 : 0;
  errors_.push_back(ConfigError{file_, line, column, std::move(key), std::move(message)});
}

void Diagnostics::error_without_position(std::string message) {
  errors_.push_back(ConfigError{file_, 0, 0, "", std::move(message)});
}

std::vector<ConfigError> Diagnostics::take_sorted() {
  // Stable: errors at the same position keep the order in which the walk found them.
  std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return std::move(errors_);
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

namespace {

// Edit distance counting insertions, deletions, substitutions and transpositions of
// adjacent letters (optimal string alignment), O(|a| * |b|); the words are config keys.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t width = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * width);
  auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * width + j]; };
  for (std::size_t i = 0; i <= a.size(); ++i)
    at(i, 0) = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    at(0, j) = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

}  // namespace

std::string_view closest_match(std::string_view word,
                               std::span<const std::string_view> candidates) {
  // Close enough: at most 2 edits, and fewer than half the word, so "a" does not suggest "x".
  std::size_t limit = std::min<std::size_t>(2, (word.size() + 1) / 2);
  std::string_view best;
  std::size_t best_distance = limit + 1;
  for (auto candidate : candidates) {
    std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  auto match = closest_match(word, candidates);
  if (match.empty()) return "";
  return " (did you mean " + quoted(match) + "?)";
}

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out = parent;
  out += '.';
  out += key;
  return out;
}

std::string index_path(const std::string& parent, std::size_t index) {
  return parent + '[' + std::to_string(index) + ']';
}

}  // namespace detail
}  // namespace meridian::config
