// State shared by the section readers while one file is walked (loader.cpp drives it,
// listeners.cpp and backends.cpp fill in their parts). Lives only for one load.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "meridian/config/config.hpp"

#include "config/diagnostics.hpp"
#include "config/yaml_reader.hpp"

namespace meridian::config::detail {

struct Walk {
  Diagnostics& diag;
  Config& config;

  // Checks that need the whole file, kept with the position to report them at.
  struct BackendRef {
    std::size_t listener;
    std::size_t route;
    std::size_t entry;  // index into the route's backends (unused for the mirror)
    Field field;        // the `backend`, `backends[].name` or `mirror.backend` value
    bool mirror = false;
  };
  std::vector<BackendRef> backend_refs;
  std::vector<Field> global_scope_uses;  // rate_limit.scope: global, needs rate_limit_store
  struct Bound {
    Field field;        // the `listen` value
    std::string owner;  // `listener "public"` or `admin`
    boost::asio::ip::tcp::endpoint endpoint;
  };
  std::vector<Bound> bound_addresses;
};

// The names seen in one scope (listeners, routes of a listener, backends, regions of a
// backend), to report the second use of a name where it happens.
class UniqueNames {
 public:
  explicit UniqueNames(std::string_view what) : what_(what) {}
  // read_name(), then a duplicate check (reported at `field`). "" when the name is invalid.
  std::string read(Diagnostics& diag, const Field& field);

 private:
  std::string what_;
  std::vector<std::pair<std::string, int>> seen_;  // name, 1-based line
};

void read_listeners(Walk& walk, const Field& field);
// One entry of a listener's `routes` (routes.cpp).
Route read_route(Walk& walk, const Field& field, std::size_t listener_index,
                 std::size_t route_index, UniqueNames& names);
void read_backends(Walk& walk, const Field& field);

// Shared value readers (values.cpp).

// A name that appears in metrics labels, logs and debug headers: non-empty, no whitespace
// or control characters.
std::optional<std::string> read_name(Diagnostics& diag, const Field& field);
// {lat, lon}, both required and in range. `section` says which of the two location mappings
// (node.location, a region's location) this is.
std::optional<Location> read_location(Diagnostics& diag, const Field& field, Section section);
// Reports against `field` when `path` cannot be opened for reading as a regular file.
// `what` names the file in the message ("certificate file").
bool check_readable_file(Diagnostics& diag, const Field& field, const std::string& path,
                         std::string_view what);
// ASCII case mapping for host names, codes and header names (locale-independent).
std::string ascii_lower(std::string text);
std::string ascii_upper(std::string text);
// RFC 9110 token: method names and header field names.
bool is_token(std::string_view text);
// A string that must not be empty: lower-level than read_name (no character rules).
std::optional<std::string> read_non_empty_string(Diagnostics& diag, const Field& field);
// "20%", "12.5%": a share in [0, 100] percent, returned as a fraction in [0, 1].
std::optional<double> read_percent(Diagnostics& diag, const Field& field);

}  // namespace meridian::config::detail
