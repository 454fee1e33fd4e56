// The per-worker counters and their catalog: stable series numbers for label sets, sums over
// workers, status codes and histogram buckets as docs/metrics.md describes them.
#include "meridian/metrics/registry.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace meridian::metrics {
namespace {

constexpr std::int64_t kMs = 1'000'000;

TEST(Registry, SameLabelsSameSeries) {
  Registry r(2);
  const auto a = r.request_series({"public", "api", "b", "eu"});
  const auto b = r.request_series({"public", "api", "b", "us"});
  EXPECT_NE(a, b);
  EXPECT_EQ(r.request_series({"public", "api", "b", "eu"}), a);  // e.g. after a reload
  EXPECT_EQ(r.request_labels().size(), 2u);
  EXPECT_EQ(r.region_series({"b", "eu"}), r.region_series({"b", "eu"}));
  EXPECT_EQ(r.listener_series("public"), r.listener_series("public"));
}

TEST(Registry, SumsCodesAndBucketsOverWorkers) {
  Registry r(2);
  const auto id = r.request_series({"public", "api", "b", "eu"});
  r.worker(0).record_request(id, 200, 3 * kMs);  // bucket le=0.005
  r.worker(1).record_request(id, 200, 3 * kMs);
  r.worker(1).record_request(id, 503, 20 * 1000 * kMs);  // 20 s: +Inf only
  r.worker(0).record_request(id, 418, kMs / 4);          // 0.25 ms: the first bucket
  const auto t = r.request_totals(id);
  ASSERT_EQ(t.codes.size(), 3u);
  EXPECT_EQ(t.codes[0], (std::pair<unsigned, std::uint64_t>{200, 2}));
  EXPECT_EQ(t.codes[1], (std::pair<unsigned, std::uint64_t>{418, 1}));
  EXPECT_EQ(t.codes[2], (std::pair<unsigned, std::uint64_t>{503, 1}));
  EXPECT_EQ(t.count, 4u);
  EXPECT_EQ(t.buckets[0], 1u);                        // <= 0.5 ms
  EXPECT_EQ(t.buckets[3], 2u);                        // (2.5 ms, 5 ms]
  EXPECT_EQ(t.buckets[kDurationBuckets.size()], 1u);  // +Inf
  EXPECT_NEAR(t.sum_seconds, 20.00625, 1e-9);
}

TEST(Registry, BoundaryGoesToItsBucket) {
  Registry r(1);
  const auto id = r.request_series({"l", "r", "b", ""});
  r.worker(0).record_request(id, 200, 10 * kMs);  // exactly 10 ms: le="0.01"
  EXPECT_EQ(r.request_totals(id).buckets[4], 1u);
}

TEST(Registry, SeriesAddedLaterAreUsableAndOldCountsStay) {
  Registry r(1);
  const auto first = r.request_series({"l", "r", "b", ""});
  r.worker(0).record_request(first, 200, kMs);
  std::vector<SeriesId> later;
  for (int i = 0; i < 200; ++i)  // beyond one chunk
    later.push_back(r.request_series({"l", std::to_string(i), "b", ""}));
  r.worker(0).record_request(later.back(), 204, kMs);
  EXPECT_EQ(r.request_totals(first).count, 1u);
  EXPECT_EQ(r.request_totals(later.back()).codes.at(0).first, 204u);
}

TEST(Registry, RetriesSelectionsAndConnections) {
  Registry r(2);
  const auto region = r.region_series({"b", "eu"});
  const auto listener = r.listener_series("public");
  r.worker(0).record_retry(region, RetryReason::connect);
  r.worker(1).record_retry(region, RetryReason::connect);
  r.worker(1).record_retry(region, RetryReason::status);
  r.worker(1).record_selected(region, 2);
  r.worker(0).connection_opened(listener);
  r.worker(1).connection_opened(listener);
  r.worker(1).connection_closed(listener);
  EXPECT_EQ(r.retries(region, RetryReason::connect), 2u);
  EXPECT_EQ(r.retries(region, RetryReason::status), 1u);
  EXPECT_EQ(r.retries(region, RetryReason::reset), 0u);
  EXPECT_EQ(r.selected(region, 2), 1u);
  EXPECT_EQ(r.selected(region, 0), 0u);
  EXPECT_EQ(r.connections(listener), 1);
}

TEST(Registry, TlsHandshakesByResultOverWorkers) {
  Registry r(2);
  const auto listener = r.listener_series("tls");
  r.worker(0).record_tls_handshake(listener, TlsHandshake::full);
  r.worker(1).record_tls_handshake(listener, TlsHandshake::resumed);
  r.worker(1).record_tls_handshake(listener, TlsHandshake::resumed);
  r.worker(0).record_tls_handshake(listener, TlsHandshake::failed);
  EXPECT_EQ(r.tls_handshakes(listener, TlsHandshake::full), 1u);
  EXPECT_EQ(r.tls_handshakes(listener, TlsHandshake::resumed), 2u);
  EXPECT_EQ(r.tls_handshakes(listener, TlsHandshake::failed), 1u);
  EXPECT_EQ(r.tls_handshakes(r.listener_series("plain"), TlsHandshake::full), 0u);
}

TEST(Registry, ScrapeWhileWorkersCount) {
  Registry r(2);
  const auto id = r.request_series({"l", "r", "b", ""});
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < 2; ++w) {
    workers.emplace_back([&r, id, w] {
      for (int i = 0; i < 100'000; ++i)
        r.worker(w).record_request(id, 200 + (i % 3), kMs);
    });
  }
  std::uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    const auto n = r.request_totals(id).count;
    EXPECT_GE(n, last);  // never goes backwards, never tears
    last = n;
  }
  for (auto& t : workers)
    t.join();
  EXPECT_EQ(r.request_totals(id).count, 200'000u);
}

}  // namespace
}  // namespace meridian::metrics
