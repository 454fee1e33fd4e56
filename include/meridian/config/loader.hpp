// YAML -> validated Config (docs/configuration.md). Runs on the main thread at start-up and at
// reload; never on a worker. Exceptions from yaml-cpp stop here: callers get a list of errors.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/config/config.hpp"

namespace meridian::config {

struct ConfigError {
  std::string file;  // path as given to the loader
  int line = 0;      // 1-based; 0 when the error has no position (e.g. file unreadable)
  int column = 0;    // 1-based
  std::string key;   // dotted path with indices, e.g. "backends[0].regions[1].endpoints[0].address"
  std::string message;

  // "file:line:column: key: message"; "file: message" when there is no position.
  std::string to_string() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;       // every error found, in file order
  bool ok() const { return errors.empty(); }
};

// Reads, parses and validates the whole file. Never throws.
LoadResult load_config_file(const std::string& path);

// Same, from text; `display_path` is what errors name as the file.
LoadResult load_config_string(std::string_view yaml, const std::string& display_path);

}  // namespace meridian::config
