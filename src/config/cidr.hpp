// CIDR blocks for client_ip.trusted_proxies.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "meridian/config/config.hpp"

namespace meridian::config::detail {

// "10.0.0.0/8", "2001:db8::/32", or a bare address meaning a single host (/32 or /128).
// Host bits below the prefix are cleared, so "10.1.2.3/8" is stored as 10.0.0.0/8.
// nullopt with `error` set when the text is not a block.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

}  // namespace meridian::config::detail
