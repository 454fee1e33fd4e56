// The mappings of the configuration file and the keys each one accepts, in one table
// (schema.cpp). MapReader takes a Section rather than a key list, so every mapping the loader
// reads has its entry there: the keys it accepts, the keys "did you mean" suggests, and the
// key paths accepted_key_paths() lists for the documentation test are the same data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace meridian::config::detail {

// One YAML mapping of the schema. Adding one: a value here, then its row in kSections
// (schema.cpp); the static_asserts there reject a table that does not match this list.
enum class Section : std::uint8_t {
  top,
  node,
  node_location,
  admin,
  geoip,
  dns,
  client_ip,
  access_log,
  limits,
  listener,
  listener_tls,
  certificate,
  route,
  route_match,
  rate_limit,
  route_retry,
  route_backend,
  redirect,
  mirror,
  route_headers,
  request_header_rules,
  response_header_rules,
  rate_limit_store,
  backend,
  steering,
  steering_rule,
  rule_match,
  keepalive,
  health_check,
  outlier_detection,
  upstream_tls,
  affinity,
  region,
  region_location,
  endpoint,
  endpoint_resolve,
  tracing,
  count  // not a section: the number of them
};

struct SectionInfo {
  Section section;
  // Where the mapping sits, as a key path with "[]" for "any entry of this sequence", e.g.
  // "listeners[].routes[].rate_limit"; "" for the top level.
  std::string_view path;
  std::span<const std::string_view> keys;  // the keys accepted in it, nothing else
};

// Every section, in the order of the enum.
std::span<const SectionInfo> sections();

inline const SectionInfo& section_info(Section section) {
  return sections()[static_cast<std::size_t>(section)];
}

}  // namespace meridian::config::detail
