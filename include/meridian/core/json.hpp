// The one JSON string writer of the admin API and the access log: quotes, backslashes and
// control characters escaped (\uXXXX), every other byte as it is (values are HTTP tokens,
// names from the config, or request fields, which may carry obs-text bytes).
#pragma once

#include <string>
#include <string_view>

namespace meridian::json {

// Appends `s` to `out` as a quoted JSON string.
void append_string(std::string& out, std::string_view s);

}  // namespace meridian::json
