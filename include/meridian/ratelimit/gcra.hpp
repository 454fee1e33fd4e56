// The token bucket of a route's rate limit (docs/http-behaviour.md, rate limiting) in its GCRA
// form (generic cell rate algorithm, as in ATM's traffic policing and in Redis-based limiters
// such as redis-cell): a bucket of `burst` tokens refilled at one token per `interval` is the
// same as one number per key, the theoretical arrival time (TAT) -- the moment at which the
// bucket would be full again. A request at `now` takes a token when max(TAT, now) + interval -
// now <= burst * interval, and then moves TAT on by one interval. No refill loop, no floating
// point, one integer of state, so a node-wide bucket is a single atomic and a fleet-wide one a
// single Redis value.
//
// Pure functions; callers supply the clock (tests pass any time they like).
#pragma once

#include <atomic>
#include <cstdint>

#include "meridian/config/config.hpp"

namespace meridian::ratelimit {

struct Quota {
  std::int64_t interval_ns = 1;  // one token every interval: rate.per / rate.tokens, >= 1
  std::uint64_t burst = 1;       // bucket size, >= 1
  // burst * interval_ns: how far TAT may run ahead of now. Saturates (at about 73 years)
  // instead of overflowing for absurd bursts of slow rates.
  std::int64_t capacity_ns = 1;

  static Quota of(const config::RateLimit& limit);
};

// What a request is told: allowed or not, and the RateLimit-* header values.
struct Decision {
  bool allowed = true;
  std::uint64_t limit = 0;          // RateLimit-Limit: the bucket size (burst)
  std::uint64_t remaining = 0;      // RateLimit-Remaining: tokens left after this request
  std::uint64_t reset_s = 0;        // RateLimit-Reset: whole seconds until the bucket is full
  std::uint64_t retry_after_s = 0;  // denied only: whole seconds until a token is there, >= 1
};

// One request against the bucket whose TAT is `tat` (ns on the caller's clock; 0 = a new,
// full bucket). Updates `tat` when the request is allowed.
Decision gcra_take(std::int64_t& tat, std::int64_t now_ns, const Quota& quota);

// The same on a bucket shared between threads: a compare-and-swap loop, no lock.
Decision gcra_take(std::atomic<std::int64_t>& tat, std::int64_t now_ns, const Quota& quota);

// The decision for a bucket evaluated elsewhere (the Redis script): `ahead_ns` is the TAT
// after the request minus now when it was allowed, or the TAT minus now when it was denied.
Decision gcra_decision(bool allowed, std::int64_t ahead_ns, const Quota& quota);

}  // namespace meridian::ratelimit
