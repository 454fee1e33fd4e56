// The query string of an admin request (`/state?backend=api&region=eu-west&state=drain`),
// decoded as an HTML form would encode it: `%XX` escapes and `+` for a space. Admin
// requests are rare, so this favours plain code over speed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace meridian::admin {

// The target's path, without the query.
std::string_view target_path(std::string_view target);

// The decoded value of the first parameter called `name` in the target's query, or nullopt
// when there is none. A parameter without `=` has the value "". A malformed escape (`%G1`,
// a `%` near the end) leaves the text as written.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

}  // namespace meridian::admin
