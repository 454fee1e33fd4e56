#include <cstring>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "meridian/proxy/active_request.hpp"

#include "null_encoder.hpp"

namespace meridian::proxy {
namespace {

using NullSink = test::NullEncoder;

struct PoolTest : ::testing::Test {
  boost::asio::io_context ioc;
  WorkerContext ctx{ioc};
  ActiveRequestPool pool{ctx};
  NullSink sink;
};

TEST_F(PoolTest, AGivenRequestIsTakenAgainWithItsStorage) {
  auto r = pool.take(sink);
  r->in.reserve(1024);
  r->down_head.assign(300, 'h');
  const auto* first = r.get();
  pool.give(std::move(r));
  EXPECT_EQ(pool.free_count(), 1u);
  auto again = pool.take(sink);
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(again->in.capacity(), 1024u);  // the read buffer is reused, not reallocated
  EXPECT_GE(again->down_head.capacity(), 300u);
  EXPECT_FALSE(again->active);
  pool.give(std::move(again));
}

TEST_F(PoolTest, UnreadBytesAreDroppedAndLargeBuffersFreed) {
  auto r = pool.take(sink);
  r->in.reserve(64 * 1024);
  std::memcpy(r->in.tail(), "GET", 3);
  r->in.commit(3);
  r->down_head.assign(100000, 'h');
  pool.give(std::move(r));
  auto again = pool.take(sink);
  EXPECT_TRUE(again->in.empty());
  EXPECT_EQ(again->in.capacity(), 0u);
  EXPECT_LE(again->down_head.capacity(), ActiveRequestPool::kKeepCapacity);
  pool.give(std::move(again));
}

TEST_F(PoolTest, KeepsAtMostKKeep) {
  std::vector<std::unique_ptr<ActiveRequest>> taken;
  for (std::size_t i = 0; i < ActiveRequestPool::kKeep + 10; ++i)
    taken.push_back(pool.take(sink));
  for (auto& r : taken)
    pool.give(std::move(r));
  EXPECT_EQ(pool.free_count(), ActiveRequestPool::kKeep);
}

TEST_F(PoolTest, ResetStartsARequestButKeepsTheConnectionsBytes) {
  auto r = pool.take(sink);
  r->peer_text = "192.0.2.7";
  r->in.reserve(1024);
  std::memcpy(r->in.tail(), "GET / HTTP/1.1\r\n", 16);
  r->in.commit(16);  // a pipelined request already read
  r->has_body = r->close_after = r->response_head_sent = true;
  r->bytes_out = 99;
  r->log_method = "POST";
  r->limit_headers = "RateLimit-Limit: 1\r\n";
  const auto now = net::Clock::now();
  r->reset({}, now);
  EXPECT_EQ(r->peer_text, "192.0.2.7");
  EXPECT_EQ(r->in.size(), 16u);
  EXPECT_FALSE(r->has_body || r->close_after || r->response_head_sent);
  EXPECT_EQ(r->bytes_out, 0u);
  EXPECT_TRUE(r->log_method.empty());
  EXPECT_TRUE(r->limit_headers.empty());
  EXPECT_TRUE(r->active);
  EXPECT_EQ(r->start, now);
  pool.give(std::move(r));
}

}  // namespace
}  // namespace meridian::proxy
