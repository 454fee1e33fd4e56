// The fleet-wide buckets of `scope: global`: every node keeps the GCRA state of a bucket in
// one Redis value and updates it with one atomic script call per request (EVALSHA, the
// script loaded on each new connection; Redis's own clock, so nodes whose clocks differ
// still agree; the key expires once its bucket would be full again).
//
// One RedisStore per worker, driven by the worker's io_context through hiredis's asynchronous
// API: hiredis asks for read and write readiness through its event hooks, and Asio waits on
// the socket (posix::stream_descriptor::async_wait) -- no thread ever blocks on Redis.
// Commands are pipelined on one connection; replies come back in order.
//
// Every take() is answered exactly once, on the worker's thread, never from inside take():
// with the script's verdict, or with an error -- at once while there is no connection, when
// the store's `timeout` passes without a reply, or when the connection drops. The caller
// applies `on_error`. A lost connection is re-dialled with exponential backoff (100 ms up to
// 2 s); a connection whose oldest request is unanswered for max(2 s, 20 x timeout) is taken
// for hung (a stopped Redis keeps the TCP connection open) and re-dialled.
//
// Thread: the owning worker only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "meridian/config/config.hpp"
#include "meridian/ratelimit/gcra.hpp"

namespace meridian::ratelimit {

// The store's answer to one take().
struct StoreOutcome {
  bool ok = false;            // false: no verdict (down, timeout, error); apply on_error
  bool allowed = false;       // with ok: the script's verdict
  std::int64_t ahead_ns = 0;  // with ok: see gcra_decision()
  const char* error = "";     // without ok: why, for the log
};

class StoreWaiter {
 public:
  // `tag` is the value given to take(), so that a waiter can recognise a stale answer.
  virtual void on_store_outcome(std::uint64_t tag, const StoreOutcome& outcome) = 0;

 protected:
  ~StoreWaiter() = default;
};

class RedisStore {
 public:
  // `connected_count` (may be null) counts this store while its connection is up.
  RedisStore(boost::asio::io_context& ioc, const config::RateLimitStore& config,
             std::atomic<std::uint32_t>* connected_count = nullptr);
  ~RedisStore();
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // One request against the bucket `key`. `keepalive` holds the waiter alive until it is
  // answered.
  void take(const std::string& key, const Quota& quota, StoreWaiter& waiter,
            std::shared_ptr<void> keepalive, std::uint64_t tag);

  // Whether this store was built from `config` (a reload that changes it builds a new one).
  bool serves(const config::RateLimitStore& config) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace meridian::ratelimit
