#include "config/yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "meridian/core/units.hpp"

namespace meridian::config::detail {
namespace {

std::string format_number(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc{} ? std::string(buf, end) : std::to_string(value);
}

// Whether `text` is digits followed by one of `units`: then a failed parse means overflow,
// which deserves a different message than a malformed value.
bool has_unit_shape(std::string_view text, std::span<const std::string_view> units) {
  std::size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9')
    ++n;
  if (n == 0) return false;
  return std::find(units.begin(), units.end(), text.substr(n)) != units.end();
}

// The scalar text of `field`, or an error naming what was expected instead.
const std::string* scalar_text(Diagnostics& diag, const Field& field, std::string_view expected) {
  if (field.node.IsScalar()) return &field.node.Scalar();
  diag.error(field, "expected " + std::string(expected) + ", got " + describe(field.node));
  return nullptr;
}

}  // namespace

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::optional<bool> plain_bool(const YAML::Node& node) {
  // yaml-cpp also reads "y" and "n" as booleans; as a file name or enum value they are
  // more likely meant literally.
  if (!node.IsScalar() || node.Tag() != "?" || node.Scalar().size() < 2) return std::nullopt;
  bool value = false;
  if (!YAML::convert<bool>::decode(node, value)) return std::nullopt;
  return value;
}

std::string choice_list(std::span<const std::string_view> names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

std::optional<std::string> read_string(Diagnostics& diag, const Field& field) {
  const auto* text = scalar_text(diag, field, "a string");
  if (!text) return std::nullopt;
  return *text;
}

std::optional<std::uint64_t> read_uint(Diagnostics& diag, const Field& field, std::uint64_t min,
                                       std::uint64_t max) {
  const auto* text = scalar_text(diag, field, "a number");
  if (!text) return std::nullopt;
  auto value = parse_uint(*text);
  bool all_digits = !text->empty() && std::all_of(text->begin(), text->end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!value && !all_digits) {
    diag.error(field, "expected a non-negative integer, got " + quoted(*text));
    return std::nullopt;
  }
  if (!value || *value > max) {
    diag.error(field, "must be at most " + std::to_string(max) + ", got " + *text);
    return std::nullopt;
  }
  if (*value < min) {
    diag.error(field, "must be at least " + std::to_string(min) + ", got " + *text);
    return std::nullopt;
  }
  return value;
}

std::optional<double> read_double(Diagnostics& diag, const Field& field, double min, double max) {
  const auto* text = scalar_text(diag, field, "a number");
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  // from_chars takes no '+'; YAML does.
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
      !std::isfinite(value)) {
    diag.error(field, "expected a number, got " + quoted(*text));
    return std::nullopt;
  }
  if (value < min || value > max) {
    std::string bound =
        std::isinf(max) ? "must be at least " + format_number(min)
                        : "must be within [" + format_number(min) + ", " + format_number(max) + "]";
    diag.error(field, bound + ", got " + *text);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> read_bool(Diagnostics& diag, const Field& field) {
  const auto* text = scalar_text(diag, field, "true or false");
  if (!text) return std::nullopt;
  bool value = false;
  if (!YAML::convert<bool>::decode(field.node, value)) {
    diag.error(field, "expected true or false, got " + quoted(*text));
    return std::nullopt;
  }
  return value;
}

std::optional<Duration> read_duration(Diagnostics& diag, const Field& field, AllowZero zero) {
  const auto* text = scalar_text(diag, field, "a duration");
  if (!text) return std::nullopt;
  auto value = parse_duration(*text);
  if (!value) {
    static constexpr std::string_view kUnits[] = {"ms", "s", "m", "h"};
    diag.error(field, has_unit_shape(*text, kUnits)
                          ? "duration " + quoted(*text) + " is too large"
                          : "expected a duration like 250ms, 2s, 5m or 1h, got " + quoted(*text));
    return std::nullopt;
  }
  if (zero == AllowZero::no && value->count() == 0) {
    diag.error(field, "must be greater than zero, got " + quoted(*text));
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> read_size(Diagnostics& diag, const Field& field, std::uint64_t min) {
  const auto* text = scalar_text(diag, field, "a size");
  if (!text) return std::nullopt;
  auto value = parse_size(*text);
  if (!value) {
    static constexpr std::string_view kUnits[] = {"", "KiB", "MiB", "GiB"};
    diag.error(field, has_unit_shape(*text, kUnits)
                          ? "size " + quoted(*text) + " is too large"
                          : "expected a size like 512, 64KiB, 16MiB or 1GiB, got " + quoted(*text));
    return std::nullopt;
  }
  if (*value < min) {
    diag.error(field, "must be at least " + std::to_string(min) + ", got " + quoted(*text));
    return std::nullopt;
  }
  return value;
}

std::vector<Field> read_sequence(Diagnostics& diag, const Field& field) {
  std::vector<Field> items;
  if (field.node.IsNull()) return items;
  if (!field.node.IsSequence()) {
    diag.error(field, "expected a sequence, got " + describe(field.node));
    return items;
  }
  items.reserve(field.node.size());
  std::size_t i = 0;
  for (const auto& item : field.node) {
    Field entry{item, index_path(field.path, i), item.Mark()};
    ++i;
    // A bare "-" is almost always an editing slip; reading it as an empty mapping would
    // report every required key of the entry instead of the one real problem.
    if (item.IsNull()) {
      diag.error(entry, "empty list entry");
      continue;
    }
    items.push_back(std::move(entry));
  }
  return items;
}

std::vector<MapEntry> read_free_map(Diagnostics& diag, const Field& field) {
  std::vector<MapEntry> entries;
  if (field.node.IsNull()) return entries;
  if (!field.node.IsMap()) {
    diag.error(field, "expected a mapping, got " + describe(field.node));
    return entries;
  }
  for (auto it = field.node.begin(); it != field.node.end(); ++it) {
    YAML::Node key = it->first;  // copies: the iterator hands out a temporary pair
    YAML::Node value = it->second;
    if (!key.IsScalar()) {
      diag.error(key.Mark(), field.path, "expected a string key, got " + describe(key));
      continue;
    }
    std::string path = child_path(field.path, key.Scalar());
    YAML::Mark value_mark = value.IsNull() ? key.Mark() : value.Mark();
    entries.push_back({Field{key, path, key.Mark()}, Field{value, std::move(path), value_mark}});
  }
  return entries;
}

std::vector<Field> read_one_or_many(Diagnostics& diag, const Field& field) {
  if (field.node.IsScalar()) return {field};
  return read_sequence(diag, field);
}

MapReader::MapReader(Diagnostics& diag, const Field& field, Section section)
    : diag_(diag), field_(field) {
  const std::span<const std::string_view> known = section_info(section).keys;
  const auto& node = field.node;
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    diag.error(field, "expected a mapping, got " + describe(node));
    valid_ = false;
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies: yaml-cpp's iterator hands out a temporary pair, so references would dangle.
    YAML::Node key_node = it->first;
    YAML::Node value = it->second;
    if (!key_node.IsScalar()) {
      diag.error(key_node.Mark(), field.path, "expected a string key, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    std::string path = child_path(field.path, key);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      diag.error(key_node.Mark(), path, "unknown key " + quoted(key) + did_you_mean(key, known));
      continue;
    }
    auto previous = std::find_if(entries_.begin(), entries_.end(),
                                 [&](const Entry& e) { return e.key == key; });
    if (previous != entries_.end()) {
      // yaml-cpp keeps both; the first one is what node[key] would return, so it wins.
      diag.error(key_node.Mark(), path,
                 "duplicate key " + quoted(key) + " (first at line " +
                     std::to_string(previous->value.mark.line + 1) + ")");
      continue;
    }
    // A null value has no position of its own (yaml-cpp points at the next token), so the
    // key's position stands in for it.
    YAML::Mark mark = value.IsNull() ? key_node.Mark() : value.Mark();
    entries_.push_back(Entry{key, Field{value, std::move(path), mark}});
  }
}

std::optional<Field> MapReader::get(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

std::optional<Field> MapReader::require(std::string_view key) const {
  auto f = get(key);
  if (!f) report_missing(key);
  return f;
}

void MapReader::report_missing(std::string_view key, std::string_view reason) const {
  // A value that was not a mapping at all has been reported once; its keys are not missing.
  if (!valid_) return;
  std::string message = "required key is missing";
  if (!reason.empty()) message += " (" + std::string(reason) + ")";
  diag_.error(field_.mark, child_path(field_.path, key), std::move(message));
}

bool MapReader::read(std::string_view key, std::string& out) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_string(diag_, *f);
  if (v) out = std::move(*v);
  return v.has_value();
}

bool MapReader::read(std::string_view key, bool& out) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_bool(diag_, *f);
  if (v) out = *v;
  return v.has_value();
}

bool MapReader::read(std::string_view key, std::uint32_t& out, std::uint32_t min) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_uint(diag_, *f, min, std::numeric_limits<std::uint32_t>::max());
  if (v) out = static_cast<std::uint32_t>(*v);
  return v.has_value();
}

bool MapReader::read(std::string_view key, std::uint64_t& out, std::uint64_t min) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_uint(diag_, *f, min, std::numeric_limits<std::uint64_t>::max());
  if (v) out = *v;
  return v.has_value();
}

bool MapReader::read(std::string_view key, double& out, double min, double max) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_double(diag_, *f, min, max);
  if (v) out = *v;
  return v.has_value();
}

bool MapReader::read(std::string_view key, Duration& out, AllowZero zero) const {
  auto f = get(key);
  if (!f) return false;
  auto v = read_duration(diag_, *f, zero);
  if (v) out = *v;
  return v.has_value();
}

bool MapReader::read_size(std::string_view key, std::uint64_t& out, std::uint64_t min) const {
  auto f = get(key);
  if (!f) return false;
  auto v = detail::read_size(diag_, *f, min);
  if (v) out = *v;
  return v.has_value();
}

}  // namespace meridian::config::detail
