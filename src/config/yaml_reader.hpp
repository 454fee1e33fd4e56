// Typed readers over yaml-cpp nodes that record a Diagnostics error instead of throwing.
// Each reader returns nullopt (or leaves its output untouched) when the value is wrong, so
// the walk carries on and finds the next problem too.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "meridian/config/config.hpp"

#include "config/diagnostics.hpp"
#include "config/schema.hpp"

namespace meridian::config::detail {

// "a mapping", "a sequence", "null", or the scalar quoted: for "expected X, got Y".
std::string describe(const YAML::Node& node);

// The value of an unquoted YAML 1.1 boolean (true/false, yes/no, on/off), else nullopt.
// `false` stands for `off` (docs/configuration.md, value syntax); a quoted "false" stays a string.
std::optional<bool> plain_bool(const YAML::Node& node);
inline bool is_plain_false(const YAML::Node& node) {
  return plain_bool(node) == false;
}

enum class AllowZero : bool { no, yes };

std::optional<std::string> read_string(Diagnostics& diag, const Field& field);
std::optional<std::uint64_t> read_uint(Diagnostics& diag, const Field& field, std::uint64_t min,
                                       std::uint64_t max);
std::optional<double> read_double(Diagnostics& diag, const Field& field, double min, double max);
std::optional<bool> read_bool(Diagnostics& diag, const Field& field);
std::optional<Duration> read_duration(Diagnostics& diag, const Field& field, AllowZero zero);
std::optional<std::uint64_t> read_size(Diagnostics& diag, const Field& field, std::uint64_t min);

// The items of a sequence; null reads as empty. Anything else is an error and reads as empty.
// Null items ("-" alone) are reported and left out.
std::vector<Field> read_sequence(Diagnostics& diag, const Field& field);
// A single scalar or a sequence of them, e.g. `continent: EU` or `continent: [EU, NA]`.
std::vector<Field> read_one_or_many(Diagnostics& diag, const Field& field);

// The entries of a mapping whose keys are the operator's own (header names, query
// parameters), in file order: each key as a Field (its text, its position) with its value.
// Null reads as empty; anything but a mapping, and a key that is not a scalar, is reported.
struct MapEntry {
  Field key;
  Field value;
};
std::vector<MapEntry> read_free_map(Diagnostics& diag, const Field& field);

template <class E>
struct Choice {
  std::string_view name;
  E value;
};

// "a, b or c".
std::string choice_list(std::span<const std::string_view> names);

template <class E, std::size_t N>
std::optional<E> read_choice(Diagnostics& diag, const Field& field, const Choice<E> (&choices)[N]) {
  auto text = read_string(diag, field);
  if (!text) return std::nullopt;
  std::string_view names[N];
  for (std::size_t i = 0; i < N; ++i) {
    if (choices[i].name == *text) return choices[i].value;
    names[i] = choices[i].name;
  }
  diag.error(field, "expected " + choice_list(names) + ", got " + quoted(*text) +
                        did_you_mean(*text, names));
  return std::nullopt;
}

// One YAML mapping. Construction reports a value that is not a mapping, duplicate keys and
// keys `section` does not accept (with a suggestion); the getters then only see the accepted
// keys. The keys come from the schema table (schema.hpp), never from a list of the caller's,
// so what the loader accepts and what accepted_key_paths() reports are the same.
class MapReader {
 public:
  MapReader(Diagnostics& diag, const Field& field, Section section);

  // False when the value was not a mapping (already reported). Null counts as an empty
  // mapping, so `health_check:` with nothing under it means "all defaults".
  bool valid() const { return valid_; }
  const Field& field() const { return field_; }
  const std::string& path() const { return field_.path; }
  Diagnostics& diagnostics() const { return diag_; }

  std::optional<Field> get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key).has_value(); }
  // Like get(), and reports "required key is missing" at the mapping when absent.
  std::optional<Field> require(std::string_view key) const;
  // Reports that `key` is required for `reason` when absent; for conditional requirements.
  void report_missing(std::string_view key, std::string_view reason = {}) const;

  // Shortcuts: when `key` is present and valid, store it in `out` and return true.
  bool read(std::string_view key, std::string& out) const;
  bool read(std::string_view key, bool& out) const;
  bool read(std::string_view key, std::uint32_t& out, std::uint32_t min = 0) const;
  bool read(std::string_view key, std::uint64_t& out, std::uint64_t min = 0) const;
  bool read(std::string_view key, double& out, double min, double max) const;
  bool read(std::string_view key, Duration& out, AllowZero zero) const;
  bool read_size(std::string_view key, std::uint64_t& out, std::uint64_t min = 0) const;
  template <class E, std::size_t N>
  bool read(std::string_view key, E& out, const Choice<E> (&choices)[N]) const {
    auto f = get(key);
    if (!f) return false;
    auto v = read_choice(diag_, *f, choices);
    if (v) out = *v;
    return v.has_value();
  }

 private:
  struct Entry {
    std::string key;
    Field value;
  };
  Diagnostics& diag_;
  Field field_;
  std::vector<Entry> entries_;
  bool valid_ = true;
};

}  // namespace meridian::config::detail
