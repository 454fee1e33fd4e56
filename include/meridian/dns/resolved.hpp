// What DNS re-resolution currently knows: for each endpoint host name that has `resolve`
// (docs/configuration.md), the addresses of its last good lookup. Built on the main thread by
// dns::Refresher and read when a snapshot's backends are built (balancing::build_backends).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace meridian::dns {

// host name (as written, without the port) -> its addresses, sorted; never empty.
using ResolvedAddresses = std::map<std::string, std::vector<boost::asio::ip::address>>;

}  // namespace meridian::dns
