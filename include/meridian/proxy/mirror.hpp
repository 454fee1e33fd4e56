// A copy of a request sent to a route's mirror backend (routes[].mirror, docs/http-behaviour.md,
// mirroring), for shadow traffic: it is fire-and-forget. The original never waits for it, never
// sees its answer, and cannot fail because of it: the copy has its own exchange and upstream
// connection, no retries, the route's timeout, and its answer is read and discarded. Its body
// is a copy taken while the original's body passes (at most kMaxBody bytes; a larger body is
// not mirrored), so the copy goes out once the original's body was read in full.
//
// Lifetime: shared; the ActiveRequest holds it while the original's body is copied, then
// every pending operation of its exchange holds it (exchange_keepalive), so it is freed when
// its exchange settles. Thread: the owning worker only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/snapshot.hpp"
#include "meridian/proxy/worker_context.hpp"

namespace meridian::proxy {

// meridian_mirror_requests_total{result}, node-wide.
struct MirrorCounters {
  std::atomic<std::uint64_t> answered{0};   // the mirror backend answered (any status)
  std::atomic<std::uint64_t> failed{0};     // no answer: no endpoint, connect, reset, timeout
  std::atomic<std::uint64_t> too_large{0};  // the body was over kMaxBody: not mirrored
  std::atomic<std::uint64_t> overflow{0};   // the worker had kMaxInFlight mirrors out already
};
MirrorCounters& mirror_counters();

class MirrorRequest final : public std::enable_shared_from_this<MirrorRequest>,
                            private ExchangeSink,
                            private net::Deadline {
 public:
  static constexpr std::size_t kMaxBody = 64 * 1024;
  // Mirrors per worker, from admission until their answer or failure: a slow or dead mirror
  // backend costs bounded memory and connections; beyond it, copies are dropped (counted as
  // overflow).
  static constexpr std::size_t kMaxInFlight = 256;

  // `snapshot` is pinned for the copy's life (the exchange reads its backend).
  MirrorRequest(WorkerContext& worker, std::shared_ptr<const Snapshot> snapshot);
  ~MirrorRequest() override;

  // The copy's upstream head, written by the caller before start().
  Exchange& exchange() { return exchange_; }
  ExchangeRequest request;

  // Body bytes of the original as they pass; false (and the copy abandoned, counted as
  // too_large) once they exceed kMaxBody.
  bool append_body(std::string_view bytes);
  // Sends the copy; its timeout is `timeout` from now.
  void start(net::Clock::duration timeout);

 private:
  std::shared_ptr<void> exchange_keepalive() override { return shared_from_this(); }
  void on_request_body_wanted() override;
  void on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                        bool done) override;
  void on_exchange_done() override;
  void on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) override;
  void on_deadline() override;
  void on_abort() override;
  void finish(std::atomic<std::uint64_t>& counter);

  WorkerContext& w_;
  std::shared_ptr<const Snapshot> snapshot_;
  Exchange exchange_;
  std::string body_;
  http::BodySlices body_slices_;
  bool body_given_ = false;
  bool finished_ = false;
};

}  // namespace meridian::proxy
