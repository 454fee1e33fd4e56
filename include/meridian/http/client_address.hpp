// Settling who the client is (client_ip.trusted_proxies): the peer address, unless the peer is
// a trusted proxy, in which case X-Forwarded-For is believed, taking the rightmost address that
// is not itself trusted (the entries to its right were added by our own proxies). When the
// listener took a PROXY protocol header, its source is the client and this is not called.
// Pure function over the parsed head; allocates nothing.
#pragma once

#include <span>

#include <boost/asio/ip/address.hpp>

#include "meridian/config/config.hpp"
#include "meridian/http/message_head.hpp"

namespace meridian::http {

// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 peers) become IPv4.
boost::asio::ip::address unmap(const boost::asio::ip::address& a);

bool is_trusted(const boost::asio::ip::address& a, std::span<const config::Cidr> trusted);

// The client's address for GeoIP, rate limiting and logs. An X-Forwarded-For entry that is
// not an IP address (with an optional port) stops the walk: what lies to its left cannot be
// trusted either, so the last good address wins.
boost::asio::ip::address settle_client_address(const boost::asio::ip::address& peer,
                                               const RequestHead& head,
                                               std::span<const config::Cidr> trusted);

}  // namespace meridian::http
