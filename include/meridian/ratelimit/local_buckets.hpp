// The node-wide token buckets of `scope: local`: one GCRA state per (route, key), shared by
// every worker, in a table whose size is bounded by `max_keys` so that a flood of distinct
// client addresses cannot exhaust memory.
//
// Layout: 64 shards, each a fixed-capacity open-addressing hash table (linear probing,
// backward-shift deletion) over an entry array threaded on an LRU list. A key is a 64-bit
// keyed hash of (route, key bytes); two keys colliding on all 64 bits would share a bucket
// (about one chance in 10^7 with a million keys held). A full shard evicts its least
// recently used key, which starts over with a full bucket if it comes back.
//
// Threads: take() may be called by any thread. Each shard has its own mutex, held for one
// probe sequence and a few list writes (~50 ns); there is no lock across shards, so workers
// contend only when they hit the same shard at the same moment. Memory: one mmap'd region of
// at most kBytesPerKey * max_keys bytes (plus rounding to whole shards), whose pages the
// kernel provides only when touched: an unused table costs nothing, the entries grow with the
// keys held, and the index (8 to 16 bytes a key, hashed) is touched early on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "meridian/ratelimit/gcra.hpp"

namespace meridian::ratelimit {

class LocalBuckets {
 public:
  static constexpr std::size_t kShards = 64;
  // The memory bound per key: an entry (key, TAT, LRU links: 24 bytes) plus two to four
  // index slots of 4 bytes (the index is the next power of two above twice the entries).
  static constexpr std::size_t kBytesPerKey = 40;

  // max_keys >= 1; each shard holds max_keys / kShards keys, at least 16.
  explicit LocalBuckets(std::size_t max_keys);
  ~LocalBuckets();
  LocalBuckets(const LocalBuckets&) = delete;
  LocalBuckets& operator=(const LocalBuckets&) = delete;

  // One request against the bucket of `key` (see hash_key) at `now_ns` (steady clock).
  Decision take(std::uint64_t key, std::int64_t now_ns, const Quota& quota);

  // The table key of `bytes` under route identity `route_seed`: keyed with a per-process
  // random seed so that nobody can precompute colliding client keys.
  std::uint64_t hash_key(std::uint64_t route_seed, std::string_view bytes) const;

  std::size_t max_keys() const { return max_keys_; }
  std::size_t capacity() const;  // keys that fit (max_keys rounded to whole shards)
  std::size_t size() const;      // keys held now; locks every shard in turn (admin only)

 private:
  struct Shard;

  std::size_t max_keys_;
  std::uint64_t seed_;
  void* memory_ = nullptr;
  std::size_t memory_bytes_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

// A deterministic 64-bit hash (FNV-1a folded through a splitmix64 finaliser). Used for route
// identities, which must not change between runs.
std::uint64_t hash64(std::string_view bytes, std::uint64_t seed = 0);

}  // namespace meridian::ratelimit
