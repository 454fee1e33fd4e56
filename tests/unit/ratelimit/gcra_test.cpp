// The GCRA token bucket on a manual clock: burst, refill, the RateLimit-* values and
// Retry-After, and the lock-free shared form under threads.
#include "meridian/ratelimit/gcra.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::ratelimit {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kStart = 1'000 * kSec;  // an arbitrary steady_clock reading

Quota quota(std::uint64_t tokens, std::chrono::milliseconds per, std::uint64_t burst) {
  config::RateLimit limit;
  limit.rate = config::Rate{tokens, per};
  limit.burst = burst;
  return Quota::of(limit);
}

TEST(Quota, IntervalAndCapacity) {
  const Quota q = quota(10, std::chrono::minutes(1), 10);
  EXPECT_EQ(q.interval_ns, 6 * kSec);
  EXPECT_EQ(q.burst, 10u);
  EXPECT_EQ(q.capacity_ns, 60 * kSec);
}

TEST(Quota, CapacitySaturatesInsteadOfOverflowing) {
  const Quota q = quota(1, std::chrono::hours(1), 1'000'000'000'000ULL);
  EXPECT_GT(q.capacity_ns, 0);
  std::int64_t tat = 0;
  EXPECT_TRUE(gcra_take(tat, kStart, q).allowed);
}

TEST(Gcra, BurstThenRefusedWithHeaders) {
  const Quota q = quota(10, std::chrono::minutes(1), 10);  // one token per 6 s
  std::int64_t tat = 0;
  for (std::uint64_t i = 0; i < 10; ++i) {
    const Decision d = gcra_take(tat, kStart, q);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 10u);
    EXPECT_EQ(d.remaining, 9 - i);
    EXPECT_EQ(d.reset_s, 6 * (i + 1));  // seconds until the bucket is full again
  }
  const Decision refused = gcra_take(tat, kStart, q);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0u);
  EXPECT_EQ(refused.retry_after_s, 6u);
  EXPECT_EQ(refused.reset_s, 60u);
  // A refused request takes nothing: the next token still comes 6 s after the start.
  EXPECT_FALSE(gcra_take(tat, kStart + 6 * kSec - 1, q).allowed);
  const Decision later = gcra_take(tat, kStart + 6 * kSec, q);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.remaining, 0u);
}

TEST(Gcra, RetryAfterRoundsUpToWholeSeconds) {
  const Quota q = quota(4, std::chrono::seconds(1), 1);  // one token per 250 ms
  std::int64_t tat = 0;
  EXPECT_TRUE(gcra_take(tat, kStart, q).allowed);
  const Decision d = gcra_take(tat, kStart + kSec / 10, q);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1u);  // 150 ms away, said as 1 s
}

TEST(Gcra, IdleBucketRefillsToBurstOnly) {
  const Quota q = quota(1, std::chrono::seconds(1), 3);
  std::int64_t tat = 0;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(gcra_take(tat, kStart, q).allowed);
  // An hour later the bucket holds 3 tokens again, not 3600.
  const std::int64_t later = kStart + 3600 * kSec;
  int allowed = 0;
  for (int i = 0; i < 10; ++i)
    allowed += gcra_take(tat, later, q).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 3);
}

TEST(Gcra, SteadyRateOverTime) {
  // 100/s with burst 10 for 5 s of requests every millisecond: 500 + 10 allowed.
  const Quota q = quota(100, std::chrono::seconds(1), 10);
  std::int64_t tat = 0;
  int allowed = 0;
  for (std::int64_t ms = 0; ms < 5000; ++ms) {
    allowed += gcra_take(tat, kStart + ms * 1'000'000, q).allowed ? 1 : 0;
  }
  EXPECT_GE(allowed, 509);
  EXPECT_LE(allowed, 510);
}

TEST(Gcra, AShrunkCapacityClampsAnOldTat) {
  // A client emptied a slow bucket (1/h, burst 10: TAT 10 h ahead); a reload makes the
  // route 1/s, burst 2. The client waits at most the new bucket's time, not 10 hours.
  std::int64_t tat = 0;
  const Quota slow = quota(1, std::chrono::hours(1), 10);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(gcra_take(tat, kStart, slow).allowed);
  const Quota fast = quota(1, std::chrono::seconds(1), 2);
  const Decision now = gcra_take(tat, kStart, fast);
  EXPECT_FALSE(now.allowed);
  EXPECT_LE(now.retry_after_s, 1u);
  EXPECT_TRUE(gcra_take(tat, kStart + kSec, fast).allowed);
}

TEST(Gcra, DecisionFromAStoreVerdict) {
  const Quota q = quota(10, std::chrono::minutes(1), 10);
  const Decision allowed = gcra_decision(true, 12 * kSec, q);
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.remaining, 8u);
  EXPECT_EQ(allowed.reset_s, 12u);
  const Decision refused = gcra_decision(false, 60 * kSec, q);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 6u);
}

TEST(Gcra, SharedBucketAllowsExactlyTheBurstAcrossThreads) {
  const Quota q = quota(1, std::chrono::hours(1), 1000);
  std::atomic<std::int64_t> tat{0};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (gcra_take(tat, kStart, q).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

}  // namespace
}  // namespace meridian::ratelimit
