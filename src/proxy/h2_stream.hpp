// One HTTP/2 stream of an H2Session: the HTTP/2 side of one request. The request itself --
// routed, rate-limited, steered, retried, timed out and logged -- is an ActiveRequest, as an
// HTTP/1.1 request is; this stream is its RequestEncoder: the header block comes in through
// an H2RequestBuilder, DATA frames fill a buffer bounded by the stream's receive window, and
// the answer goes out as HEADERS, DATA pulled by the codec (read_response()) and trailers.
//
// Its ActiveRequest comes from the worker's pool like an HTTP/1.1 request's. A stream that
// closes while its exchange still has an operation pending (a client reset mid-connect)
// stays alive, retired, until the exchange is quiescent. Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>

#include "meridian/http/h2/codec.hpp"
#include "meridian/http/h2/message.hpp"
#include "meridian/http/slice_cursor.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/active_request.hpp"

namespace meridian::proxy {

class H2Session;

class H2Stream final : private RequestEncoder, private net::Deadline {
 public:
  H2Stream(H2Session& session, std::int32_t id);
  ~H2Stream() override;
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  std::int32_t id() const { return id_; }

  // -- from the session's codec events
  void on_header(std::string_view name, std::string_view value);
  // The request's header block is complete; `end_stream`: no body follows.
  void on_headers_done(bool end_stream);
  void on_data(const std::uint8_t* data, std::size_t n);
  void on_trailer(std::string_view name, std::string_view value) {
    request_.add_trailer(name, value);
  }
  // The client's END_STREAM, on DATA or (`trailers`) on its trailer section.
  void on_end_stream(bool trailers = false);
  // The codec asks for the next DATA frame's payload.
  http::h2::Pull read_response(std::uint8_t* buf, std::size_t length);
  // A frame ending the stream on our side went out.
  void on_response_sent();
  // The stream closed (answered, reset by either side, or the connection ends).
  void on_closed(std::uint32_t error_code);
  // From H2Session::run_acks: the last response piece was framed.
  void deliver();

  // Nothing can call this stream any more: its exchange has no operation pending (a store
  // answer still due goes to the ActiveRequest, which its pool keeps).
  bool quiescent() const { return rq_ == nullptr || rq_->exchange.quiescent(); }
  bool answered() const { return response_finished_; }
  bool headers_pending() const { return state_ == State::headers; }

 private:
  // request: the header block is in; its ActiveRequest runs (rate limit, exchange).
  enum class State : std::uint8_t { headers, request, replying, done, closed };

  void begin();
  void pump_request_body();
  // Submits the response HEADERS in response_ with or without a body to pull.
  bool submit_head(bool has_body);
  void reset(std::uint32_t error_code);
  // The exchange's last pieces are framed: response_delivered() once the codec returned.
  void queue_delivery();
  const ListenerRuntime& listener() const {
    return snapshot_->listeners[static_cast<std::size_t>(listener_index_)];
  }

  // -- RequestEncoder: the request's answer in HTTP/2 framing
  std::shared_ptr<void> request_keepalive() override;
  void encode_continue() override;
  void encode_head(const http::ResponseHead& head, http::ResponseForwarding fwd, bool end) override;
  void encode_trailers(const std::vector<http::Field>& trailers) override;
  void encode_data(const http::BodySlices& body, bool end) override;
  void encode_local_reply(unsigned status, std::string_view cause, std::string_view extra_headers,
                          bool close) override;
  void send_local_reply() override;
  void reset() override { reset(http::h2::kInternalError); }
  void arm(net::Clock::time_point t) override { expires_at(t); }
  void pull_body() override;
  void release_body() override;
  void response_complete() override;
  void start_tunnel() override { reset(); }  // no WebSocket over HTTP/2 (RFC 8441)

  // -- net::Deadline
  void on_deadline() override;

  H2Session& s_;
  std::int32_t id_;
  // Pinned for the stream's lifetime (routes, limits and backends live in it).
  std::shared_ptr<const Snapshot> snapshot_;
  int listener_index_;
  State state_ = State::headers;
  std::unique_ptr<ActiveRequest> rq_;
  http::H2RequestBuilder& request_;  // rq_'s, reused from stream to stream
  http::h2::FieldBlock& response_;   // the answer's header blocks, the same

  // Request body: bytes in rq_->in not yet acknowledged to the client's window.
  bool end_stream_ = false;          // the client sent END_STREAM
  bool body_wanted_ = false;         // the exchange waits for the next piece
  std::size_t body_given_ = 0;       // rq_->in bytes behind the piece the exchange holds
  std::uint64_t body_received_ = 0;  // for max_request_body_bytes

  // Response: the pieces being framed, and where framing stands in them.
  const http::BodySlices* out_ = nullptr;
  const std::vector<http::Field>* trailers_ = nullptr;  // end the response after out_
  std::string local_text_;                              // a local reply's body
  http::BodySlices local_body_;                         // ... as the one piece to frame
  http::SliceCursor out_at_;
  bool out_done_ = false;          // the pieces end the response
  bool delivery_pending_ = false;  // the exchange waits for response_delivered()
  bool delivery_queued_ = false;   // ... which H2Session::run_acks will call (deliver())
  bool deferred_ = false;          // the codec was told to wait for more (Pull::deferred)
  bool response_finished_ = false;
};

}  // namespace meridian::proxy
