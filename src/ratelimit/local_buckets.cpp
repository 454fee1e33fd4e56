#include "meridian/ratelimit/local_buckets.hpp"

#include <algorithm>
#include <bit>
#include <mutex>
#include <new>
#include <random>
#include <sys/mman.h>

#include "meridian/core/splitmix.hpp"

namespace meridian::ratelimit {

namespace {

constexpr std::uint32_t kNil = 0xffffffffu;
constexpr std::size_t kMinPerShard = 16;
constexpr unsigned kShardBits = 6;  // kShards = 64
static_assert((std::size_t{1} << kShardBits) == LocalBuckets::kShards);

struct Entry {
  std::uint64_t key;
  std::int64_t tat;  // 0 = a full bucket
  std::uint32_t prev;
  std::uint32_t next;
};
static_assert(sizeof(Entry) == 24);

}  // namespace

std::uint64_t hash64(std::string_view bytes, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return splitmix64(h ^ bytes.size());
}

// One shard: `capacity` entries on an LRU list (head = most recent) and an open-addressing
// index of 2..4 x capacity slots holding entry number + 1 (0 = empty). Guarded by `mutex`.
struct LocalBuckets::Shard {
  alignas(64) std::mutex mutex;
  Entry* entries = nullptr;
  std::uint32_t* index = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t mask = 0;  // index slots - 1
  std::uint32_t used = 0;  // entries handed out so far (they are never returned)
  std::uint32_t head = kNil;
  std::uint32_t tail = kNil;

  std::uint32_t home(std::uint64_t key) const { return static_cast<std::uint32_t>(key) & mask; }

  void unlink(std::uint32_t n) {
    Entry& e = entries[n];
    if (e.prev != kNil)
      entries[e.prev].next = e.next;
    else
      head = e.next;
    if (e.next != kNil)
      entries[e.next].prev = e.prev;
    else
      tail = e.prev;
  }
  void push_front(std::uint32_t n) {
    Entry& e = entries[n];
    e.prev = kNil;
    e.next = head;
    if (head != kNil) entries[head].prev = n;
    head = n;
    if (tail == kNil) tail = n;
  }

  // The index position holding `key`, or of the empty slot that ends its probe sequence.
  std::uint32_t probe(std::uint64_t key) const {
    std::uint32_t pos = home(key);
    while (index[pos] != 0 && entries[index[pos] - 1].key != key)
      pos = (pos + 1) & mask;
    return pos;
  }

  // Empties index slot `i` and moves later members of its cluster back so that every key
  // stays reachable from its home without tombstones (Knuth 6.4, algorithm R).
  void erase_at(std::uint32_t i) {
    std::uint32_t j = i;
    while (true) {
      j = (j + 1) & mask;
      if (index[j] == 0) break;
      const std::uint32_t k = home(entries[index[j] - 1].key);
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (!stays) {
        index[i] = index[j];
        i = j;
      }
    }
    index[i] = 0;
  }

  // The entry of `key`, created (evicting the least recently used one when full) if absent,
  // and made the most recent.
  Entry& find_or_insert(std::uint64_t key) {
    std::uint32_t pos = probe(key);
    if (index[pos] != 0) {
      const std::uint32_t n = index[pos] - 1;
      if (head != n) {
        unlink(n);
        push_front(n);
      }
      return entries[n];
    }
    std::uint32_t n;
    if (used < capacity) {
      n = used++;
    } else {
      n = tail;
      unlink(n);
      erase_at(probe(entries[n].key));
      pos = probe(key);  // the erase may have moved the slot that ends key's probe
    }
    entries[n].key = key;
    entries[n].tat = 0;
    push_front(n);
    index[pos] = n + 1;
    return entries[n];
  }
};

LocalBuckets::LocalBuckets(std::size_t max_keys)
    : max_keys_(std::max<std::size_t>(max_keys, 1)),
      seed_(splitmix64((static_cast<std::uint64_t>(std::random_device{}()) << 32) ^
                       std::random_device{}())),
      shards_(std::make_unique<Shard[]>(kShards)) {
  const std::size_t per_shard = std::max(kMinPerShard, (max_keys_ + kShards - 1) / kShards);
  const std::size_t index_slots = std::bit_ceil(per_shard * 2);
  const std::size_t shard_bytes = per_shard * sizeof(Entry) + index_slots * sizeof(std::uint32_t);
  memory_bytes_ = shard_bytes * kShards;
  // Anonymous memory is zero and costs nothing until touched: RSS follows the keys held.
  memory_ = ::mmap(nullptr, memory_bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory_ == MAP_FAILED) {
    memory_ = nullptr;
    throw std::bad_alloc();
  }
  auto* base = static_cast<unsigned char*>(memory_);
  for (std::size_t i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    unsigned char* p = base + i * shard_bytes;
    s.entries = reinterpret_cast<Entry*>(p);
    s.index = reinterpret_cast<std::uint32_t*>(p + per_shard * sizeof(Entry));
    s.capacity = static_cast<std::uint32_t>(per_shard);
    s.mask = static_cast<std::uint32_t>(index_slots - 1);
  }
}

LocalBuckets::~LocalBuckets() {
  if (memory_ != nullptr) ::munmap(memory_, memory_bytes_);
}

std::uint64_t LocalBuckets::hash_key(std::uint64_t route_seed, std::string_view bytes) const {
  return hash64(bytes, seed_ ^ splitmix64(route_seed));
}

Decision LocalBuckets::take(std::uint64_t key, std::int64_t now_ns, const Quota& quota) {
  Shard& s = shards_[key >> (64 - kShardBits)];
  std::lock_guard lock(s.mutex);
  return gcra_take(s.find_or_insert(key).tat, now_ns, quota);
}

std::size_t LocalBuckets::capacity() const {
  return static_cast<std::size_t>(shards_[0].capacity) * kShards;
}

std::size_t LocalBuckets::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].used;
  }
  return n;
}

}  // namespace meridian::ratelimit
