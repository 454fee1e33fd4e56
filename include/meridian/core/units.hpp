// Parsing of the configuration's value syntaxes (docs/configuration.md, value syntax):
// durations, sizes, rates, host:port. Pure functions, no allocation beyond the returned
// strings; used by the config loader.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace meridian {

// A non-negative decimal integer: ASCII digits only (no sign, no spaces). nullopt on anything
// else or when it does not fit in 64 bits.
std::optional<std::uint64_t> parse_uint(std::string_view text);

// "250ms", "2s", "5m", "1h" (also "0s"). Whole numbers only. nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "512", "64KiB", "16MiB", "1GiB" (also "KB"-style decimal units are rejected). nullopt on
// anything else or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

struct ParsedRate {
  std::uint64_t tokens;
  std::chrono::milliseconds per;
};
// "100/s", "10/m", "5/h". nullopt on anything else (zero is accepted here; the caller decides).
std::optional<ParsedRate> parse_rate(std::string_view text);

struct HostPort {
  std::string host;  // brackets removed for "[v6]"
  std::uint16_t port;
};
// "host:port" or "[v6]:port"; port 0..65535. nullopt when the shape is wrong.
std::optional<HostPort> parse_host_port(std::string_view text);

// The other way: "10.0.0.1:53", "[2001:db8::1]:53" (the form parse_host_port reads).
std::string format_host_port(const boost::asio::ip::address& address, std::uint16_t port);

}  // namespace meridian
