// host:port values, resolved at load time so nothing after the loader does DNS.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "meridian/config/config.hpp"

#include "config/diagnostics.hpp"
#include "config/yaml_reader.hpp"

namespace meridian::config::detail {

// Resolve::no (an endpoint with `resolve`: DNS re-resolution looks the name up) leaves
// `resolved` unset for a host name; an IP literal is always filled in.
enum class Resolve : bool { no, yes };

// Parses and resolves `text`. A numeric address is parsed without DNS; a name is resolved
// synchronously and the first result kept. nullopt with `error` set on failure.
std::optional<SocketAddress> make_socket_address(std::string_view text, AllowZero port_zero,
                                                 std::string& error,
                                                 Resolve resolve = Resolve::yes);

// The same for a YAML value, reporting failures against `field`.
std::optional<SocketAddress> read_address(Diagnostics& diag, const Field& field,
                                          AllowZero port_zero, Resolve resolve = Resolve::yes);

}  // namespace meridian::config::detail
