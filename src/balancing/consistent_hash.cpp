#include "meridian/balancing/consistent_hash.hpp"

#include <algorithm>
#include <string>

#include "meridian/core/splitmix.hpp"

namespace meridian::balancing {

namespace {

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;

std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) {
  for (const char c : bytes)
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

}  // namespace

std::uint64_t hash_bytes(std::string_view bytes) {
  return splitmix64(fnv1a(kFnvOffset, bytes));
}

std::uint64_t hash_bytes(std::string_view a, std::string_view b, std::string_view c) {
  return splitmix64(fnv1a(fnv1a(fnv1a(kFnvOffset, a), b), c));
}

MaglevTable::MaglevTable(std::span<const HashedEndpoint> endpoints) {
  const std::size_t n = std::min(endpoints.size(), kMaxEndpoints);
  if (n == 0) return;
  constexpr std::uint64_t M = kSize;
  // Each endpoint's permutation of the table: offset + j * skip (mod M), skip in [1, M-1], so
  // with M prime every permutation visits every entry once.
  std::vector<std::uint64_t> offset(n), skip(n), next(n, 0), name_hash(n);
  std::uint32_t max_weight = 1;
  for (std::size_t i = 0; i < n; ++i) {
    name_hash[i] = hash_bytes(endpoints[i].name);
    offset[i] = name_hash[i] % M;
    skip[i] = splitmix64(name_hash[i] ^ 0x9e3779b97f4a7c15ULL) % (M - 1) + 1;
    max_weight = std::max(max_weight, endpoints[i].weight);
  }
  // Turns are taken in an order fixed by the names, not the list, so that the table does not
  // depend on how the endpoints are listed.
  std::vector<std::size_t> turn(n);
  for (std::size_t i = 0; i < n; ++i)
    turn[i] = i;
  std::sort(turn.begin(), turn.end(), [&](std::size_t a, std::size_t b) {
    return name_hash[a] != name_hash[b] ? name_hash[a] < name_hash[b]
                                        : endpoints[a].name < endpoints[b].name;
  });
  constexpr std::uint16_t kEmpty = 0xffff;
  std::vector<std::uint16_t> table(kSize, kEmpty);
  std::vector<std::uint64_t> taken(n, 0);
  std::uint64_t filled = 0;
  // Weighted turns (Envoy's): in round r an endpoint of weight w takes an entry while it has
  // taken fewer than r * w / max_weight; the heaviest takes one every round.
  for (std::uint64_t round = 1; filled < M; ++round) {
    for (std::size_t k = 0; k < n && filled < M; ++k) {
      const std::size_t i = turn[k];
      if (taken[i] * max_weight >= round * endpoints[i].weight) continue;
      std::uint64_t slot = (offset[i] + next[i] * skip[i]) % M;
      while (table[slot] != kEmpty) {
        ++next[i];
        slot = (offset[i] + next[i] * skip[i]) % M;
      }
      table[slot] = static_cast<std::uint16_t>(i);
      ++next[i];
      ++taken[i];
      ++filled;
    }
  }
  table_ = std::move(table);
}

HashRing::HashRing(std::span<const HashedEndpoint> endpoints) {
  std::uint64_t total = 0;
  for (const auto& e : endpoints)
    total += std::uint64_t{e.weight} * kPointsPerWeight;
  // Many endpoints with large weights: fewer points each, in the same proportions.
  const double scale = total > kMaxPoints ? static_cast<double>(kMaxPoints) / total : 1.0;
  points_.reserve(std::min<std::uint64_t>(total, kMaxPoints) + endpoints.size());
  std::string label;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    const auto count = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(
               static_cast<double>(std::uint64_t{endpoints[i].weight} * kPointsPerWeight) * scale));
    for (std::uint64_t k = 0; k < count; ++k) {
      label.assign(endpoints[i].name);
      label.push_back('#');
      label.append(std::to_string(k));
      points_.push_back({hash_bytes(label), static_cast<std::uint32_t>(i)});
    }
  }
  // Ties (two points at one hash) go to the lower index, the same on every node.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.endpoint < b.endpoint;
  });
}

std::size_t HashRing::find(std::uint64_t hash) const {
  const auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                                   [](const Point& p, std::uint64_t h) { return p.hash < h; });
  return it == points_.end() ? 0 : static_cast<std::size_t>(it - points_.begin());
}

}  // namespace meridian::balancing
