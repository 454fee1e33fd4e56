// The rate limit of one route as the data path uses it: its quota, its identity, the
// route-wide bucket of `key: route`, and the count of refused requests. Built on the main
// thread with each snapshot; shared by every worker; carried across a reload while the route
// keeps its listener, name and limit, so a reload does not refill anybody's bucket.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "meridian/config/config.hpp"
#include "meridian/http/message_head.hpp"
#include "meridian/ratelimit/gcra.hpp"
#include "meridian/ratelimit/local_buckets.hpp"

namespace meridian::ratelimit {

struct RouteLimit {
  RouteLimit(std::string_view listener, std::string_view route, const config::RateLimit& limit);

  // Same listener, route name and limit settings: the state may carry over a reload.
  bool same_as(std::string_view listener, std::string_view route,
               const config::RateLimit& limit) const;

  const config::RateLimit config;
  const Quota quota;
  const std::string name;    // "listener/route": the bucket's name, in Redis too
  const std::uint64_t seed;  // hash64(name): mixes the route into local table keys

  std::atomic<std::int64_t> route_tat{0};  // the bucket of key: route, scope: local
  std::atomic<std::uint64_t> limited{0};   // requests refused (meridian_rate_limited_total)
};

// What names the client's bucket for `limit.key`.
struct ClientKey {
  std::string_view bytes;  // address bytes (4 or 16) or a header value; empty for key: route
  bool address = false;    // bytes are an address
};

// Room for an address's bytes.
using KeyBuffer = unsigned char[16];

// The client's key: for client_ip the address (its bytes in `buffer`); for header:NAME the
// first NAME field's value (a view into `head`), or, when the request has no such field, the
// client address as for client_ip (a client cannot escape its limit by leaving the header
// out); for route nothing (the route's one bucket).
ClientKey client_key(const config::RateLimit& limit, const http::RequestHead& head,
                     const boost::asio::ip::address& client, KeyBuffer& buffer);

// The local (node-wide) decision for one request: the route's own bucket for key: route,
// else the client's bucket in `buckets`.
// `buckets` may be null for key: route (a snapshot without client keys has no table).
Decision take_local(RouteLimit& limit, LocalBuckets* buckets, const ClientKey& key,
                    std::int64_t now_ns);

// The Redis key of the client's bucket: "meridian:rl:<listener>/<route>:<key>", the key
// spelled as the address, the header value (when it is at most 64 printable characters) or
// a hash of it, so that operators can read the keys and every node names them alike.
std::string global_key(const RouteLimit& limit, const ClientKey& key);

}  // namespace meridian::ratelimit
