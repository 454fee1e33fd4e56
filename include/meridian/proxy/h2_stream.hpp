// One HTTP/2 stream of an H2Session: one request, handled as an HTTP/1.1 request is --
// routed, rate-limited, steered, retried and logged by request_flow.hpp and an Exchange --
// with HTTP/2 framing on the client side: the header block comes in through an
// H2RequestBuilder, DATA frames fill a buffer bounded by the stream's receive window, and
// the response goes out as HEADERS and DATA frames pulled by nghttp2 (data_source()).
//
// Its RequestState comes from the worker's pool like an HTTP/1.1 request's. A stream that
// closes while its exchange still has an operation pending (a client reset mid-connect)
// stays alive, retired, until the exchange is quiescent. Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/h2/message.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/request_state.hpp"
#include "meridian/ratelimit/redis_store.hpp"

namespace meridian::proxy {

class H2Session;

class H2Stream final : private ExchangeSink, private ratelimit::StoreWaiter, private net::Deadline {
 public:
  H2Stream(H2Session& session, std::int32_t id);
  ~H2Stream() override;
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  std::int32_t id() const { return id_; }

  // -- from the session's nghttp2 callbacks
  void on_header(std::string_view name, std::string_view value);
  // The request's header block is complete; `end_stream`: no body follows.
  void on_headers_done(bool end_stream);
  void on_data(const std::uint8_t* data, std::size_t n);
  void on_end_stream();
  // The codec asks for the next DATA frame's payload.
  http::h2::Pull read_response(std::uint8_t* buf, std::size_t length);
  // A frame ending the stream on our side went out.
  void on_response_sent();
  // The stream closed (answered, reset by either side, or the connection ends).
  void on_closed(std::uint32_t error_code);
  // From H2Session::run_acks: the last response piece was framed.
  void deliver();

  // Nothing can call this stream any more: its exchange has no operation pending and the
  // rate limit store owes it no answer.
  bool quiescent() const {
    return !store_pending_ && (rq_ == nullptr || rq_->exchange.quiescent());
  }
  bool answered() const { return response_finished_; }
  bool headers_pending() const { return state_ == State::headers; }

 private:
  enum class State : std::uint8_t { headers, limiting, exchange, replying, done, closed };

  void begin();
  void start_exchange();
  void on_rate_limit_decision(const ratelimit::Decision& decision);
  void pump_request_body();
  // A response meridian gives itself, ending the stream.
  void reply(unsigned status, std::string_view cause, std::string_view extra_headers = {});
  // Submits the response HEADERS in response_ with or without a body to pull.
  bool submit_head(bool has_body);
  void reset(std::uint32_t error_code);
  // The exchange's last pieces are framed: response_delivered() once nghttp2 returned.
  void queue_delivery();
  void record(unsigned status);
  bool request_complete() const { return end_stream_; }
  const ListenerRuntime& listener() const {
    return snapshot_->listeners[static_cast<std::size_t>(listener_index_)];
  }

  // -- ExchangeSink
  std::shared_ptr<void> exchange_keepalive() override;
  void on_request_body_wanted() override;
  void on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                        bool done) override;
  void on_exchange_done() override;
  void on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) override;

  // -- ratelimit::StoreWaiter
  void on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) override;

  // -- net::Deadline
  void on_deadline() override;

  H2Session& s_;
  std::int32_t id_;
  // Pinned for the stream's lifetime (routes, limits and backends live in it).
  std::shared_ptr<const Snapshot> snapshot_;
  int listener_index_;
  State state_ = State::headers;
  std::unique_ptr<RequestState> rq_;
  http::H2RequestBuilder request_;
  http::h2::FieldBlock response_;

  bool store_pending_ = false;  // the store will call on_store_outcome(store_tag_)
  std::uint64_t store_tag_ = 0;

  // Request body: bytes in rq_->in not yet acknowledged to the client's window.
  bool end_stream_ = false;          // the client sent END_STREAM
  bool body_wanted_ = false;         // the exchange waits for the next piece
  std::size_t body_given_ = 0;       // rq_->in bytes behind the piece the exchange holds
  std::uint64_t body_received_ = 0;  // for max_request_body_bytes

  // Response: the pieces being framed, and where framing stands in them.
  const http::BodySlices* out_ = nullptr;
  std::string local_text_;       // a local reply's body
  http::BodySlices local_body_;  // ... as the one piece to frame
  std::size_t out_slice_ = 0;
  std::size_t out_offset_ = 0;
  bool out_done_ = false;          // the pieces end the response
  bool delivery_pending_ = false;  // the exchange waits for response_delivered()
  bool delivery_queued_ = false;   // ... which H2Session::run_acks will call (deliver())
  bool deferred_ = false;          // the codec was told to wait for more (Pull::deferred)
  bool response_finished_ = false;
};

}  // namespace meridian::proxy
