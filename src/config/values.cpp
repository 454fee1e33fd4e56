#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <fcntl.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include "config/walk.hpp"

namespace meridian::config::detail {

std::string ascii_lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

std::string ascii_upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

bool is_token(std::string_view text) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

std::optional<std::string> read_non_empty_string(Diagnostics& diag, const Field& field) {
  auto text = read_string(diag, field);
  if (text && text->empty()) {
    diag.error(field, "must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> read_name(Diagnostics& diag, const Field& field) {
  auto text = read_non_empty_string(diag, field);
  if (!text) return std::nullopt;
  for (char c : *text) {
    auto u = static_cast<unsigned char>(c);
    // Names go into header values (x-meridian-region, Via) and log lines verbatim.
    if (u <= 0x20 || u == 0x7f) {
      diag.error(field, "must not contain spaces or control characters, got " + quoted(*text));
      return std::nullopt;
    }
  }
  return text;
}

std::string UniqueNames::read(Diagnostics& diag, const Field& field) {
  auto name = read_name(diag, field);
  if (!name) return "";
  for (const auto& [seen, line] : seen_) {
    if (seen == *name) {
      diag.error(field, "duplicate " + what_ + " name " + quoted(*name) + " (first at line " +
                            std::to_string(line) + ")");
      return *name;
    }
  }
  seen_.emplace_back(*name, field.mark.line + 1);
  return *name;
}

std::optional<Location> read_location(Diagnostics& diag, const Field& field, Section section) {
  MapReader map(diag, field, section);
  if (!map.valid()) return std::nullopt;
  Location location;
  // Both are checked before giving up, so a location missing both reports both.
  bool lat_ok = map.require("lat") && map.read("lat", location.lat, -90.0, 90.0);
  bool lon_ok = map.require("lon") && map.read("lon", location.lon, -180.0, 180.0);
  bool ok = lat_ok && lon_ok;
  if (!ok) return std::nullopt;
  return location;
}

std::optional<double> read_percent(Diagnostics& diag, const Field& field) {
  auto text = read_string(diag, field);
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  double value = -1;
  if (digits.ends_with('%')) {
    digits.remove_suffix(1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
        !std::isfinite(value)) {
      value = -1;
    }
  }
  if (value < 0 || value > 100) {
    diag.error(field, "expected a percentage from 0% to 100%, like 20%, got " + quoted(*text));
    return std::nullopt;
  }
  return value / 100.0;
}

bool check_readable_file(Diagnostics& diag, const Field& field, const std::string& path,
                         std::string_view what) {
  auto fail = [&](int error) {
    diag.error(field, "cannot read " + std::string(what) + " " + quoted(path) + ": " +
                          std::generic_category().message(error));
    return false;
  };
  // Opening is the real test (permissions included); fstat then rules out directories,
  // which open() accepts for reading.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  struct stat st {};
  int rc = ::fstat(fd, &st);
  int stat_errno = errno;
  ::close(fd);
  if (rc != 0) return fail(stat_errno);
  if (!S_ISREG(st.st_mode)) return fail(S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
  return true;
}

}  // namespace meridian::config::detail
