#include "meridian/proxy/h2_stream.hpp"

#include <charconv>
#include <cstring>

#include "meridian/http/forwarding.hpp"
#include "meridian/http/grpc.hpp"
#include "meridian/proxy/h2_session.hpp"
#include "meridian/proxy/request_flow.hpp"

namespace meridian::proxy {

namespace {

std::uint64_t total_size(const http::BodySlices& slices) {
  std::uint64_t n = 0;
  for (auto s : slices)
    n += s.size();
  return n;
}

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
      listener_index_(session.listener_index()) {
  auto& w = s_.worker();
  const auto& limits = snapshot_->config->limits;
  const auto now = net::Clock::now();
  rq_ = w.requests->take(*this);
  rq_->peer_text = s_.transport().peer_text;
  rq_->reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes},
      now);
  request_.reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes});
  link(w.deadlines);
  // A header block spread over CONTINUATION frames must end within header_timeout.
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

std::shared_ptr<void> H2Stream::exchange_keepalive() {
  return s_.keepalive();
}

// ---------------------------------------------------------------------------------------
// Request

void H2Stream::on_header(std::string_view name, std::string_view value) {
  request_.add(name, value);
}

void H2Stream::on_headers_done(bool end_stream) {
  end_stream_ = end_stream;
  request_.finish(!end_stream);
  begin();
}

void H2Stream::begin() {
  state_ = State::exchange;
  clear();
  if (const auto& err = request_.error()) {
    reply(err.status, err.reason);
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
  ratelimit::Decision decision;
  switch (admit(downstream, head, *rq_, decision)) {
    case Admission::no_route:
      reply(404, "no route matches this request");
      return;
    case Admission::forward:
      expires_at(rq_->deadline);
      start_exchange();
      return;
    case Admission::decided:
      expires_at(rq_->deadline);
      on_rate_limit_decision(decision);
      return;
    case Admission::ask_store:
      break;
  }
  expires_at(rq_->deadline);
  // scope: global -- one round trip to the store, answered within its timeout.
  state_ = State::limiting;
  if (!ask_store(s_.worker(), *rq_, *this, s_.keepalive())) {
    on_store_outcome(rq_->limit_tag, no_store_outcome());
    return;
  }
  store_pending_ = true;  // the store answers later (never within ask_store)
  store_tag_ = rq_->limit_tag;
}

void H2Stream::on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) {
  if (tag == store_tag_) store_pending_ = false;
  if (state_ != State::limiting || tag != rq_->limit_tag) return;  // abandoned, or closed
  state_ = State::exchange;
  ratelimit::Decision decision;
  switch (judge_store_outcome(*snapshot_, *rq_, outcome, decision)) {
    case StoreVerdict::decided:
      on_rate_limit_decision(decision);
      break;
    case StoreVerdict::deny:
      reply(503, "rate limit store unavailable");
      break;
    case StoreVerdict::allow:
      start_exchange();
      break;
  }
  s_.flush();
}

void H2Stream::on_rate_limit_decision(const ratelimit::Decision& decision) {
  if (apply_limit_decision(decision, *rq_)) {
    start_exchange();
    return;
  }
  reply(429, "rate limit exceeded", rq_->limit_headers);
}

void H2Stream::start_exchange() {
  state_ = State::exchange;
  if (rq_->expect_continue) {
    // The body is welcome: say so at once (RFC 9110 10.1.1), as for HTTP/1.1.
    response_.clear();
    response_.add_status(100);
    s_.codec().submit_informational(id_, response_);
  }
  rq_->exchange.start(rq_->exchange_request);
  s_.flush();
}

void H2Stream::on_data(const std::uint8_t* data, std::size_t n) {
  auto& codec = s_.codec();
  body_received_ += n;
  const auto max_body = snapshot_->config->limits.max_request_body_bytes;
  if (state_ != State::exchange && state_ != State::limiting) {
    codec.consume(id_, n);  // answered already: the rest is not wanted
    return;
  }
  if (max_body != 0 && body_received_ > max_body) {
    codec.consume(id_, n);
    if (rq_->response_head_sent) {
      reset(http::h2::kCancel);
    } else {
      reply(413, "request body too large");
    }
    return;
  }
  // The connection's window reopens at once (the per-stream window bounds the buffer); the
  // stream's only when the upstream took the bytes (on_request_body_wanted).
  codec.consume_connection(n);
  auto& in = rq_->in;
  if (in.tail_size() < n && body_given_ == 0) in.compact();
  if (in.tail_size() < n) {
    // Cannot happen while the client respects the window (nghttp2 enforces it): begin()
    // reserved a window's worth, and on_request_body_wanted() compacts.
    reset(http::h2::kFlowControlError);
    return;
  }
  std::memcpy(in.tail(), data, n);
  in.commit(n);
  pump_request_body();
}

void H2Stream::on_end_stream() {
  end_stream_ = true;
  pump_request_body();
}

void H2Stream::on_request_body_wanted() {
  if (body_given_ != 0) {
    rq_->in.consume(body_given_);
    rq_->in.compact();  // no piece is held: the window's worth of room is at the tail again
    s_.codec().consume_stream(id_, body_given_);
    body_given_ = 0;
    s_.flush();  // the WINDOW_UPDATE
  }
  body_wanted_ = true;
  pump_request_body();
}

void H2Stream::pump_request_body() {
  if (!body_wanted_ || state_ != State::exchange) return;
  if (rq_->in.empty() && !end_stream_) return;  // on_data or on_end_stream call again
  rq_->body_slices.clear();
  if (!rq_->in.empty()) rq_->body_slices.push_back(rq_->in.data());
  body_given_ = rq_->in.size();
  body_wanted_ = false;
  rq_->exchange.send_request_body(rq_->body_slices, end_stream_);
}

// ---------------------------------------------------------------------------------------
// Response

bool H2Stream::submit_head(bool has_body) {
  return s_.codec().submit_response(id_, response_, has_body);
}

void H2Stream::on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                                bool done) {
  if (state_ != State::exchange) return;
  out_ = &body;
  out_slice_ = out_offset_ = 0;
  out_done_ = done;
  delivery_pending_ = true;
  if (head != nullptr) {
    const bool debug = snapshot_->config->debug_headers;
    const auto* endpoint = rq_->exchange.endpoint();
    const bool named = debug && endpoint != nullptr;
    const http::ResponseForwarding fwd{
        snapshot_->via,
        false,
        false,
        false,
        named ? std::string_view(endpoint->region) : std::string_view{},
        named ? std::string_view(endpoint->address) : std::string_view{},
        rq_->limit_headers,
        false};
    http::encode_response(*head, fwd, response_);
    rq_->response_status = head->status;
    rq_->bytes_out += block_bytes(response_);
    // Trailers go after DATA (pull() submits them), so a response with trailers keeps its
    // stream open after the head even without a body.
    const bool empty = done && total_size(body) == 0 && rq_->exchange.response_trailers().empty();
    if (!submit_head(!empty)) {
      reset(http::h2::kInternalError);
      return;
    }
    rq_->response_head_sent = true;
    if (empty) {
      delivery_pending_ = false;
      queue_delivery();
    }
  } else if (deferred_) {
    deferred_ = false;
    s_.codec().resume(id_);
  }
  s_.flush();
}

http::h2::Pull H2Stream::read_response(std::uint8_t* buf, std::size_t length) {
  std::size_t n = 0;
  while (out_ != nullptr && out_slice_ < out_->size() && n < length) {
    const auto piece = (*out_)[out_slice_].substr(out_offset_);
    const auto take = std::min(piece.size(), length - n);
    std::memcpy(buf + n, piece.data(), take);
    n += take;
    out_offset_ += take;
    if (out_offset_ == (*out_)[out_slice_].size()) {
      ++out_slice_;
      out_offset_ = 0;
    }
  }
  rq_->bytes_out += n;
  http::h2::Pull pull;
  pull.length = n;
  if (out_ != nullptr && out_slice_ < out_->size()) return pull;
  // Every piece is framed: the exchange may reuse its buffer (after this codec call).
  if (delivery_pending_) {
    delivery_pending_ = false;
    queue_delivery();
  }
  if (out_done_) {
    pull.end = true;
    // The origin's trailers (gRPC's status travels in them) end the stream instead.
    if (state_ == State::exchange && !rq_->exchange.response_trailers().empty()) {
      http::encode_trailers(rq_->exchange.response_trailers(), response_);
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

void H2Stream::on_exchange_done() {
  if (body_given_ != 0) {
    if (state_ != State::closed) s_.codec().consume_stream(id_, body_given_);
    rq_->in.consume(body_given_);
    body_given_ = 0;
  }
  record(rq_->response_status);
  if (state_ != State::closed) state_ = State::done;
  clear();
}

void H2Stream::on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) {
  if (body_given_ != 0) {
    s_.codec().consume_stream(id_, body_given_);
    rq_->in.consume(body_given_);
    body_given_ = 0;
  }
  if (rq_->response_head_sent) {
    reset(http::h2::kInternalError);  // the client has part of a response: it is cut
    return;
  }
  if (retry_after) rq_->limit_headers.append("Retry-After: 1\r\n");
  reply(status, cause, rq_->limit_headers);
}

void H2Stream::reply(unsigned status, std::string_view cause, std::string_view extra_headers) {
  rq_->exchange.abort();
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
  rq_->response_status = status;
  rq_->bytes_out = block_bytes(response_) + local_text_.size();
  record(status);
  state_ = State::replying;
  // A client that never opens its window for the answer (SETTINGS_INITIAL_WINDOW_SIZE 0)
  // does not hold the stream longer than this.
  expires_at(net::Clock::now() + snapshot_->config->limits.idle_timeout);
  if (!submit_head(!grpc)) {
    reset(http::h2::kInternalError);
    return;
  }
  rq_->response_head_sent = true;
  if (grpc) {
    s_.flush();
    return;
  }
  local_body_.assign(1, local_text_);
  out_ = &local_body_;
  out_slice_ = out_offset_ = 0;
  out_done_ = true;
  delivery_pending_ = false;
  s_.flush();
}

void H2Stream::reset(std::uint32_t error_code) {
  if (state_ == State::closed) return;
  rq_->exchange.abort();
  state_ = State::done;
  clear();
  s_.codec().reset(id_, error_code);
  s_.flush();
}

void H2Stream::record(unsigned status) {
  record_request(s_.worker(), *snapshot_, listener(), *rq_, status);
}

void H2Stream::on_closed(std::uint32_t) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  if (response_finished_ && delivery_queued_) {
    // The whole response went out and the stream closed before the queued delivery ran:
    // the exchange completes now (and pools its upstream connection) instead of being
    // aborted below. It calls back only on_exchange_done(), which leaves nghttp2 alone on
    // a closed stream (this runs inside nghttp2's callback).
    delivery_queued_ = false;
    rq_->exchange.response_delivered();
  }
  clear();
  rq_->exchange.abort();
  rq_->limit_tag = 0;  // a store answer still due is for nobody
  // Reset by the client (or cut with the connection) before its answer was complete.
  if (rq_->active && rq_->routed) record(rq_->response_head_sent ? rq_->response_status : 499);
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
    case State::limiting:
      if (now < rq_->deadline) {
        expires_at(rq_->deadline);
      } else {
        rq_->limit_tag = 0;  // the store's answer, when it comes, is for nobody
        reply(504, "rate limit store did not answer within the route timeout");
      }
      return;
    case State::exchange:
      if (now < rq_->deadline) {
        expires_at(rq_->deadline);
      } else if (rq_->response_head_sent) {
        reset(http::h2::kInternalError);
      } else if (!request_complete()) {
        reply(408, "request body not received within the route timeout");
      } else {
        rq_->exchange.on_request_timeout();  // answers 504 through on_exchange_failed()
        s_.flush();
      }
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
