#include "meridian/ratelimit/gcra.hpp"

#include <algorithm>
#include <chrono>

namespace meridian::ratelimit {

namespace {

constexpr std::int64_t kSecondNs = 1'000'000'000;

std::uint64_t ceil_div(std::int64_t a, std::int64_t b) {
  if (a <= 0) return 0;
  return static_cast<std::uint64_t>((a + b - 1) / b);
}

}  // namespace

Quota Quota::of(const config::RateLimit& limit) {
  Quota q;
  const std::int64_t per_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(limit.rate.per).count();
  const auto tokens = static_cast<std::int64_t>(std::max<std::uint64_t>(limit.rate.tokens, 1));
  q.interval_ns = std::max<std::int64_t>(1, per_ns / tokens);
  q.burst = std::max<std::uint64_t>(limit.burst, 1);
  constexpr std::int64_t kMaxCapacity = std::int64_t{1} << 61;
  q.capacity_ns = q.burst > static_cast<std::uint64_t>(kMaxCapacity / q.interval_ns)
                      ? kMaxCapacity
                      : static_cast<std::int64_t>(q.burst) * q.interval_ns;
  return q;
}

Decision gcra_decision(bool allowed, std::int64_t ahead_ns, const Quota& quota) {
  Decision d;
  d.allowed = allowed;
  d.limit = quota.burst;
  d.reset_s = ceil_div(ahead_ns, kSecondNs);
  if (allowed) {
    const std::uint64_t used = ceil_div(ahead_ns, quota.interval_ns);
    d.remaining = used >= quota.burst ? 0 : quota.burst - used;
  } else {
    // A token is there when TAT + interval - now <= capacity.
    d.retry_after_s = std::max<std::uint64_t>(
        1, ceil_div(ahead_ns + quota.interval_ns - quota.capacity_ns, kSecondNs));
  }
  return d;
}

Decision gcra_take(std::int64_t& tat, std::int64_t now_ns, const Quota& quota) {
  // TAT never runs more than capacity ahead under one quota; after a reload that shrank the
  // capacity it may, and is clamped (and kept clamped, even on a refusal) so that the client
  // waits at most one new bucket's time.
  tat = std::min(tat, now_ns + quota.capacity_ns);
  const std::int64_t start = std::max(tat, now_ns);
  const std::int64_t next = start + quota.interval_ns;
  if (next - now_ns > quota.capacity_ns) return gcra_decision(false, start - now_ns, quota);
  tat = next;
  return gcra_decision(true, next - now_ns, quota);
}

Decision gcra_take(std::atomic<std::int64_t>& tat, std::int64_t now_ns, const Quota& quota) {
  std::int64_t current = tat.load(std::memory_order_relaxed);
  while (true) {
    std::int64_t updated = current;
    const Decision d = gcra_take(updated, now_ns, quota);
    if (!d.allowed) {
      // A refusal writes only a clamp (see above), and only if nobody moved TAT meanwhile.
      if (updated != current) tat.compare_exchange_strong(current, updated);
      return d;
    }
    if (tat.compare_exchange_weak(current, updated, std::memory_order_relaxed)) return d;
  }
}

}  // namespace meridian::ratelimit
