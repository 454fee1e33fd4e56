// The state of one request in progress (an HTTP/1.1 request on a connection, or an HTTP/2 stream):
// its parser, its exchange with the upstream, the response framing, and what its metrics and log
// line need.
//
// Kept apart from H1Session so that an idle keep-alive connection holds only its socket and
// a few words: a session takes an RequestState from its worker's pool when its socket becomes
// readable and gives it back, read buffer included, when the connection goes idle. A worker
// therefore holds about as many of them as it serves requests at once, whatever the number of
// connections, and the parser's storage and the strings' capacity are reused from request to
// request. Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h1_parser.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

class H1Session;

struct RequestState {
  explicit RequestState(WorkerContext& worker) : exchange(worker) {}

  // Ready for a new request: everything but the reused storage goes back to its default.
  void reset(const http::ParserLimits& limits, net::Clock::time_point now);
  bool complete() const { return !has_body || parser.done(); }
  // Closes the tunnel's upstream connection (if any) and frees its buffer.
  void end_tunnel();

  // Client bytes: request heads, request body, pipelined requests. Kept across reset() (a
  // pipelined request may be in it); empty whenever the request goes back to the pool.
  ByteBuffer in;
  http::RequestParser parser;
  // The connection's client address as text (for X-Forwarded-For and the log), set by the
  // session that takes this state and kept across reset().
  std::string peer_text;
  net::Clock::time_point start{};
  net::Clock::time_point deadline{};  // the route's timeout, once routed

  Exchange exchange;
  ExchangeRequest exchange_request;  // held while the rate limit decides
  bool expect_continue = false;
  bool continue_pending = false;           // the 100 Continue is being written: no other write now
  ratelimit::RouteLimit* limit = nullptr;  // the route's limit (owned by the snapshot), or null
  std::string limit_headers;               // RateLimit-* lines for the response, or empty
  std::string store_key;                   // the bucket's Redis key (scope: global)
  std::uint64_t limit_tag = 0;             // names the store answer it waits for
  // Hands the store's answer to the session waiting for it (defined in h1_session.cpp).
  struct StoreWaiter final : ratelimit::StoreWaiter {
    H1Session* session = nullptr;
    void on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) override;
  } store_waiter;
  ratelimit::KeyBuffer key_buffer{};

  bool has_body = false;
  bool http10 = false;
  bool grpc =
      false;  // a gRPC call (HTTP/2, application/grpc): meridian's answers are gRPC statuses
  bool close_after = false;
  bool body_wanted = false;             // the exchange waits for the next body piece
  std::size_t body_given_consumed = 0;  // client buffer bytes behind the piece the exchange holds
  bool response_head_sent = false;      // a byte went to the client
  bool response_chunked = false;        // the client gets the body re-encoded as chunks

  // Metrics and access log.
  bool active = false;  // begun and not recorded yet
  bool routed = false;  // its head was complete (a vanished client is then a 499)
  const config::Route* route = nullptr;
  const RouteSeries* route_series = nullptr;
  unsigned response_status = 0;
  std::uint64_t bytes_out = 0;
  std::string log_client, log_method, log_target, log_host, log_user_agent, log_referer,
      log_request_id;
  unsigned log_version = 11;

  // A WebSocket handshake, and after its 101 the tunnel: the upstream connection (kept in
  // flight for least_conn), the origin's bytes on their way to the client (the client's go
  // through `in`), and which sides finished sending.
  bool upgrade = false;
  std::shared_ptr<UpstreamConnection> tunnel;
  balancing::InFlightGuard tunnel_in_flight;
  ByteBuffer tunnel_down;
  bool client_eof = false;
  bool origin_eof = false;

  std::string down_head;   // the response head (or local reply) written to the client
  std::string last_chunk;  // a chunked response's end with the origin's trailers
  http::BodySlices body_slices;
  std::vector<boost::asio::const_buffer> write_list;
  char chunk_line[24] = {};
};

// A worker's free RequestStates. take() and give() are a pointer pop and push; at most kKeep
// are kept (a burst of concurrent requests beyond that is freed when it ends).
class RequestStatePool {
 public:
  explicit RequestStatePool(WorkerContext& worker) : w_(worker) {}
  RequestStatePool(const RequestStatePool&) = delete;
  RequestStatePool& operator=(const RequestStatePool&) = delete;

  // A request bound to `sink`; reset() it before use.
  std::unique_ptr<RequestState> take(ExchangeSink& sink);
  // `request`'s exchange must be inactive; one with a completion still pending (only at
  // shutdown) is destroyed instead of kept.
  void give(std::unique_ptr<RequestState> request);

  std::size_t free_count() const { return free_.size(); }

  static constexpr std::size_t kKeep = 256;
  // A pooled request keeps buffers up to this capacity; larger ones (a huge head) are freed.
  static constexpr std::size_t kKeepCapacity = 4096;

 private:
  WorkerContext& w_;
  std::vector<std::unique_ptr<RequestState>> free_;
};

}  // namespace meridian::proxy
