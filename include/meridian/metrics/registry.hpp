// The request-path counters of docs/metrics.md and the catalog of their label sets.
//
// Counting takes no lock and shares no cache line between workers: every worker has its own
// counters (single writer: a plain load and store, no locked instruction), and a scrape sums
// them over workers. prometheus-cpp's own Counter/Histogram types were not used on the hot
// path: their increments are atomic read-modify-writes on one shared value (and its histogram
// takes a mutex per observation in 1.0), which is what per-worker counters avoid; the library
// still writes the exposition (server/metrics_page.cpp).
//
// Label sets are resolved when a snapshot is built (Registry::request_series and friends give
// a series its number once; the same labels always get the same number, so counters survive
// reloads), never by name per request. Storage grows in fixed chunks that never move, so a
// worker can write a series that a reload added while the main thread scrapes.
//
// Threads: Registry methods on the main thread; WorkerCounters' record_* on the owning worker;
// the sums on the main thread (relaxed reads of single-writer counters: a scrape may miss a
// request in flight, never tear a value).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace meridian::metrics {

// meridian_http_request_duration_seconds buckets: 0.5 ms to 10 s, the range a proxy sees
// from a pooled local hop to a slow origin.
inline constexpr std::array<double, 14> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Single-writer increment: no locked instruction, and readers never see a torn value.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// One status class (1xx..9xx: an origin may send any three digits) of one request series.
struct CodeBlock {
  std::array<std::atomic<std::uint64_t>, 100> count{};
};

// meridian_http_requests_total and meridian_http_request_duration_seconds for one
// (listener, route, backend, region), on one worker.
struct RequestSeries {
  // Allocated by the worker on the first status of a class (once per series and class).
  std::array<std::atomic<CodeBlock*>, 9> classes{};
  std::array<std::atomic<std::uint64_t>, kDurationBuckets.size() + 1> buckets{};  // +Inf last
  std::atomic<std::uint64_t> sum_ns{0};
  ~RequestSeries();
};

// Why a retry went out (meridian_upstream_retries_total{reason}).
enum class RetryReason : std::uint8_t { connect, reset, per_try_timeout, status };
inline constexpr std::size_t kRetryReasons = 4;
inline constexpr const char* kRetryReasonNames[kRetryReasons] = {"connect", "reset",
                                                                 "per_try_timeout", "status"};
// meridian_region_selected_total{reason}, indexed by balancing::RegionOrder::Reason.
inline constexpr std::size_t kSelectReasons = 5;
inline constexpr const char* kSelectReasonNames[kSelectReasons] = {"nearest", "failover", "fenced",
                                                                   "overflow", "shed"};

// meridian_upstream_retries_total and meridian_region_selected_total for one (backend,
// region), on one worker.
struct RegionSeries {
  std::array<std::atomic<std::uint64_t>, kRetryReasons> retries{};
  std::array<std::atomic<std::uint64_t>, kSelectReasons> selected{};
};

// meridian_tls_handshakes_total{result}: a client's TLS handshake completed in full, resumed
// a session (ticket or session ID), or did not complete.
enum class TlsHandshake : std::uint8_t { full, resumed, failed };
inline constexpr std::size_t kTlsHandshakeResults = 3;
inline constexpr const char* kTlsHandshakeNames[kTlsHandshakeResults] = {"full", "resumed",
                                                                         "failed"};

// meridian_downstream_connections_active for one listener, on one worker (opened minus
// closed, so each worker's part may be negative only transiently: it is its own count), and
// its TLS handshakes.
struct ListenerSeries {
  std::atomic<std::int64_t> connections{0};
  std::array<std::atomic<std::uint64_t>, kTlsHandshakeResults> tls_handshakes{};
};

using SeriesId = std::uint32_t;

class WorkerCounters {
 public:
  static constexpr std::size_t kChunk = 64;
  static constexpr std::size_t kMaxChunks = 1024;  // 65,536 series of each kind

  // Worker thread. `status` is the code sent; `duration_ns` the request's duration.
  void record_request(SeriesId id, unsigned status, std::int64_t duration_ns);
  void record_retry(SeriesId region, RetryReason reason) {
    bump(region_series(region).retries[static_cast<std::size_t>(reason)]);
  }
  void record_selected(SeriesId region, std::size_t reason) {
    bump(region_series(region).selected[reason]);
  }
  void connection_opened(SeriesId listener);
  void connection_closed(SeriesId listener);
  void record_tls_handshake(SeriesId listener, TlsHandshake result) {
    bump(listener_series(listener).tls_handshakes[static_cast<std::size_t>(result)]);
  }

  RequestSeries& request_series(SeriesId id) { return at(requests_, id); }
  RegionSeries& region_series(SeriesId id) { return at(regions_, id); }
  ListenerSeries& listener_series(SeriesId id) { return at(listeners_, id); }

 private:
  friend class Registry;
  template <class T>
  struct Chunks {
    std::array<std::atomic<std::array<T, kChunk>*>, kMaxChunks> chunk{};
    ~Chunks() {
      for (auto& c : chunk)
        delete c.load();
    }
    void ensure(std::size_t series) {  // main thread, before a snapshot naming them is used
      for (std::size_t i = 0; i * kChunk < series && i < kMaxChunks; ++i) {
        if (chunk[i].load(std::memory_order_relaxed) == nullptr) {
          chunk[i].store(new std::array<T, kChunk>(), std::memory_order_release);
        }
      }
    }
  };
  template <class T>
  static T& at(Chunks<T>& chunks, SeriesId id) {
    return (*chunks.chunk[id / kChunk].load(std::memory_order_acquire))[id % kChunk];
  }

  Chunks<RequestSeries> requests_;
  Chunks<RegionSeries> regions_;
  Chunks<ListenerSeries> listeners_;
};

struct RequestLabels {
  std::string listener, route, backend, region;
};
struct RegionLabels {
  std::string backend, region;
};

// Sums over workers, for a scrape.
struct RequestTotals {
  std::vector<std::pair<unsigned, std::uint64_t>> codes;  // (code, count), count > 0
  std::array<std::uint64_t, kDurationBuckets.size() + 1> buckets{};
  std::uint64_t count = 0;
  double sum_seconds = 0;
};

class Registry {
 public:
  explicit Registry(std::size_t workers);

  // Main thread: the number of a label set, allocated on first use (and storage for it on
  // every worker). Past WorkerCounters' capacity every new label set shares the last number.
  SeriesId request_series(const RequestLabels& labels);
  SeriesId region_series(const RegionLabels& labels);
  SeriesId listener_series(const std::string& listener);

  WorkerCounters& worker(std::size_t i) { return *workers_[i]; }
  std::size_t workers() const { return workers_.size(); }

  // Main thread, for a scrape: every label set seen so far with its totals.
  const std::vector<RequestLabels>& request_labels() const { return request_labels_; }
  const std::vector<RegionLabels>& region_labels() const { return region_labels_; }
  const std::vector<std::string>& listener_labels() const { return listener_labels_; }
  RequestTotals request_totals(SeriesId id) const;
  std::uint64_t retries(SeriesId id, RetryReason reason) const;
  std::uint64_t selected(SeriesId id, std::size_t reason) const;
  std::int64_t connections(SeriesId id) const;
  std::uint64_t tls_handshakes(SeriesId id, TlsHandshake result) const;

 private:
  std::vector<std::unique_ptr<WorkerCounters>> workers_;
  std::vector<RequestLabels> request_labels_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, SeriesId> requests_;
  std::vector<RegionLabels> region_labels_;
  std::map<std::pair<std::string, std::string>, SeriesId> regions_;
  std::vector<std::string> listener_labels_;
  std::map<std::string, SeriesId> listeners_;
};

}  // namespace meridian::metrics
