#include "proxy/h2_stream.hpp"

#include <charconv>
#include <cstring>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/grpc.hpp"
#include "meridian/proxy/h2_session.hpp"

namespace meridian::proxy {

namespace {

// What a header block weighs in the access log's byte count: as much as its HTTP/1.1 text.
std::uint64_t block_bytes(const http::h2::FieldBlock& b) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < b.size(); ++i)
    n += b.name(i).size() + b.value(i).size() + 4;
  return n;
}

}  // namespace

H2Stream::H2Stream(H2Session& session, std::int32_t id)
    : s_(session),
      id_(id),
      snapshot_(session.snapshot()),
      listener_index_(session.listener_index()),
      rq_(session.worker().requests->take(*this)),
      request_(rq_->h2_request),
      response_(rq_->h2_fields) {
  auto& w = s_.worker();
  const auto& limits = snapshot_->config->limits;
  const auto now = net::Clock::now();
  response_.clear();
  rq_->set_snapshot(snapshot_.get(), listener_index_);
  rq_->peer_text = s_.transport().peer_text;
  rq_->reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes},
      now);
  request_.reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes});
  link(w.deadlines);
  // The codec hands over whole header blocks (the session bounds one spread over
  // CONTINUATION frames by header_timeout); this deadline is replaced when it is complete.
  expires_at(now + limits.header_timeout);
}

H2Stream::~H2Stream() {
  unlink();
  auto& w = s_.worker();
  if (w.requests != nullptr) {
    w.requests->give(std::move(rq_));
  } else {
    rq_->exchange.abort();  // the worker is gone (shutdown)
  }
}

std::shared_ptr<void> H2Stream::request_keepalive() {
  return s_.keepalive();
}

// ---------------------------------------------------------------------------------------
// Request

void H2Stream::on_header(std::string_view name, std::string_view value) {
  request_.add(name, value);
}

void H2Stream::on_headers_done(bool end_stream) {
  end_stream_ = end_stream;
  rq_->body_done = end_stream;
  request_.finish(!end_stream);
  begin();
}

void H2Stream::begin() {
  state_ = State::request;
  clear();
  if (const auto& err = request_.error()) {
    rq_->reply(err.status, err.reason);
    return;
  }
  const auto& head = request_.head();
  // The body buffer holds a whole stream window, reserved now, before any piece of it is
  // lent to the exchange: growing it later would move bytes the exchange holds a view of.
  if (!end_stream_) rq_->in.reserve(H2Session::kStreamWindow);
  rq_->has_body = head.has_body();
  rq_->expect_continue = head.expect_continue && rq_->has_body;
  const auto& t = s_.transport();
  const Downstream downstream{s_.worker(),  *snapshot_,       listener(),
                              t.peer.get(), t.proxied_source, s_.transport_is_tls()};
  rq_->begin(downstream, head);
}

void H2Stream::encode_continue() {
  response_.clear();
  response_.add_status(100);
  s_.codec().submit_informational(id_, response_);
  rq_->continue_sent();
  s_.flush_soon();
}

void H2Stream::on_data(const std::uint8_t* data, std::size_t n) {
  auto& codec = s_.codec();
  body_received_ += n;
  const auto max_body = snapshot_->config->limits.max_request_body_bytes;
  if (state_ != State::request) {
    codec.consume(id_, n);  // answered already: the rest is not wanted
    return;
  }
  if (max_body != 0 && body_received_ > max_body) {
    codec.consume(id_, n);
    if (rq_->response_head_sent) {
      reset(http::h2::kCancel);
    } else {
      rq_->reply(413, "request body too large");
    }
    return;
  }
  // The connection's window reopens at once (the per-stream window bounds the buffer); the
  // stream's only when the upstream took the bytes (on_request_body_wanted).
  codec.consume_connection(n);
  auto& in = rq_->in;
  if (in.tail_size() < n && body_given_ == 0) in.compact();
  if (in.tail_size() < n) {
    // Cannot happen while the client respects the window (the codec enforces it): begin()
    // reserved a window's worth, and on_request_body_wanted() compacts.
    reset(http::h2::kFlowControlError);
    return;
  }
  std::memcpy(in.tail(), data, n);
  in.commit(n);
  pump_request_body();
}

void H2Stream::on_end_stream(bool trailers) {
  if (trailers) request_.finish_trailers();
  end_stream_ = true;
  rq_->body_done = true;
  pump_request_body();
}

void H2Stream::pull_body() {
  if (body_given_ != 0) {
    rq_->in.consume(body_given_);
    rq_->in.compact();  // no piece is held: the window's worth of room is at the tail again
    s_.codec().consume_stream(id_, body_given_);
    body_given_ = 0;
    s_.flush_soon();  // the WINDOW_UPDATE
  }
  body_wanted_ = true;
  pump_request_body();
}

void H2Stream::pump_request_body() {
  if (!body_wanted_ || state_ != State::request) return;
  if (rq_->in.empty() && !end_stream_) return;  // on_data or on_end_stream call again
  rq_->body_slices.clear();
  if (!rq_->in.empty()) rq_->body_slices.push_back(rq_->in.data());
  body_given_ = rq_->in.size();
  body_wanted_ = false;
  rq_->send_body(rq_->body_slices, end_stream_, end_stream_ ? &request_.trailers() : nullptr);
}

// ---------------------------------------------------------------------------------------
// Response

bool H2Stream::submit_head(bool has_body) {
  return s_.codec().submit_response(id_, response_, has_body);
}

void H2Stream::encode_head(const http::ResponseHead& head, http::ResponseForwarding fwd, bool end) {
  http::encode_response(head, fwd, response_);  // HTTP/2 frames the body: no framing fields
  rq_->bytes_out += block_bytes(response_);
  // Trailers go after DATA (pull() submits them), so a response with trailers keeps its
  // stream open after the head even without a body.
  if (!submit_head(!end)) {
    reset(http::h2::kInternalError);
    return;
  }
  rq_->response_head_sent = true;
  if (!end) return;  // encode_data() follows, and flushes
  queue_delivery();
  s_.flush_soon();
}

void H2Stream::encode_trailers(const std::vector<http::Field>& trailers) {
  trailers_ = &trailers;  // valid until the exchange is told the response went out
}

void H2Stream::encode_data(const http::BodySlices& body, bool end) {
  if (state_ != State::request) return;
  out_ = &body;
  out_at_.rewind();
  out_done_ = end;
  delivery_pending_ = true;
  if (deferred_) {
    deferred_ = false;
    s_.codec().resume(id_);
  }
  s_.flush_soon();
}

http::h2::Pull H2Stream::read_response(std::uint8_t* buf, std::size_t length) {
  const std::size_t n = out_ != nullptr ? out_at_.copy(*out_, buf, length) : 0;
  rq_->bytes_out += n;
  http::h2::Pull pull;
  pull.length = n;
  if (out_ != nullptr && !out_at_.at_end(*out_)) return pull;
  // Every piece is framed: the exchange may reuse its buffer (after this codec call).
  if (delivery_pending_) {
    delivery_pending_ = false;
    queue_delivery();
  }
  if (out_done_) {
    pull.end = true;
    // The origin's trailers (gRPC's status travels in them) end the stream instead.
    if (trailers_ != nullptr && state_ == State::request) {
      http::encode_trailers(*trailers_, response_);
      trailers_ = nullptr;
      if (response_.size() != 0 && s_.codec().submit_trailers(id_, response_)) {
        pull.trailers = true;
        rq_->bytes_out += block_bytes(response_);
      }
    }
  } else if (n == 0) {
    deferred_ = true;  // resumed by the next on_response_data
    pull.deferred = true;
  }
  return pull;
}

void H2Stream::queue_delivery() {
  delivery_queued_ = true;
  s_.deliver_later(id_);
}

void H2Stream::deliver() {
  if (!delivery_queued_ || state_ == State::closed) return;
  delivery_queued_ = false;
  rq_->exchange.response_delivered();
}

void H2Stream::on_response_sent() {
  response_finished_ = true;
  // RFC 9113 8.1: a complete response before the whole request; the client is asked to
  // stop sending, without error.
  if (!end_stream_) s_.codec().reset(id_, http::h2::kNoError);
}

void H2Stream::release_body() {
  if (body_given_ == 0) return;
  if (state_ != State::closed) s_.codec().consume_stream(id_, body_given_);
  rq_->in.consume(body_given_);
  body_given_ = 0;
}

void H2Stream::response_complete() {
  if (state_ != State::closed) state_ = State::done;
  clear();
}

void H2Stream::encode_local_reply(unsigned status, std::string_view cause,
                                  std::string_view extra_headers, bool) {
  // A gRPC client reads the status from grpc-status, not :status: it gets a trailers-only
  // answer. Metrics and the access log keep the HTTP status (what failed, for alerting).
  const bool grpc = rq_->grpc;
  if (grpc) {
    http::grpc::encode_local_reply(http::grpc::status_for(status), cause, snapshot_->via,
                                   extra_headers, response_);
    local_text_.clear();
  } else {
    http::encode_local_reply(status, cause, snapshot_->via, extra_headers, response_);
    local_text_ = http::local_reply_body(cause);
  }
  rq_->bytes_out = block_bytes(response_) + local_text_.size();
  state_ = State::replying;
  trailers_ = nullptr;
  // A client that never opens its window for the answer (SETTINGS_INITIAL_WINDOW_SIZE 0)
  // does not hold the stream longer than this.
  expires_at(net::Clock::now() + snapshot_->config->limits.idle_timeout);
  local_body_.assign(1, local_text_);
}

void H2Stream::send_local_reply() {
  const bool grpc = rq_->grpc;  // trailers-only: no body to pull
  if (!submit_head(!grpc)) {
    reset(http::h2::kInternalError);
    return;
  }
  rq_->response_head_sent = true;
  if (!grpc) {
    out_ = &local_body_;
    out_at_.rewind();
    out_done_ = true;
    delivery_pending_ = false;
  }
  s_.flush_soon();
}

void H2Stream::reset(std::uint32_t error_code) {
  if (state_ == State::closed) return;
  rq_->exchange.abort();
  state_ = State::done;
  clear();
  s_.codec().reset(id_, error_code);
  s_.flush_soon();
}

void H2Stream::on_closed(std::uint32_t) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  if (response_finished_ && delivery_queued_) {
    // The whole response went out and the stream closed before the queued delivery ran:
    // the exchange completes now (and pools its upstream connection) instead of being
    // aborted below. It calls back only on_exchange_done(), which leaves the codec alone on
    // a closed stream (this runs inside the codec's callback).
    delivery_queued_ = false;
    rq_->exchange.response_delivered();
  }
  clear();
  rq_->exchange.abort();
  rq_->limit_tag = 0;  // a store answer still due is for nobody
  // Reset by the client (or cut with the connection) before its answer was complete.
  if (rq_->active && rq_->routed) {
    rq_->record(rq_->response_head_sent ? rq_->response_status : 499);
  }
}

void H2Stream::on_deadline() {
  const auto now = net::Clock::now();
  switch (state_) {
    case State::headers:
      // A header block left unfinished (HEADERS without END_HEADERS): the connection can
      // carry nothing else until it ends.
      clear();
      s_.go_away(http::h2::kProtocolError, false);
      return;
    case State::request:
      // The route timeout, while the rate limit or the exchange runs.
      if (!rq_->on_deadline(now)) clear();
      s_.flush_soon();
      return;
    case State::replying:
      reset(http::h2::kCancel);  // the answer could not go out within idle_timeout
      return;
    case State::done:
    case State::closed:
      clear();
      return;
  }
}

}  // namespace meridian::proxy
