// splitmix64's finaliser (Steele, Lea, Flood 2014): spreads any 64-bit value over all 64
// bits. The cheap mixing step behind hashed keys, weighted random picks, shedding by client
// and jittered backoff. Pure functions, no state.
#pragma once

#include <cstdint>

namespace meridian {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The top 53 bits of `x` as a double in [0, 1).
constexpr double unit_interval(std::uint64_t x) {
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

}  // namespace meridian
