// One request in progress, whatever the downstream protocol (an HTTP/1.1 request on a
// connection, or an HTTP/2 stream) -- the proxy's request object, as Envoy's ActiveStream or
// h2o's h2o_req_t. Its life is written here once (active_request.cpp): admission (routing,
// the client address, the upstream head), the rate limit and its wait for the store, the
// exchange with the origin (it is the exchange's sink), the route timeout, meridian's own
// answers, and the request's metrics and access log line. The protocol's side of it -- the
// HTTP/1.1 connection (H1Session) or the HTTP/2 stream (H2Stream) -- implements
// RequestEncoder: it puts the answer on the wire in its own framing and feeds the request
// body.
//
// Kept apart from the sessions so that an idle keep-alive connection holds only its socket and
// a few words: a session takes an ActiveRequest from its worker's pool when its socket becomes
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
#include <boost/asio/ip/address.hpp>

#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/parser.hpp"
#include "meridian/http/h2/message.hpp"
#include "meridian/http/trace_context.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

class MirrorRequest;

// What a request's connection contributes to its handling.
struct Downstream {
  WorkerContext& w;
  const Snapshot& snapshot;
  const ListenerRuntime& listener;
  boost::asio::ip::address peer;  // from accept(2), or the PROXY header's source
  bool proxied_source = false;    // peer came from a PROXY header: X-Forwarded-For is not consulted
  bool https = false;             // X-Forwarded-Proto
};

// The downstream protocol's side of a request: what the request object asks of the HTTP/1.1
// connection or the HTTP/2 stream that carries it.
class RequestEncoder {
 public:
  // Keeps the connection (and so the request) alive while an operation is pending.
  virtual std::shared_ptr<void> request_keepalive() = 0;
  // The body is welcome (100 Continue); ActiveRequest::continue_sent() once it is on its way.
  virtual void encode_continue() = 0;
  // The origin's response head, with meridian's part of the header rules in `fwd` (the
  // protocol adds its framing); `end`: nothing follows it.
  virtual void encode_head(const http::ResponseHead& head, http::ResponseForwarding fwd,
                           bool end) = 0;
  // The trailer fields that end the response, before its last encode_data().
  virtual void encode_trailers(const std::vector<http::Field>& trailers) = 0;
  // Response body pieces (after encode_head); `end` with the last. Calls
  // ActiveRequest::data_encoded() once they are written (the views are released then).
  virtual void encode_data(const http::BodySlices& body, bool end) = 0;
  // meridian's own answer, made ready (its size in bytes_out) but not sent yet;
  // `close`: the client's connection cannot carry another request after it (HTTP/1.1).
  virtual void encode_local_reply(unsigned status, std::string_view cause,
                                  std::string_view extra_headers, bool close) = 0;
  // Sends the answer of encode_local_reply() (the request has recorded it by then, so that
  // the metrics count it before the client can see it).
  virtual void send_local_reply() = 0;
  // Cuts a response already begun: HTTP/1.1 closes the connection, HTTP/2 resets the stream.
  virtual void reset() = 0;
  // The request's timer now runs to `t`; ActiveRequest::on_deadline() when it passes.
  virtual void arm(net::Clock::time_point t) = 0;
  // The exchange wants the next request body piece: ActiveRequest::send_body() with it.
  virtual void pull_body() = 0;
  // The exchange let go of the body piece it held (finished or failed).
  virtual void release_body() = 0;
  // The response went out whole: what comes next is the connection's business.
  virtual void response_complete() = 0;
  // A WebSocket handshake succeeded (HTTP/1.1 only): the connection becomes a tunnel.
  virtual void start_tunnel() = 0;

 protected:
  ~RequestEncoder() = default;
};

class ActiveRequest final : private ExchangeSink, private ratelimit::StoreWaiter {
 public:
  explicit ActiveRequest(WorkerContext& worker) : exchange(worker), w_(worker) {}
  ActiveRequest(const ActiveRequest&) = delete;
  ActiveRequest& operator=(const ActiveRequest&) = delete;

  // Ready for a new request: everything but the reused storage goes back to its default.
  void reset(const http::ParserLimits& limits, net::Clock::time_point now);
  // The whole request is in: no body, or its end (HTTP/1.1: the parser's; HTTP/2: END_STREAM).
  bool complete() const { return !has_body || body_done || parser.done(); }
  // Closes the tunnel's upstream connection (if any) and frees its buffer.
  void end_tunnel();

  // -- the request's life
  // Where the request stands, for the encoder's own decisions.
  enum class Phase : std::uint8_t { head, limiting, exchange, replying, done };
  Phase phase() const { return phase_; }
  // A complete request head arrived on `d`; the first `head_bytes` of `in` hold it (they are
  // consumed once it is admitted: the head's views die then). Routes it, applies the rate
  // limit (waiting for the store when its scope is global) and starts the exchange, or
  // answers itself.
  void begin(const Downstream& d, const http::RequestHead& head, std::size_t head_bytes = 0);
  // The 100 Continue of encode_continue() is written: the exchange starts.
  void continue_sent();
  // The next request body piece for the exchange (views valid until the next pull_body()
  // or release_body()), and with the last one the client's trailer fields, if any.
  void send_body(const http::BodySlices& body, bool last,
                 const std::vector<http::Field>* trailers = nullptr) {
    if (mirror) copy_to_mirror(body, last);
    exchange.send_request_body(body, last, trailers);
  }
  // The pieces of the last encode_data() (or head) are written.
  void data_encoded() { exchange.response_delivered(); }
  // meridian answers `status` itself (recorded now), ending the request.
  void reply(unsigned status, std::string_view cause, std::string_view extra_headers = {},
             bool close = false);
  // The request's timer passed (see RequestEncoder::arm): the route timeout while the rate
  // limit or the exchange runs. False when the request is not in either (the encoder's own
  // timeouts apply).
  bool on_deadline(net::Clock::time_point now);
  // Counts the request in the metrics and writes its access log line, once.
  void record(unsigned status);
  // The encoder this request answers through (the pool's take() binds it).
  void bind(RequestEncoder& encoder) { encoder_ = &encoder; }
  // The configuration the request is served under (pinned by the encoder's owner), before
  // begin() or reply().
  void set_snapshot(const Snapshot* snapshot, int listener_index) {
    snapshot_ = snapshot;
    listener_index_ = listener_index;
  }
  ExchangeSink& sink() { return *this; }

  // Client bytes: request heads, request body, pipelined requests. Kept across reset() (a
  // pipelined request may be in it); empty whenever the request goes back to the pool.
  ByteBuffer in;
  http::RequestParser parser;
  // An HTTP/2 stream's request header block, and its answer's header blocks on their way to
  // nghttp2 (which copies them): kept here so that their storage is reused from stream to
  // stream instead of growing anew for each.
  http::H2RequestBuilder h2_request;
  http::h2::FieldBlock h2_fields;
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
  bool store_pending = false;              // the store will call on_store_outcome()
  ratelimit::KeyBuffer key_buffer{};

  bool has_body = false;
  bool body_done = false;  // an HTTP/2 request's END_STREAM arrived
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
  const config::RouteBackend* route_backend = nullptr;  // the route's backend it went to
  const RouteSeries* route_series = nullptr;
  http::TraceContext trace;  // tracing.propagate: w3c
  // The backend's affinity (null without), the endpoint id the client's cookie named (0:
  // none), whether the cookie gets `Secure` (a TLS listener), and the Set-Cookie line of the
  // answer when it goes to another endpoint.
  const config::Affinity* affinity = nullptr;
  std::uint64_t affinity_id = 0;
  bool affinity_secure = false;
  std::string affinity_line;
  // routes[].mirror: the copy of this request, while its body is being copied (null
  // otherwise), and the route's timeout it gets when it goes.
  std::shared_ptr<MirrorRequest> mirror;
  net::Clock::duration mirror_timeout{};
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

 private:
  // -- ExchangeSink
  std::shared_ptr<void> exchange_keepalive() override { return encoder_->request_keepalive(); }
  void on_request_body_wanted() override { encoder_->pull_body(); }
  void on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                        bool done) override;
  void on_exchange_done() override;
  void on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) override;
  // -- ratelimit::StoreWaiter
  void on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) override;

  void on_rate_limit_decision(const ratelimit::Decision& decision);
  void copy_to_mirror(const http::BodySlices& body, bool last);
  void start_exchange();
  const ListenerRuntime& listener() const {
    return snapshot_->listeners[static_cast<std::size_t>(listener_index_)];
  }

  WorkerContext& w_;
  RequestEncoder* encoder_ = nullptr;
  const Snapshot* snapshot_ = nullptr;  // pinned by the encoder's owner for the request
  int listener_index_ = -1;
  Phase phase_ = Phase::head;
};

// A worker's free ActiveRequests. take() and give() are a pointer pop and push; at most kKeep
// are kept (a burst of concurrent requests beyond that is freed when it ends).
class ActiveRequestPool {
 public:
  explicit ActiveRequestPool(WorkerContext& worker) : w_(worker) {}
  ActiveRequestPool(const ActiveRequestPool&) = delete;
  ActiveRequestPool& operator=(const ActiveRequestPool&) = delete;

  // A request answering through `encoder`; bind() its snapshot and reset() it before use.
  std::unique_ptr<ActiveRequest> take(RequestEncoder& encoder);
  // `request`'s exchange must be inactive; one with a completion still pending (only at
  // shutdown) is destroyed instead of kept.
  void give(std::unique_ptr<ActiveRequest> request);

  std::size_t free_count() const { return free_.size(); }

  static constexpr std::size_t kKeep = 256;
  // A pooled request keeps buffers up to this capacity; larger ones (a huge head) are freed.
  static constexpr std::size_t kKeepCapacity = 4096;

 private:
  WorkerContext& w_;
  std::vector<std::unique_ptr<ActiveRequest>> free_;
};

}  // namespace meridian::proxy
