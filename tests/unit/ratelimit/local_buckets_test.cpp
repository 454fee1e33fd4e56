// The node-wide bucket table: one bucket per key, a hard bound on keys with least recently
// used eviction (checked against a simple model over random operations), exact counts under
// concurrent workers, and memory that follows the keys held.
#include "meridian/ratelimit/local_buckets.hpp"

#include <atomic>
#include <list>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

namespace meridian::ratelimit {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kNow = 1'000 * kSec;

Quota per_hour(std::uint64_t burst) {
  config::RateLimit limit;
  limit.rate = config::Rate{1, std::chrono::hours(1)};
  limit.burst = burst;
  return Quota::of(limit);
}

// Keys that all land in shard 0 (top bits zero) with distinct homes.
std::uint64_t shard0_key(std::uint64_t i) {
  return i * 0x9e3779b97f4a7c15ULL >> 6;
}

TEST(LocalBuckets, OneBucketPerKey) {
  LocalBuckets buckets(1000);
  const Quota q = per_hour(2);
  const auto a = buckets.hash_key(1, "10.0.0.1");
  const auto b = buckets.hash_key(1, "10.0.0.2");
  EXPECT_TRUE(buckets.take(a, kNow, q).allowed);
  EXPECT_TRUE(buckets.take(a, kNow, q).allowed);
  EXPECT_FALSE(buckets.take(a, kNow, q).allowed);
  EXPECT_TRUE(buckets.take(b, kNow, q).allowed);
  EXPECT_EQ(buckets.size(), 2u);
}

TEST(LocalBuckets, RouteSeedSeparatesTheSameClient) {
  LocalBuckets buckets(1000);
  EXPECT_NE(buckets.hash_key(1, "10.0.0.1"), buckets.hash_key(2, "10.0.0.1"));
  EXPECT_EQ(buckets.hash_key(1, "10.0.0.1"), buckets.hash_key(1, "10.0.0.1"));
}

TEST(LocalBuckets, BoundedWithLeastRecentlyUsedEviction) {
  LocalBuckets buckets(LocalBuckets::kShards * 16);  // 16 keys per shard
  const Quota q = per_hour(1);
  // Fill shard 0, keep key 0 recent, then add one more: key 1 (the oldest) is forgotten.
  for (std::uint64_t i = 0; i < 16; ++i)
    ASSERT_TRUE(buckets.take(shard0_key(i), kNow, q).allowed);
  EXPECT_FALSE(buckets.take(shard0_key(0), kNow, q).allowed);  // touched: now most recent
  EXPECT_TRUE(buckets.take(shard0_key(100), kNow, q).allowed);
  EXPECT_EQ(buckets.size(), 16u);
  EXPECT_FALSE(buckets.take(shard0_key(0), kNow, q).allowed);  // kept
  EXPECT_FALSE(buckets.take(shard0_key(2), kNow, q).allowed);  // kept
  // Key 1 was evicted, so it starts over with a full bucket (and evicts key 3).
  EXPECT_TRUE(buckets.take(shard0_key(1), kNow, q).allowed);
  EXPECT_TRUE(buckets.take(shard0_key(3), kNow, q).allowed);
}

TEST(LocalBuckets, MatchesAnLruModelOverRandomOperations) {
  // Collisions in the index (few home slots) exercise probing and backward-shift deletion;
  // every answer must match a model that holds the same 16 keys by recency.
  LocalBuckets buckets(LocalBuckets::kShards * 16);
  const Quota q = per_hour(1);
  std::list<std::uint64_t> order;  // front: most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> held;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 200'000; ++step) {
    // 48 candidate keys sharing few homes (the low bits vary in 3 values only).
    const std::uint64_t id = rng() % 48;
    const std::uint64_t key = ((id * 0x9e3779b97f4a7c15ULL) >> 6 & ~std::uint64_t{0xff}) | (id % 3);
    const bool model_held = held.count(key) != 0;
    const Decision d = buckets.take(key, kNow, q);
    // With one token per hour and no time passing, a held key is always refused and a new
    // (or evicted) key always allowed.
    ASSERT_EQ(d.allowed, !model_held) << "step " << step << " key " << id;
    if (model_held) {
      order.erase(held[key]);
    } else if (held.size() == 16) {
      held.erase(order.back());
      order.pop_back();
    }
    order.push_front(key);
    held[key] = order.begin();
  }
  EXPECT_EQ(buckets.size(), 16u);
}

TEST(LocalBuckets, ExactAcrossThreadsOnOneKeyAndManyKeys) {
  LocalBuckets buckets(100'000);
  const Quota q = per_hour(500);
  std::atomic<int> hot{0};
  std::atomic<int> spread{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        if (buckets.take(buckets.hash_key(0, "hot"), kNow, q).allowed) hot.fetch_add(1);
        const char key[2] = {'k', static_cast<char>(i % 100)};
        if (buckets.take(buckets.hash_key(1, std::string_view(key, 2)), kNow, q).allowed) {
          spread.fetch_add(1);
        }
      }
      (void)t;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(hot.load(), 500);
  EXPECT_EQ(spread.load(), 4000);  // 100 keys x 40 takes each, all within their burst
}

long rss_kib() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0;
  long resident = 0;
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * 4;  // 4 KiB pages on the machines we build for; a bound, not exact
}

TEST(LocalBuckets, MemoryStaysWithinTheDocumentedBound) {
#ifdef MERIDIAN_SANITIZED
  GTEST_SKIP() << "sanitizers change the memory picture";
#endif
  constexpr std::size_t kKeys = 1'000'000;
  constexpr long kBoundKib = kKeys * LocalBuckets::kBytesPerKey / 1024;
  const long before = rss_kib();
  LocalBuckets buckets(kKeys);
  EXPECT_LT(rss_kib() - before, 1024) << "an unused table must cost (almost) nothing";
  const Quota q = per_hour(1);
  std::mt19937_64 rng(11);
  for (std::size_t i = 0; i < 3 * kKeys; ++i)
    buckets.take(rng(), kNow, q);  // three times the bound of distinct keys
  EXPECT_LE(buckets.size(), buckets.capacity());
  EXPECT_GE(buckets.size(), kKeys * 99 / 100);
  EXPECT_LE(rss_kib() - before, kBoundKib + 1024);
}

}  // namespace
}  // namespace meridian::ratelimit
