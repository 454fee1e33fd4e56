// X-Request-Id values: 128 random bits as 32 lower-case hex digits. One generator per
// worker, so generating an id touches no shared state; seeded from std::random_device.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string_view>

namespace meridian {

class RequestIdGenerator {
 public:
  RequestIdGenerator() {
    std::random_device rd;
    for (auto& word : state_)
      word = (std::uint64_t{rd()} << 32) | rd();
  }

  // 64 random bits (trace and span ids).
  std::uint64_t next_u64() { return step(); }

  // Returns a view of an internal buffer, valid until the next call.
  std::string_view next() {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int half = 0; half < 2; ++half) {
      std::uint64_t r = step();
      for (int i = 0; i < 16; ++i) {
        buffer_[static_cast<std::size_t>(half * 16 + i)] = kHex[r & 0xf];
        r >>= 4;
      }
    }
    return {buffer_.data(), buffer_.size()};
  }

 private:
  // xoshiro256** (Blackman and Vigna): fast, statistically strong, not cryptographic; request
  // ids need uniqueness, not secrecy.
  std::uint64_t step() {
    const auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  std::array<std::uint64_t, 4> state_{};
  std::array<char, 32> buffer_{};
};

}  // namespace meridian
