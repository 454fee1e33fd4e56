#include "meridian/ratelimit/route_limit.hpp"

#include <cstring>

namespace meridian::ratelimit {

namespace {

constexpr std::size_t kMaxReadableKey = 64;
// Kept apart in the local table: an address and a header value with the same bytes.
constexpr std::uint64_t kAddressSeed = 0x61;
constexpr std::uint64_t kHeaderSeed = 0x68;

ClientKey address_key(const boost::asio::ip::address& client, KeyBuffer& buffer) {
  if (client.is_v4()) {
    const auto bytes = client.to_v4().to_bytes();
    std::memcpy(buffer, bytes.data(), bytes.size());
    return {{reinterpret_cast<const char*>(buffer), bytes.size()}, true};
  }
  const auto bytes = client.to_v6().to_bytes();
  std::memcpy(buffer, bytes.data(), bytes.size());
  return {{reinterpret_cast<const char*>(buffer), bytes.size()}, true};
}

bool readable(std::string_view s) {
  if (s.empty() || s.size() > kMaxReadableKey) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

RouteLimit::RouteLimit(std::string_view listener, std::string_view route,
                       const config::RateLimit& limit)
    : config(limit),
      quota(Quota::of(limit)),
      name(std::string(listener) + "/" + std::string(route)),
      seed(hash64(name)) {}

bool RouteLimit::same_as(std::string_view listener, std::string_view route,
                         const config::RateLimit& limit) const {
  return name.size() == listener.size() + 1 + route.size() && name.starts_with(listener) &&
         name[listener.size()] == '/' && name.ends_with(route) &&
         config.rate.tokens == limit.rate.tokens && config.rate.per == limit.rate.per &&
         config.burst == limit.burst && config.key == limit.key &&
         config.header_name == limit.header_name && config.scope == limit.scope;
}

ClientKey client_key(const config::RateLimit& limit, const http::RequestHead& head,
                     const boost::asio::ip::address& client, KeyBuffer& buffer) {
  switch (limit.key) {
    case config::RateLimitKey::route:
      return {};
    case config::RateLimitKey::header:
      if (const auto* field = head.find(limit.header_name)) return {field->value, false};
      [[fallthrough]];
    case config::RateLimitKey::client_ip:
      return address_key(client, buffer);
  }
  return {};
}

Decision take_local(RouteLimit& limit, LocalBuckets* buckets, const ClientKey& key,
                    std::int64_t now_ns) {
  if (limit.config.key == config::RateLimitKey::route) {
    return gcra_take(limit.route_tat, now_ns, limit.quota);
  }
  const std::uint64_t seed = limit.seed ^ (key.address ? kAddressSeed : kHeaderSeed);
  return buckets->take(buckets->hash_key(seed, key.bytes), now_ns, limit.quota);
}

std::string global_key(const RouteLimit& limit, const ClientKey& key) {
  std::string out = "meridian:rl:" + limit.name;
  if (limit.config.key == config::RateLimitKey::route) return out;
  out += ':';
  if (key.address) {
    if (key.bytes.size() == 4) {
      boost::asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), key.bytes.data(), b.size());
      out += boost::asio::ip::address_v4(b).to_string();
    } else {
      boost::asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), key.bytes.data(), b.size());
      out += boost::asio::ip::address_v6(b).to_string();
    }
  } else if (readable(key.bytes)) {
    out += "h=";
    out += key.bytes;
  } else {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "h#";
    const std::uint64_t h = hash64(key.bytes);
    for (int shift = 60; shift >= 0; shift -= 4)
      out += kHex[(h >> shift) & 0xf];
  }
  return out;
}

}  // namespace meridian::ratelimit
