// The Exchange's attempts on an HTTP/2 origin (backends[].protocol h2 or h2c): a stream on a
// multiplexed H2Upstream connection instead of a connection of its own. Endpoint choice,
// retries, timeouts and the sink are the Exchange's as for HTTP/1.1 (exchange.cpp); here the
// request goes out as the fields admit() encoded and DATA pulled from the sink's pieces, and
// the response comes back as decoded header blocks and DATA, buffered in uin_ (bounded by
// the stream's flow-control window: the origin gets WINDOW_UPDATE only for what the sink
// delivered).
#include <charconv>
#include <cstring>

#include "meridian/core/log.hpp"
#include "meridian/http/h2/message.hpp"
#include "meridian/proxy/exchange.hpp"

namespace meridian::proxy {

namespace {

constexpr std::size_t kMaxResponseHeaderBytes = Exchange::kResponseBuffer - 1;

bool body_allowed(unsigned status) {
  return status != 204 && status != 304 && status >= 200;
}

}  // namespace

void Exchange::use_h2_endpoint(const std::shared_ptr<balancing::EndpointState>& endpoint) {
  h2_id_ = 0;
  h2_store_.clear();
  h2_spans_.clear();
  h2_head_.clear();
  h2_trailers_.clear();
  trailers_.clear();
  h2_head_ready_ = h2_ended_ = h2_end_given_ = h2_closed_ = false;
  h2_body_wanted_ = false;
  h2_endpoint_ = endpoint;
  // The stream's window is the buffer's size, so its DATA always fits (see on_h2_data).
  if (uin_.capacity() < kResponseBuffer) uin_.reserve(kResponseBuffer);
  const auto& config = *request_.backend->config;
  H2Upstream::Options options;
  options.tls = request_.tls;
  options.tls_config = request_.tls_config;
  options.connect_timeout = config.connect_timeout;
  options.idle_timeout = config.keepalive.idle_timeout;
  // Nothing of the sink's owner is pending while the stream waits for the origin (the
  // connection calls back through a pointer): the exchange holds it alive itself until the
  // stream is let go (drop_connection()).
  h2_keep_ = sink_->exchange_keepalive();
  const auto connects = w_.h2_pool.connects;
  h2_ = w_.h2_pool.acquire(endpoint, options);
  reused_ = w_.h2_pool.connects == connects;
  if (!reused_) ++w_.pool.connects;
  if (h2_->attach(*this)) h2_submit();  // else on_h2_ready() or on_h2_unprocessed()
}

void Exchange::on_h2_ready() {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  h2_submit();
}

void Exchange::h2_submit() {
  const bool has_body = request_.has_body;
  h2_id_ = h2_->submit(fields_, has_body, *this);
  if (h2_id_ < 0) {
    h2_id_ = 0;
    fail(Failure::refused);  // the connection stopped taking streams meanwhile
    return;
  }
  if (!has_body) {
    request_written_ = true;
    return;
  }
  // The body: pieces handed over before the stream opened are framed now; otherwise the
  // sink is asked for the first one (after the codec call in progress, if any).
  if (h2_body_ == nullptr && !last_given_) {
    h2_body_wanted_ = true;
    h2_->later(*this);
  }
}

void Exchange::h2_send_body(const http::BodySlices& body, bool last) {
  if (!active_ || !h2_) return;
  last_given_ = last;
  for (auto s : body) {
    if (!s.empty()) body_sent_ = true;
  }
  h2_body_ = &body;
  h2_body_at_.rewind();
  h2_body_last_ = last;
  if (h2_id_ > 0) h2_->resume(h2_id_);
}

http::h2::Pull Exchange::on_h2_pull(std::uint8_t* buffer, std::size_t max) {
  http::h2::Pull pull;
  const std::size_t n = h2_body_ != nullptr ? h2_body_at_.copy(*h2_body_, buffer, max) : 0;
  pull.length = n;
  if (h2_body_ != nullptr && !h2_body_at_.at_end(*h2_body_)) return pull;
  // Every piece is copied into frames: the sink may have its buffer back and give the next.
  const bool had_body = h2_body_ != nullptr;
  h2_body_ = nullptr;
  if (had_body && h2_body_last_) {
    pull.end = true;
    request_written_ = true;
    if (request_trailers_ != nullptr) {
      http::encode_trailers(*request_trailers_, request_trailer_fields_);
      if (request_trailer_fields_.size() != 0 &&
          h2_->submit_trailers(h2_id_, request_trailer_fields_)) {
        pull.trailers = true;
      }
    }
    return pull;
  }
  if (had_body && !h2_body_wanted_) {
    h2_body_wanted_ = true;
    h2_->later(*this);
  }
  if (n == 0) pull.deferred = true;  // resumed by h2_send_body()
  return pull;
}

void Exchange::on_h2_later() {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  if (!h2_body_wanted_ || !active_) return;
  h2_body_wanted_ = false;
  sink_->on_request_body_wanted();
}

// ---------------------------------------------------------------------------------------
// Response

void Exchange::on_h2_field(http::h2::Block block, std::string_view name, std::string_view value) {
  switch (block) {
    case http::h2::Block::informational:
      return;  // 1xx: dropped, as for HTTP/1.1
    case http::h2::Block::trailers:
      // Bounded like the head; beyond it the section is cut (the stream goes on).
      h2_trailers_.add(name, value, kMaxResponseHeaderBytes, kMaxResponseFields);
      return;
    default:
      break;
  }
  if (h2_store_.size() + name.size() + value.size() > kMaxResponseHeaderBytes) return;
  h2_spans_.push_back(static_cast<std::uint32_t>(h2_store_.size()));
  h2_spans_.push_back(static_cast<std::uint32_t>(name.size()));
  h2_spans_.push_back(static_cast<std::uint32_t>(value.size()));
  h2_store_.append(name);
  h2_store_.append(value);
}

void Exchange::on_h2_block_end(http::h2::Block block, bool end_stream) {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  if (block == http::h2::Block::informational) {
    h2_spans_.clear();
    return;
  }
  if (block == http::h2::Block::trailers) {
    h2_trailers_.finish();
    trailers_ = h2_trailers_.fields();
    h2_ended_ = true;
    h2_deliver();
    return;
  }
  const std::string_view store = h2_store_;
  auto& fields = h2_head_.fields;
  fields.clear();
  for (std::size_t i = 0; i + 2 < h2_spans_.size(); i += 3) {
    const auto at = h2_spans_[i];
    const auto name = store.substr(at, h2_spans_[i + 1]);
    const auto value = store.substr(at + h2_spans_[i + 1], h2_spans_[i + 2]);
    if (name == ":status") {
      std::from_chars(value.data(), value.data() + value.size(), h2_head_.status);
      continue;
    }
    if (!name.empty() && name.front() == ':') continue;
    fields.push_back({name, value});
  }
  h2_spans_.clear();
  h2_head_done(end_stream);
}

void Exchange::h2_head_done(bool end_stream) {
  auto& head = h2_head_;
  head.version = 20;
  head.keep_alive = true;
  const bool allowed = body_allowed(head.status) && !request_.head_request;
  if (const auto* length = head.find("content-length")) {
    std::uint64_t n = 0;
    const auto v = length->value;
    if (std::from_chars(v.data(), v.data() + v.size(), n).ptr == v.data() + v.size()) {
      head.content_length = n;
    }
  } else if (end_stream && allowed) {
    // The whole response is this HEADERS frame: an HTTP/1.1 client is told the body is
    // empty. The store may move as it grows: the fields' views are re-pointed.
    const char* before = h2_store_.data();
    h2_store_.append("content-length0");
    const char* after = h2_store_.data();
    for (auto& f : head.fields) {
      f.name = {after + (f.name.data() - before), f.name.size()};
      f.value = {after + (f.value.data() - before), f.value.size()};
    }
    const std::string_view store = h2_store_;
    head.fields.push_back({store.substr(store.size() - 15, 14), store.substr(store.size() - 1)});
    head.content_length = 0;
  }
  head.has_body = allowed;
  response_started_ = true;
  if (head.status < 200 || head.status > 999) {
    fail(Failure::invalid);
    return;
  }
  head_received();
  if (retry_status(head.status)) return;
  note_outcome(head.status >= 500);
  h2_head_ready_ = true;
  if (end_stream) h2_ended_ = true;
  h2_deliver();
}

void Exchange::on_h2_data(const std::uint8_t* data, std::size_t n) {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  if (!active_) return;
  // The origin may send only what the stream's window allows, and the window reopens only
  // for bytes that left uin_: they fit (compacted in h2_response_delivered()).
  if (uin_.tail_size() < n) {
    fail(Failure::invalid);
    return;
  }
  std::memcpy(uin_.tail(), data, n);
  uin_.commit(n);
  h2_deliver();
}

void Exchange::on_h2_end_stream() {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  h2_ended_ = true;
  h2_deliver();
}

void Exchange::h2_deliver() {
  if (!active_ || response_delivering_ || h2_end_given_) return;
  const bool head = h2_head_ready_;
  if (!head && !response_delivered_any_) return;  // the head is still to come
  if (!head && uin_.empty() && !h2_ended_) return;
  h2_head_ready_ = false;
  resp_slices_.clear();
  if (!uin_.empty()) resp_slices_.push_back(uin_.data());
  pending_consume_ = uin_.size();
  h2_end_given_ = h2_ended_;
  response_delivering_ = true;
  response_delivered_any_ = true;
  sink_->on_response_data(head ? &h2_head_ : nullptr, resp_slices_, h2_end_given_);
}

void Exchange::h2_response_delivered() {
  response_delivering_ = false;
  const std::size_t n = pending_consume_;
  pending_consume_ = 0;
  uin_.consume(n);
  uin_.compact();
  if (h2_end_given_) {
    // The response is complete. The stream is closed already unless our request side is
    // still open (an early answer); drop_connection() resets it then.
    response_finished_ = true;
    drop_connection();
    in_flight_.reset();
    finish();
    sink_->on_exchange_done();
    return;
  }
  if (h2_ && !h2_closed_ && h2_id_ > 0) h2_->consume(h2_id_, n);
  h2_deliver();
}

void Exchange::on_h2_closed(std::uint32_t error_code) {
  const auto keep = h2_keep_;  // see use_h2_endpoint()
  h2_closed_ = true;           // the connection let the stream go: no detach, no window updates
  if (!active_) return;
  if (h2_ended_) return;  // a complete response: the sink takes the rest from uin_
  if (!response_started_) {
    // Nothing of an answer: a refusal (or a GOAWAY that did not reach the stream) leaves the
    // request unprocessed; anything else is a reset like a closed HTTP/1.1 connection.
    fail(error_code == http::h2::kRefusedStream ? Failure::refused : Failure::reset);
    return;
  }
  log::info("upstream ", h2_endpoint_->address, ": stream reset mid-response (error code ",
            error_code, ")");
  fail(Failure::invalid);
}

void Exchange::on_h2_unprocessed(H2Unprocessed why) {
  h2_.reset();                            // detached already
  const auto keep = std::move(h2_keep_);  // the sink outlives this call
  if (!active_) return;
  switch (why) {
    case H2Unprocessed::connect:
      fail(Failure::connect);
      return;
    case H2Unprocessed::connect_timeout:
      fail(Failure::connect_timeout);
      return;
    case H2Unprocessed::refused:
      fail(Failure::refused);
      return;
  }
}

}  // namespace meridian::proxy
