#include "meridian/metrics/registry.hpp"

#include <algorithm>

namespace meridian::metrics {

namespace {

constexpr SeriesId kLastId = WorkerCounters::kChunk * WorkerCounters::kMaxChunks - 1;

// The bucket of a duration: the first upper bound it does not exceed; +Inf last.
std::size_t bucket_of(std::int64_t duration_ns) {
  const double seconds = static_cast<double>(duration_ns) / 1e9;
  std::size_t i = 0;
  while (i < kDurationBuckets.size() && seconds > kDurationBuckets[i])
    ++i;
  return i;
}

template <class Map, class Key, class Labels, class Make>
SeriesId lookup(Map& map, const Key& key, std::vector<Labels>& labels, Make make) {
  if (auto it = map.find(key); it != map.end()) return it->second;
  if (labels.size() > kLastId) return kLastId;  // full: shares the last series
  const auto id = static_cast<SeriesId>(labels.size());
  labels.push_back(make());
  map.emplace(key, id);
  return id;
}

}  // namespace

RequestSeries::~RequestSeries() {
  for (auto& c : classes)
    delete c.load();
}

void WorkerCounters::record_request(SeriesId id, unsigned status, std::int64_t duration_ns) {
  RequestSeries& s = request_series(id);
  if (status >= 100 && status <= 999) {
    auto& slot = s.classes[status / 100 - 1];
    CodeBlock* block = slot.load(std::memory_order_relaxed);
    if (block == nullptr) {
      block = new CodeBlock();  // once per series and status class, on this worker
      slot.store(block, std::memory_order_release);
    }
    bump(block->count[status % 100]);
  }
  bump(s.buckets[bucket_of(duration_ns)]);
  bump(s.sum_ns, static_cast<std::uint64_t>(std::max<std::int64_t>(duration_ns, 0)));
}

void WorkerCounters::connection_opened(SeriesId listener) {
  auto& c = listener_series(listener).connections;
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void WorkerCounters::connection_closed(SeriesId listener) {
  auto& c = listener_series(listener).connections;
  c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

Registry::Registry(std::size_t workers) {
  for (std::size_t i = 0; i < workers; ++i)
    workers_.push_back(std::make_unique<WorkerCounters>());
}

SeriesId Registry::request_series(const RequestLabels& l) {
  const SeriesId id = lookup(requests_, std::make_tuple(l.listener, l.route, l.backend, l.region),
                             request_labels_, [&] { return l; });
  for (auto& w : workers_)
    w->requests_.ensure(request_labels_.size());
  return id;
}

SeriesId Registry::region_series(const RegionLabels& l) {
  const SeriesId id =
      lookup(regions_, std::make_pair(l.backend, l.region), region_labels_, [&] { return l; });
  for (auto& w : workers_)
    w->regions_.ensure(region_labels_.size());
  return id;
}

SeriesId Registry::listener_series(const std::string& listener) {
  const SeriesId id = lookup(listeners_, listener, listener_labels_, [&] { return listener; });
  for (auto& w : workers_)
    w->listeners_.ensure(listener_labels_.size());
  return id;
}

RequestTotals Registry::request_totals(SeriesId id) const {
  RequestTotals t;
  std::array<std::uint64_t, 900> codes{};
  std::uint64_t sum_ns = 0;
  for (const auto& w : workers_) {
    const RequestSeries& s = w->request_series(id);
    for (std::size_t c = 0; c < s.classes.size(); ++c) {
      const CodeBlock* block = s.classes[c].load(std::memory_order_acquire);
      if (block == nullptr) continue;
      for (std::size_t k = 0; k < block->count.size(); ++k)
        codes[c * 100 + k] += block->count[k].load(std::memory_order_relaxed);
    }
    for (std::size_t b = 0; b < s.buckets.size(); ++b)
      t.buckets[b] += s.buckets[b].load(std::memory_order_relaxed);
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] != 0) t.codes.emplace_back(static_cast<unsigned>(i + 100), codes[i]);
  }
  for (const auto b : t.buckets)
    t.count += b;
  t.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return t;
}

std::uint64_t Registry::retries(SeriesId id, RetryReason reason) const {
  std::uint64_t n = 0;
  for (const auto& w : workers_)
    n += w->region_series(id).retries[static_cast<std::size_t>(reason)].load(
        std::memory_order_relaxed);
  return n;
}

std::uint64_t Registry::selected(SeriesId id, std::size_t reason) const {
  std::uint64_t n = 0;
  for (const auto& w : workers_)
    n += w->region_series(id).selected[reason].load(std::memory_order_relaxed);
  return n;
}

std::int64_t Registry::connections(SeriesId id) const {
  std::int64_t n = 0;
  for (const auto& w : workers_)
    n += w->listener_series(id).connections.load(std::memory_order_relaxed);
  return n;
}

std::uint64_t Registry::tls_handshakes(SeriesId id, TlsHandshake result) const {
  std::uint64_t n = 0;
  for (const auto& w : workers_) {
    n += w->listener_series(id).tls_handshakes[static_cast<std::size_t>(result)].load(
        std::memory_order_relaxed);
  }
  return n;
}

}  // namespace meridian::metrics
