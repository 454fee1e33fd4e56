// Reading one cookie from a request's Cookie fields (RFC 6265 5.4: "name=value" pairs
// separated by "; "), without allocating. HTTP/2 requests arrive with their cookie crumbs
// already joined into one field (RFC 9113 8.2.3).
#pragma once

#include <optional>
#include <string_view>

#include "meridian/http/message_head.hpp"

namespace meridian::http {

// The value of the first cookie named `name` (compared case-sensitively, as cookie names
// are), with surrounding double quotes removed; nullopt when there is none.
std::optional<std::string_view> find_cookie(const RequestHead& head, std::string_view name);

}  // namespace meridian::http
