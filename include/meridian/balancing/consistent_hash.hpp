// Consistent hashing of a key onto a region's endpoints (`balance: ring_hash | maglev`,
// docs/configuration.md): the same key reaches the same endpoint while it is usable, and when
// one endpoint of N goes (or comes), about 1/N of the keys move -- its own. Built on the main
// thread with the snapshot (never per request), read-only afterwards; a lookup allocates
// nothing and takes no lock.
//
// Endpoints are placed by a hash of their address text (as configured, or as resolved for a
// name with `resolve`), not by their position in the list, so a reload that adds, removes or
// reorders endpoints moves only the keys it must, and every node of a fleet with the same
// endpoints builds the same table: a client that anycast moves to another node keeps its
// endpoint.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace meridian::balancing {

struct HashedEndpoint {
  std::string_view name;     // the endpoint's address text
  std::uint32_t weight = 1;  // >= 1
};

// A 64-bit hash of `bytes` (FNV-1a, then a splitmix64 finish): keys, endpoint names.
std::uint64_t hash_bytes(std::string_view bytes);
// The same for a + b + c, without building the concatenation.
std::uint64_t hash_bytes(std::string_view a, std::string_view b, std::string_view c);

// Maglev (Eisenbud et al., NSDI 2016): a lookup table of kSize entries, each naming an
// endpoint; every endpoint fills entries along its own permutation of the table in turn,
// weighted (an endpoint of weight w takes w turns to a weight-1 endpoint's one), so each
// owns a share of the table proportional to its weight. A lookup is one modulo and one load.
class MaglevTable {
 public:
  // Envoy's default table size: a prime, far above 100 x endpoints for any real region,
  // which keeps every endpoint's share within 1% of its weight's. 2 bytes an entry: 128 KiB
  // per region.
  static constexpr std::uint32_t kSize = 65537;
  static constexpr std::size_t kMaxEndpoints = 65535;

  explicit MaglevTable(std::span<const HashedEndpoint> endpoints);
  bool empty() const { return table_.empty(); }
  // The index (into the span given at construction) of the endpoint owning `hash`.
  std::uint32_t lookup(std::uint64_t hash) const {
    return table_[static_cast<std::size_t>(hash % kSize)];
  }

 private:
  std::vector<std::uint16_t> table_;
};

// A hash ring (Karger et al.; ketama's layout): each endpoint gets kPointsPerWeight x weight
// points at hashes of "name#i"; a key belongs to the first point at or after its hash,
// wrapping around. A lookup is a binary search.
class HashRing {
 public:
  static constexpr std::uint32_t kPointsPerWeight = 160;  // ketama's 160 per server
  static constexpr std::size_t kMaxPoints = 1u << 20;     // weights are scaled down beyond

  explicit HashRing(std::span<const HashedEndpoint> endpoints);
  bool empty() const { return points_.empty(); }
  std::size_t points() const { return points_.size(); }
  // The position on the ring of the first point at or after `hash`.
  std::size_t find(std::uint64_t hash) const;
  // The endpoint index of the point at `position` (mod the ring's size): walking on from
  // find() visits the next endpoints in ring order.
  std::uint32_t endpoint_at(std::size_t position) const {
    return points_[position % points_.size()].endpoint;
  }

 private:
  struct Point {
    std::uint64_t hash;
    std::uint32_t endpoint;
  };
  std::vector<Point> points_;  // sorted by hash
};

}  // namespace meridian::balancing
