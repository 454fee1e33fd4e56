// An IP address in 17 bytes (boost::asio::ip::address takes 32): what a connection keeps of
// its peer for as long as it lives, so it is worth the conversion at each use. An IPv6
// scope id is not kept (a client address's zone means nothing to routing, GeoIP or rate
// limits).
#pragma once

#include <array>

#include <boost/asio/ip/address.hpp>

namespace meridian::net {

class CompactAddress {
 public:
  CompactAddress() = default;
  explicit CompactAddress(const boost::asio::ip::address& a) : v6_(a.is_v6()) {
    if (v6_) {
      bytes_ = a.to_v6().to_bytes();
    } else {
      const auto v4 = a.to_v4().to_bytes();
      for (std::size_t i = 0; i < v4.size(); ++i)
        bytes_[i] = v4[i];
    }
  }

  boost::asio::ip::address get() const {
    if (v6_) return boost::asio::ip::address_v6(bytes_);
    return boost::asio::ip::address_v4({bytes_[0], bytes_[1], bytes_[2], bytes_[3]});
  }

 private:
  std::array<unsigned char, 16> bytes_{};
  bool v6_ = false;
};

}  // namespace meridian::net
