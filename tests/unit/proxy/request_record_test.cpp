// What a request leaves behind when it ends, beyond metrics and the access log: the span handed
// to the worker's span sink (tracing.propagate: w3c; the seam for an exporter), and a mirror
// copy that never went out released with the request object (routes[].mirror), its worker slot
// given back.
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "meridian/config/loader.hpp"
#include "meridian/metrics/registry.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/mirror.hpp"
#include "meridian/proxy/snapshot.hpp"

#include "null_encoder.hpp"
#include "proxy/request_flow.hpp"

namespace meridian::proxy {
namespace {

using NullEncoder = test::NullEncoder;

struct Spans final : http::SpanSink {
  struct Kept {
    std::string trace_id, span_id, parent_id, route, backend;
    unsigned status;
    bool ordered;
  };
  std::vector<Kept> kept;
  void record(const http::SpanRecord& s) override {
    kept.push_back({std::string(s.trace_id), std::string(s.span_id), std::string(s.parent_id),
                    std::string(s.route), std::string(s.backend), s.status, s.start <= s.end});
  }
};

constexpr const char* kConfig = R"(
admin: {listen: ""}
access_log: {path: off}
tracing: {propagate: w3c}
listeners:
  - {name: public, listen: "127.0.0.1:0", routes: [{name: all, backend: web}]}
backends:
  - {name: web, regions: [{name: r1, location: {lat: 1, lon: 1}, endpoints: [{address: "127.0.0.1:9"}]}]}
)";

struct RecordTest : ::testing::Test {
  boost::asio::io_context ioc;
  WorkerContext ctx{ioc};
  ActiveRequestPool pool{ctx};
  NullEncoder encoder;
  metrics::Registry registry{1};
  std::shared_ptr<const Snapshot> snapshot;

  void SetUp() override {
    auto loaded = config::load_config_string(kConfig, "test.yaml");
    ASSERT_TRUE(loaded.ok());
    std::string error;
    snapshot = Snapshot::build(loaded.config, nullptr, 1, registry, error);
    ASSERT_NE(snapshot, nullptr) << error;
  }
};

TEST_F(RecordTest, AFinishedRequestHandsItsSpanToTheSink) {
  Spans spans;
  ctx.spans = &spans;
  auto rq = pool.take(encoder);
  rq->reset(http::ParserLimits{64 * 1024, 100, 0}, net::Clock::now());
  rq->set_snapshot(snapshot.get(), 0);
  http::RequestHead head;
  head.fields = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  rq->trace.begin(head, ctx.request_ids);
  const auto& route = snapshot->config->listeners[0].routes[0];
  rq->route = &route;
  rq->route_backend = &route.backends[0];
  record_request(ctx, *snapshot, snapshot->listeners[0], *rq, 200);
  ASSERT_EQ(spans.kept.size(), 1u);
  const auto& s = spans.kept[0];
  EXPECT_EQ(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(s.span_id, std::string(rq->trace.span_id()));
  EXPECT_EQ(s.route, "all");
  EXPECT_EQ(s.backend, "web");
  EXPECT_EQ(s.status, 200u);
  EXPECT_TRUE(s.ordered);
  // Recorded once: a second call for the same request adds nothing.
  record_request(ctx, *snapshot, snapshot->listeners[0], *rq, 200);
  EXPECT_EQ(spans.kept.size(), 1u);
  pool.give(std::move(rq));
}

TEST_F(RecordTest, NoSpanForARequestWithoutTraceContext) {
  Spans spans;
  ctx.spans = &spans;
  auto rq = pool.take(encoder);
  rq->reset(http::ParserLimits{64 * 1024, 100, 0}, net::Clock::now());
  rq->set_snapshot(snapshot.get(), 0);
  record_request(ctx, *snapshot, snapshot->listeners[0], *rq, 404);
  EXPECT_TRUE(spans.kept.empty());
  pool.give(std::move(rq));
}

TEST_F(RecordTest, AnUnsentMirrorCopyGoesWithItsRequestAndFreesItsSlot) {
  auto rq = pool.take(encoder);
  rq->mirror = std::make_shared<MirrorRequest>(ctx, snapshot);
  EXPECT_EQ(ctx.mirrors_in_flight, 1u);  // counted from admission, not from sending
  std::weak_ptr<MirrorRequest> copy = rq->mirror;
  pool.give(std::move(rq));  // the request ended before its body was read in full
  EXPECT_TRUE(copy.expired());
  EXPECT_EQ(ctx.mirrors_in_flight, 0u);
}

}  // namespace
}  // namespace meridian::proxy
