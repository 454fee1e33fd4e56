// The upstream half of one request (docs/architecture.md): picking an endpoint, borrowing a
// pooled connection or dialling one, retrying (docs/http-behaviour.md, retries), writing the
// request head and body up, and reading the response back through the HTTP/1.1 response codec.
//
// It knows nothing of the downstream protocol. The downstream half -- an HTTP/1.1
// connection (H1Session) or an HTTP/2 stream (H2Stream) -- implements ExchangeSink: it
// hands the exchange the serialised request head and the decoded request body, and writes
// the response it is given in its own framing. Both directions stream with backpressure:
// the exchange asks for the next body piece only after the last one was written upstream,
// and reads the upstream again only after the sink delivered the last response piece.
//
// Every handler also holds the upstream connection it was started on (`conn`): a TLS
// stream's operations touch the stream when they complete, even cancelled ones, so it must
// outlive them although drop_connection() lets go of it at once.
//
// Lifetime: owned by the downstream side's request state, which a worker pools and hands
// from connection to connection (ActiveRequestPool); attach() binds it to the sink of the
// request in progress. Every pending operation holds the sink's owner alive through
// ExchangeSink::exchange_keepalive(), and quiescent() tells when none is pending, which is
// when the exchange may pass to another owner or be destroyed. Completions of an abandoned
// attempt are recognised by attempt_ (which only ever grows) and ignored. Thread: the owning
// worker only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/balancing/steering.hpp"
#include "meridian/core/byte_buffer.hpp"
#include "meridian/core/release_storage.hpp"
#include "meridian/geo/client_location.hpp"
#include "meridian/http/h1/parser.hpp"
#include "meridian/http/h2/codec.hpp"
#include "meridian/http/slice_cursor.hpp"
#include "meridian/http/trailer_fields.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/h2_upstream.hpp"
#include "meridian/proxy/upstream_pool.hpp"
#include "meridian/proxy/worker_context.hpp"

namespace meridian::proxy {

class ExchangeSink {
 public:
  // Keeps the downstream owner (and so the exchange) alive while an operation is pending.
  virtual std::shared_ptr<void> exchange_keepalive() = 0;
  // The upstream wants (more) request body: the pieces of the last send_request_body() were
  // written and may be released. Answer with send_request_body() now or when bytes arrive.
  virtual void on_request_body_wanted() = 0;
  // Response bytes to deliver: the head the first time (1xx answers are dropped), then body
  // pieces, decoded; `done` marks the end of the response, after which
  // Exchange::response_trailers() holds the origin's trailer fields (HTTP/2 origins). The
  // views are valid until the sink calls Exchange::response_delivered(), which it does once
  // they are written.
  virtual void on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                                bool done) = 0;
  // The response was delivered in full and the upstream connection is settled (pooled or
  // closed). The exchange is idle again.
  virtual void on_exchange_done() = 0;
  // The exchange failed; the sink answers `status` itself, or closes when it has already
  // sent response bytes. `retry_after`: a 503 that should carry Retry-After.
  virtual void on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) = 0;

 protected:
  ~ExchangeSink() = default;
};

struct ExchangeRequest {
  const balancing::BackendRuntime* backend = nullptr;
  // HTTP/1.1 (request_head()) or HTTP/2 (request_fields()) to the endpoints.
  config::UpstreamProtocol protocol = config::UpstreamProtocol::http1;
  geo::ClientLocation client;  // what GeoIP knows of the client, for steering
  // The client address folded (balancing::client_hash) for shedding; 0 for a backend with
  // one region.
  std::uint64_t client_hash = 0;
  const std::optional<config::Location>* node_location = nullptr;  // node.location
  std::uint32_t retries = 0;
  const config::RetryPolicy* retry = nullptr;  // the route's retry policy (never null)
  bool idempotent = false;
  bool has_body = false;
  bool chunked_body = false;  // the upstream gets the body re-encoded as chunks
  bool head_request = false;  // the response has no body whatever its headers say
  bool upgrade = false;       // a WebSocket handshake: a 101 answer makes the connection a tunnel
  // TLS to the endpoints (backend `tls`): the client context and its settings, or null.
  boost::asio::ssl::context* tls = nullptr;
  const config::UpstreamTls* tls_config = nullptr;
  // The backend's (backend, region) metric series, parallel to backend->regions.
  const std::vector<metrics::SeriesId>* region_series = nullptr;
  // balance ring_hash / maglev: the hash of the backend's hash_key for this request.
  std::uint64_t key_hash = 0;
  // affinity: the endpoint the client's cookie names (and its region), or null. Used for the
  // first attempt while usable; otherwise its region is tried first if eligible.
  const balancing::AffinityEntry* sticky = nullptr;
};

class Exchange final : private net::Deadline, private H2UpstreamStream {
 public:
  // A response starts with a 16 KiB buffer (HAProxy's buffer size): most responses fit,
  // and an exchange in flight or pooled holds no more. One that fills it grows to
  // kResponseBuffer for its next reads (fewer, larger reads for large bodies).
  static constexpr std::size_t kResponseBufferInitial = 16 * 1024;
  static constexpr std::size_t kResponseBuffer = 64 * 1024;  // also bounds a response head
  static constexpr std::uint32_t kMaxResponseFields = 1000;  // in a head, or a trailer section

  explicit Exchange(WorkerContext& worker);
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Binds the exchange to the request of `sink` (and its timeouts to the worker's deadline
  // list) until detach(), which requires an exchange that is neither active nor pending.
  void attach(ExchangeSink& sink);
  void detach();
  // No operation of this exchange is pending: no completion can reach it any more.
  bool quiescent() const { return pending_ops_ == 0; }

  // The upstream request head, serialised by the owner before start(): HTTP/1.1 text, or
  // HTTP/2 fields for a backend with protocol h2 or h2c.
  std::string& request_head() { return head_; }
  http::h2::FieldBlock& request_fields() { return fields_; }
  // The origin's trailer fields, once the sink was given the end of the response (empty
  // when there were none); valid until response_delivered().
  const std::vector<http::Field>& response_trailers() const { return trailers_; }

  void start(const ExchangeRequest& request);
  // The next decoded request body piece (views stay valid until on_request_body_wanted() or
  // on_exchange_done()); `last` when the body ends with it, with the client's trailer fields
  // (or null): they go upstream in the last chunk of a chunked body, or as HTTP/2 trailers.
  void send_request_body(const http::BodySlices& body, bool last,
                         const std::vector<http::Field>* trailers = nullptr);
  // The sink wrote what on_response_data() gave it.
  void response_delivered();
  // After a 101 to a WebSocket handshake (on_exchange_done follows its delivery): the
  // upstream connection, its in-flight count (kept while the tunnel lasts) and the bytes the
  // origin sent after the 101 head. The exchange is idle afterwards.
  struct Upgraded {
    std::shared_ptr<UpstreamConnection> connection;
    balancing::InFlightGuard in_flight;
    ByteBuffer pending;
  };
  Upgraded take_upgraded();
  // The route's whole-request timeout passed before the response began: 504.
  void on_request_timeout();
  // The downstream is gone: drop the upstream connection, make no further callbacks.
  void abort();

  bool active() const { return active_; }
  // The endpoint serving the current attempt, or null.
  const balancing::EndpointState* endpoint() const { return in_flight_.get(); }
  // The backend region (index into BackendRuntime::regions) of the last attempt, or -1 when
  // none was made: the region label of the request's metrics and log line.
  int region_index() const { return region_index_; }
  // The downstream connection is idle for a while: the response buffer goes (the next
  // response allocates it again).
  void release_response_buffer() {
    if (active_ || !quiescent()) return;
    uin_.consume(uin_.size());
    uin_.release_if_empty();
  }
  // Gives back storage an unusually large request left behind (pooled exchanges keep their
  // buffers' capacity from request to request: the response buffer at its initial size,
  // the others up to `keep` bytes each).
  void trim(std::size_t keep) {
    if (active_) return;
    if (uin_.capacity() > kResponseBufferInitial) release_response_buffer();
    release_storage_over(head_, keep);
    release_storage_over(req_bufs_, keep);
  }
  // A new request begins (before start(), or instead of it for a local answer): region and
  // endpoint of the previous one no longer apply.
  void forget_attempts() {
    region_index_ = -1;
    last_endpoint_ = nullptr;
  }
  // The endpoint of the last attempt (kept alive by the pinned snapshot), or null.
  const balancing::EndpointState* last_endpoint() const { return last_endpoint_; }

 private:
  // refused: an HTTP/2 stream the origin did not process (REFUSED_STREAM, or above a
  // GOAWAY's last stream): safe to send again, whatever the method.
  // per_try_timeout: the route's retry.per_try_timeout passed before the response head.
  // status: the origin answered a status the policy retries, and no endpoint was left to
  // retry on (last_status_ is the answer).
  enum class Failure {
    connect,
    connect_timeout,
    reset,
    invalid,
    timeout,
    refused,
    per_try_timeout,
    status
  };

  void dispatch();
  void prefer_sticky_region();
  // A retry is wanted after an attempt failed for `reason`: within the backend's budget it
  // goes out after the policy's backoff (dispatch()); else the client gets `otherwise`.
  void retry(metrics::RetryReason reason, Failure otherwise);
  bool take_retry_budget();
  void release_retry_budget();
  // The origin answered `status`: whether the route's policy retries it (and can).
  // Retries it (true), or leaves the answer to go to the client (false).
  bool retry_status(unsigned status);
  void schedule_retry(metrics::RetryReason reason);
  void on_backoff_done(std::uint64_t attempt);
  // The attempt's deadline: `connect_until` (or none) and the per-try deadline, whichever
  // is first.
  void arm_deadline(net::Clock::time_point connect_until);
  void head_received();
  void note_outcome(bool failed);
  void use_endpoint(const std::shared_ptr<balancing::EndpointState>& endpoint, bool pooled_ok);
  void report_connect_failure();
  void on_connected(std::uint64_t attempt, boost::system::error_code ec);
  void on_tls_handshake(std::uint64_t attempt, boost::system::error_code ec);
  void connection_ready();
  void write_request(const http::BodySlices* body, bool last);
  bool write_pending_body();  // false when no piece waits
  void on_request_written(std::uint64_t attempt, boost::system::error_code ec);
  void read_response();
  void on_response_read(std::uint64_t attempt, boost::system::error_code ec, std::size_t n);
  void deliver(std::size_t head_length);
  void complete();
  void fail(Failure why);
  void report(Failure why);
  void finish();
  void drop_connection();
  void on_deadline() override;

  // -- HTTP/2 to the endpoint (exchange_h2.cpp)
  void use_h2_endpoint(const std::shared_ptr<balancing::EndpointState>& endpoint);
  void h2_submit();
  void h2_deliver();
  void h2_response_delivered();
  void h2_send_body(const http::BodySlices& body, bool last);
  // The request's trailer fields to send after its body (set with the last piece), or null.
  const std::vector<http::Field>* request_trailers_ = nullptr;
  std::string request_last_chunk_;  // the last chunk with them, for an HTTP/1.1 upstream
  http::h2::FieldBlock request_trailer_fields_;  // ... as an HTTP/2 header block
  void h2_head_done(bool end_stream);
  void on_h2_ready() override;
  void on_h2_unprocessed(H2Unprocessed why) override;
  void on_h2_field(http::h2::Block block, std::string_view name, std::string_view value) override;
  void on_h2_block_end(http::h2::Block block, bool end_stream) override;
  void on_h2_data(const std::uint8_t* data, std::size_t n) override;
  void on_h2_end_stream() override;
  void on_h2_closed(std::uint32_t error_code) override;
  http::h2::Pull on_h2_pull(std::uint8_t* buffer, std::size_t max) override;
  void on_h2_later() override;

  WorkerContext& w_;
  ExchangeSink* sink_ = nullptr;
  std::uint8_t pending_ops_ = 0;  // operations started whose completion has not run yet
  ExchangeRequest request_;
  std::string head_;
  bool active_ = false;

  balancing::RegionOrder order_;  // the backend's eligible regions, best first
  std::size_t region_pos_ = 0;    // the region being tried
  int region_index_ = -1;         // see region_index()
  // The affinity cookie's endpoint while the first attempt has not gone out, else null.
  const balancing::EndpointState* sticky_ = nullptr;
  int retry_from_region_ = -1;  // a retry is wanted after an attempt in this region failed
  metrics::RetryReason retry_reason_ = metrics::RetryReason::connect;  // ... and why
  unsigned last_status_ = 0;         // Failure::status: the answer retried
  bool holds_retry_budget_ = false;  // counted in the backend's retries_in_flight
  bool backing_off_ = false;         // backoff_timer_ is pending
  std::optional<boost::asio::steady_timer> backoff_timer_;  // made on the first backoff
  net::Clock::time_point per_try_deadline_ = net::Clock::time_point::max();
  const balancing::EndpointState* last_endpoint_ = nullptr;
  std::int64_t now_ns_ = 0;  // steady time at start(), for ejection checks
  balancing::TriedEndpoints tried_;
  std::uint32_t retries_left_ = 0;
  Failure last_failure_ = Failure::connect;
  balancing::InFlightGuard in_flight_;
  std::shared_ptr<UpstreamConnection> up_;
  std::uint64_t attempt_ = 0;
  bool connecting_ = false;
  bool outcome_noted_ = false;     // outlier detection already counted this attempt
  bool reused_ = false;            // the attempt's connection came from the pool
  bool stale_retry_used_ = false;  // the one free retry after a stale pooled connection

  bool head_pending_ = true;  // head_ not yet written on this attempt
  bool body_sent_ = false;    // body bytes were handed over: the request cannot be replayed
  bool last_given_ = false;   // the sink handed over the end of the body
  bool request_writing_ = false;
  const http::BodySlices* pending_body_ = nullptr;  // given while a write was in flight
  bool pending_last_ = false;
  bool request_written_ = false;        // the whole request reached the upstream socket
  bool response_read_started_ = false;  // this attempt reads its response

  http::ResponseParser resp_;
  ByteBuffer uin_;                     // upstream bytes: response head and body
  std::size_t read_size_ = 0;          // the free space the pending read may fill
  bool grow_response_buffer_ = false;  // the last read filled it: read more at once
  bool response_started_ = false;      // a byte came from the upstream
  bool response_delivering_ = false;
  bool response_delivered_any_ = false;  // the sink was given response data
  bool response_finished_ = false;       // the sink delivered the end of the response
  bool upgraded_ = false;                // a 101 went to the sink; the connection awaits take
  std::size_t pending_consume_ = 0;      // uin_ bytes behind the pieces being delivered
  std::size_t last_body_consumed_ = 0;   // body bytes the codec took in the last deliver()
  http::BodySlices resp_slices_;

  std::vector<boost::asio::const_buffer> req_bufs_;
  char chunk_line_[24] = {};

  // HTTP/2 attempts: the connection and stream, the origin's header blocks as received
  // (name and value spans in h2_store_), and where the request body's framing stands.
  http::h2::FieldBlock fields_;
  std::shared_ptr<H2Upstream> h2_;
  std::shared_ptr<balancing::EndpointState> h2_endpoint_;  // the attempt's endpoint
  std::shared_ptr<void> h2_keep_;        // the sink's owner, while the stream is attached
  std::int32_t h2_id_ = 0;               // 0 until opened, and again once the stream closed
  std::string h2_store_;                 // the header block being received
  std::vector<std::uint32_t> h2_spans_;  // offset, name length, value length per field
  http::ResponseHead h2_head_;
  http::TrailerFields h2_trailers_;
  std::vector<http::Field> trailers_;
  bool h2_head_ready_ = false;   // h2_head_ is complete and not given to the sink yet
  bool h2_ended_ = false;        // the origin's END_STREAM arrived
  bool h2_end_given_ = false;    // the sink was given the end of the response
  bool h2_closed_ = false;       // the stream closed (the connection let it go)
  bool h2_body_wanted_ = false;  // on_h2_later() asks the sink for the next body piece
  const http::BodySlices* h2_body_ = nullptr;  // request body pieces being framed
  http::SliceCursor h2_body_at_;
  bool h2_body_last_ = false;
};

}  // namespace meridian::proxy
