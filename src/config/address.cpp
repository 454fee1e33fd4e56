#include "config/address.hpp"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/core/units.hpp"

namespace meridian::config::detail {
namespace {

namespace ip = boost::asio::ip;

// Text that could only be meant as an IPv4 literal. getaddrinfo would accept shorthand
// such as "10.1" (= 10.0.0.1); we refuse it instead of guessing.
bool looks_numeric(std::string_view host) {
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::optional<ip::address> resolve_host(const std::string& host, bool bracketed,
                                        std::string& error) {
  boost::system::error_code ec;
  auto literal = ip::make_address(host, ec);
  if (!ec) {
    if (bracketed && !literal.is_v6()) {
      error = "expected an IPv6 address inside brackets, got " + quoted(host);
      return std::nullopt;
    }
    return literal;
  }
  if (bracketed) {
    error = "invalid IPv6 address " + quoted(host);
    return std::nullopt;
  }
  if (looks_numeric(host)) {
    error = "invalid IPv4 address " + quoted(host);
    return std::nullopt;
  }
  boost::asio::io_context io;
  ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) {
    error =
        "cannot resolve " + quoted(host) + ": " + (ec ? ec.message() : std::string("no addresses"));
    return std::nullopt;
  }
  return results.begin()->endpoint().address();
}

}  // namespace

std::optional<SocketAddress> make_socket_address(std::string_view text, AllowZero port_zero,
                                                 std::string& error, Resolve resolve) {
  auto parsed = parse_host_port(text);
  if (!parsed) {
    // "host:99999" is the right shape with a wrong port; say which part is wrong.
    auto colon = text.rfind(':');
    bool port_out_of_range = colon != std::string_view::npos && colon + 1 < text.size() &&
                             text.substr(colon + 1).size() <= 20 &&
                             parse_uint(text.substr(colon + 1)).value_or(0) > 65535;
    error = port_out_of_range
                ? "port must be between " + std::string(port_zero == AllowZero::yes ? "0" : "1") +
                      " and 65535, got " + quoted(text)
                : "expected host:port, got " + quoted(text);
    return std::nullopt;
  }
  if (parsed->port == 0 && port_zero == AllowZero::no) {
    error = "port must be between 1 and 65535, got " + quoted(text);
    return std::nullopt;
  }
  bool bracketed = text.front() == '[';
  SocketAddress out;
  out.text = std::string(text);
  out.port = parsed->port;
  boost::system::error_code not_literal;
  ip::make_address(parsed->host, not_literal);
  if (resolve == Resolve::no && not_literal) {
    out.host = std::move(parsed->host);
    return out;  // a name DNS re-resolution will look up
  }
  auto address = resolve_host(parsed->host, bracketed, error);
  if (!address) return std::nullopt;
  out.host = std::move(parsed->host);
  out.resolved = ip::tcp::endpoint(*address, parsed->port);
  return out;
}

std::optional<SocketAddress> read_address(Diagnostics& diag, const Field& field,
                                          AllowZero port_zero, Resolve resolve) {
  auto text = read_string(diag, field);
  if (!text) return std::nullopt;
  std::string error;
  auto address = make_socket_address(*text, port_zero, error, resolve);
  if (!address) diag.error(field, std::move(error));
  return address;
}

}  // namespace meridian::config::detail
