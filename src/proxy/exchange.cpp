#include "meridian/proxy/exchange.hpp"

#include <algorithm>
#include <charconv>
#include <span>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "meridian/core/log.hpp"
#include "meridian/core/splitmix.hpp"
#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/chunked.hpp"
#include "meridian/tls/client_context.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

static_assert(balancing::RegionOrder::kReasons == metrics::kSelectReasons,
              "meridian_region_selected_total has a series per steering reason");

Exchange::Exchange(WorkerContext& worker) : w_(worker) {}

void Exchange::attach(ExchangeSink& sink) {
  sink_ = &sink;
  link(w_.deadlines);
}

void Exchange::detach() {
  unlink();
  sink_ = nullptr;
}

Exchange::~Exchange() {
  drop_connection();
}

void Exchange::start(const ExchangeRequest& request) {
  request_ = request;
  active_ = true;
  upgraded_ = false;
  tried_ = {};
  retries_left_ = request.retries;
  last_failure_ = Failure::connect;
  body_sent_ = false;
  last_given_ = !request.has_body;
  request_written_ = false;
  response_started_ = response_delivering_ = response_delivered_any_ = false;
  response_finished_ = false;
  stale_retry_used_ = false;
  pending_body_ = nullptr;
  request_trailers_ = nullptr;
  trailers_.clear();
  now_ns_ = balancing::steady_now_ns();
  region_index_ = -1;
  retry_from_region_ = -1;
  sticky_ = nullptr;
  last_endpoint_ = nullptr;
  static const std::optional<config::Location> kNoLocation;
  order_ = balancing::order_regions(*request.backend, request.client,
                                    request.node_location ? *request.node_location : kNoLocation,
                                    now_ns_, request.client_hash);
  region_pos_ = 0;
  if (order_.count != 0 && request_.region_series != nullptr && w_.counters != nullptr) {
    w_.counters->record_selected((*request_.region_series)[order_.index[0]],
                                 static_cast<std::size_t>(order_.reason));
  }
  // After the count: meridian_region_selected_total says what steering chose, and why.
  if (request.sticky != nullptr) prefer_sticky_region();
  if (order_.count == 0) {
    finish();
    sink_->on_exchange_failed(
        503, "no eligible region for backend " + request.backend->config->name, true);
    return;
  }
  dispatch();
}

// ---------------------------------------------------------------------------------------
// Connection

void Exchange::prefer_sticky_region() {
  // Affinity: the cookie's region goes first when steering found it eligible at all (fencing
  // and eligibility still rule); the other regions keep their order behind it. A client
  // moves to another region only when its own cannot serve -- or must not: a region at its
  // capacity, draining, or shedding this client (traffic_dial, too few healthy endpoints,
  // slow start) lets steering's order stand, as for any client.
  const auto wanted = request_.sticky->region;
  if (order_.count == 0) return;
  if (order_.index[0] != wanted) {
    // Moving the region up: only when it may take this client at all.
    const auto& region = request_.backend->regions[wanted];
    if (balancing::region_full(region)) return;
    const auto view = balancing::region_view(region, *request_.backend->config, now_ns_);
    if (view.availability != balancing::RegionAvailability::active) return;
    if (unit_interval(splitmix64(request_.client_hash ^ region.salt)) >=
        balancing::region_keep_share(region, view)) {
      return;
    }
  }
  for (std::size_t pos = 0; pos < order_.count; ++pos) {
    if (order_.index[pos] != wanted) continue;
    std::rotate(order_.index.begin(), order_.index.begin() + static_cast<std::ptrdiff_t>(pos),
                order_.index.begin() + static_cast<std::ptrdiff_t>(pos) + 1);
    sticky_ = request_.sticky->endpoint;
    return;
  }
}

void Exchange::dispatch() {
  // Another endpoint of the same region first, then the next region by score; an endpoint an
  // operator drains only when no active one is left in any of them (a retry must not land
  // on it while the next region could serve).
  const auto* config = request_.backend->config;
  const auto slow_start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(config->slow_start).count();
  // A retry is steered like a new request: a region at its capacity is passed over while
  // another can take it (the first pass). Then any region; then draining endpoints.
  const bool retrying = retry_from_region_ >= 0;
  if (sticky_ != nullptr) {
    // The first attempt goes to the endpoint the client's affinity cookie names while it is
    // usable (healthy, active, not full, not ejected); after that, normal picks.
    const balancing::EndpointState* sticky = sticky_;
    sticky_ = nullptr;
    if (!retrying && tried_.count == 0 &&
        balancing::usable_for_affinity(*sticky, config->max_connections_per_endpoint, now_ns_)) {
      const auto& region = request_.backend->regions[order_.index[0]];
      for (const auto& e : region.endpoints) {
        if (e.get() != sticky) continue;
        region_pos_ = 0;
        region_index_ = order_.index[0];
        use_endpoint(e, true);
        return;
      }
    }
  }
  for (int pass = retrying ? 0 : 1; pass < 3; ++pass) {
    const bool allow_drain = pass == 2;
    for (std::size_t pos = region_pos_; pos < order_.count; ++pos) {
      const auto& region = request_.backend->regions[order_.index[pos]];
      if (pass == 0 && balancing::region_full(region)) continue;
      const auto* picked = balancing::pick_endpoint(
          region, config->balance, config->max_connections_per_endpoint, tried_,
          w_.rotation(region.ordinal), now_ns_, allow_drain, slow_start_ns, request_.key_hash);
      if (picked == nullptr) continue;
      region_pos_ = pos;
      if (retry_from_region_ >= 0 && request_.region_series != nullptr && w_.counters != nullptr) {
        // A retry goes out: counted against the region whose attempt failed, the one that
        // needs looking at.
        w_.counters->record_retry(
            (*request_.region_series)[static_cast<std::size_t>(retry_from_region_)], retry_reason_);
      }
      retry_from_region_ = -1;
      region_index_ = order_.index[region_pos_];
      use_endpoint(*picked, true);
      return;
    }
  }
  region_pos_ = order_.count;
  if (tried_.count == 0) {
    // Every region that looked eligible at start() filled up or went down meanwhile.
    finish();
    sink_->on_exchange_failed(503, "no eligible endpoint for backend " + config->name, true);
    return;
  }
  report(last_failure_);
}

void Exchange::note_outcome(bool failed) {
  // Passive outlier detection (the backend's outlier_detection): `consecutive_failures` in a
  // row, counted across all workers, eject the endpoint for `ejection_time`. A success only
  // writes when it breaks a run, so healthy traffic does not bounce the counter's cache line
  // between cores.
  auto* e = in_flight_.get();
  const auto& detection = request_.backend->config->outlier_detection;
  if (e == nullptr || !detection || outcome_noted_) return;
  outcome_noted_ = true;  // one verdict per attempt (a 5xx head and then a failed body)
  if (!failed) {
    if (e->consecutive_failures.load(std::memory_order_relaxed) != 0) {
      e->consecutive_failures.store(0, std::memory_order_relaxed);
    }
    return;
  }
  const std::uint32_t run = e->consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (run < detection->consecutive_failures) return;
  e->consecutive_failures.store(0, std::memory_order_relaxed);
  const auto until =
      balancing::steady_now_ns() +
      std::chrono::duration_cast<std::chrono::nanoseconds>(detection->ejection_time).count();
  e->ejected_until_ns.store(until, std::memory_order_relaxed);
  log::warn("outlier: backend ", e->backend, " region ", e->region, " endpoint ", e->address,
            ": ejected for ", detection->ejection_time.count(), "ms after ", run,
            " failures in a row");
}

void Exchange::report_connect_failure() {
  // What the data path sees is the fastest sign of a dead origin: the health checker counts
  // it as a failed probe and probes again at once (health_checker.hpp). The flag keeps a
  // burst of failures from queueing one report each; a load first keeps the cache line
  // shared while a report is pending.
  auto* e = in_flight_.get();
  if (e == nullptr || !w_.report_connect_failure) return;
  if (e->probe_requested.load(std::memory_order_relaxed)) return;
  if (e->probe_requested.exchange(true, std::memory_order_relaxed)) return;
  w_.report_connect_failure(e);
}

void Exchange::use_endpoint(const std::shared_ptr<balancing::EndpointState>& endpoint,
                            bool pooled_ok) {
  ++attempt_;
  outcome_noted_ = false;
  head_pending_ = true;
  request_writing_ = false;
  request_written_ = false;
  response_started_ = false;
  response_finished_ = false;
  in_flight_ = balancing::InFlightGuard(endpoint.get());
  last_endpoint_ = endpoint.get();
  resp_.reset({kResponseBuffer - 1, kMaxResponseFields, 0}, request_.head_request);
  uin_.consume(uin_.size());
  // routes[].retry.per_try_timeout bounds this attempt until its response head arrives.
  const auto per_try = request_.retry->per_try_timeout;
  per_try_deadline_ =
      per_try.count() > 0 ? net::Clock::now() + per_try : net::Clock::time_point::max();
  arm_deadline(net::Clock::time_point::max());
  if (request_.protocol != config::UpstreamProtocol::http1) {
    use_h2_endpoint(endpoint);
    return;
  }
  up_ = pooled_ok ? w_.pool.acquire(endpoint.get()) : nullptr;
  if (up_ && up_->transport.is_tls() != (request_.tls != nullptr)) {
    // Pooled before a reload switched the backend's tls setting: not for this request.
    up_->transport.close();
    up_.reset();
  }
  reused_ = up_ != nullptr;
  if (up_) {
    connection_ready();
    return;
  }
  up_ = std::make_shared<UpstreamConnection>(w_.ioc, endpoint);
  ++w_.pool.connects;
  connecting_ = true;
  arm_deadline(net::Clock::now() + request_.backend->config->connect_timeout);
  ++pending_ops_;
  up_->transport.socket().async_connect(
      endpoint->target, [keep = sink_->exchange_keepalive(), conn = up_, this,
                         a = attempt_](boost::system::error_code ec) { on_connected(a, ec); });
}

void Exchange::on_connected(std::uint64_t attempt, boost::system::error_code ec) {
  --pending_ops_;
  if (attempt != attempt_ || !active_) return;
  connecting_ = false;
  arm_deadline(net::Clock::time_point::max());
  if (ec) {
    log::debug("upstream ", in_flight_.get()->address, ": connect failed: ", ec.message());
    fail(Failure::connect);
    return;
  }
  up_->transport.socket().set_option(tcp::no_delay(true), ec);
  if (request_.tls == nullptr) {
    connection_ready();
    return;
  }
  // Backend `tls`: the handshake, under connect_timeout again (a failure counts as a
  // connect failure: nothing of the request was sent, so it is retried elsewhere).
  auto& stream = up_->transport.start_tls(*request_.tls, net::TlsRole::client);
  tls::prepare_client(stream.native_handle(), *request_.tls_config, in_flight_.get()->address);
  connecting_ = true;
  arm_deadline(net::Clock::now() + request_.backend->config->connect_timeout);
  ++pending_ops_;
  stream.async_handshake([keep = sink_->exchange_keepalive(), conn = up_, this,
                          a = attempt_](boost::system::error_code e) { on_tls_handshake(a, e); });
}

void Exchange::on_tls_handshake(std::uint64_t attempt, boost::system::error_code ec) {
  --pending_ops_;
  if (attempt != attempt_ || !active_) return;
  connecting_ = false;
  arm_deadline(net::Clock::time_point::max());
  if (ec) {
    log::warn("upstream ", in_flight_.get()->address, ": TLS handshake failed: ", ec.message());
    fail(Failure::connect);
    return;
  }
  connection_ready();
}

void Exchange::connection_ready() {
  if (last_given_ && pending_body_ == nullptr) {
    // No body (the common case): the request is written first and its response read only
    // then. Asio tries every read at once before it waits for readiness, so a read started
    // before the request went out would cost a system call that finds nothing.
    response_read_started_ = false;
    write_request(nullptr, true);
    return;
  }
  // An upload: the response read goes first, so that an early answer is seen while the
  // body still flows, and so that whatever the request side does synchronously below finds
  // the attempt's read already pending.
  response_read_started_ = true;
  read_response();
  // A piece the sink handed over while this connection was being dialled (a retry) goes
  // with the head, and the sink is not asked again until it is written.
  if (write_pending_body()) return;
  if (last_given_) {
    // No body, or (on a retry) a body that was complete and empty: head and terminator.
    write_request(nullptr, true);
    return;
  }
  // Ask for the body first so that a body already buffered downstream travels in the same
  // write as the head; if none is there yet, the head goes alone and the body follows.
  const std::uint64_t attempt = attempt_;
  sink_->on_request_body_wanted();
  if (attempt == attempt_ && active_ && head_pending_ && !request_writing_) {
    write_request(nullptr, false);
  }
}

void Exchange::drop_connection() {
  if (h2_) {
    const auto conn = std::move(h2_);
    h2_.reset();
    conn->detach(*this, h2_closed_ ? 0 : h2_id_);
  }
  h2_id_ = 0;
  h2_body_ = nullptr;
  h2_body_wanted_ = false;
  if (h2_keep_.use_count() == 1) {
    // The only reference to the sink's owner (a session closing from its deadline, say):
    // released after the caller returned, not under its feet.
    asio::post(w_.ioc, [keep = std::move(h2_keep_)] {});
  }
  h2_keep_.reset();
  if (up_) {
    up_->transport.close();
    up_.reset();
  }
  in_flight_.reset();
  connecting_ = false;
  request_writing_ = false;
  ++attempt_;
  Deadline::clear();
  per_try_deadline_ = net::Clock::time_point::max();
  if (backing_off_) {
    backing_off_ = false;
    backoff_timer_->cancel();  // its handler sees a newer attempt and does nothing
  }
}

void Exchange::arm_deadline(net::Clock::time_point connect_until) {
  const auto until = std::min(connect_until, per_try_deadline_);
  if (until == net::Clock::time_point::max()) {
    Deadline::clear();
  } else {
    expires_at(until);
  }
}

void Exchange::head_received() {
  // The per-try timeout ends with the head; the route's timeout takes the rest.
  if (per_try_deadline_ == net::Clock::time_point::max()) return;
  per_try_deadline_ = net::Clock::time_point::max();
  Deadline::clear();
}

void Exchange::on_deadline() {
  Deadline::clear();
  if (!active_) return;
  if (net::Clock::now() >= per_try_deadline_) {
    fail(Failure::per_try_timeout);
  } else if (connecting_) {
    fail(Failure::connect_timeout);
  }
}

// ---------------------------------------------------------------------------------------
// Request: head and body up

void Exchange::send_request_body(const http::BodySlices& body, bool last,
                                 const std::vector<http::Field>* trailers) {
  request_trailers_ = last && trailers != nullptr && !trailers->empty() ? trailers : nullptr;
  if (request_.protocol != config::UpstreamProtocol::http1) {
    h2_send_body(body, last);
    return;
  }
  if (!active_ || !up_) return;
  last_given_ = last;
  // Once the sink handed over body bytes it may release them when asked for more, so the
  // request can no longer be replayed, and so it is no longer retried.
  for (auto s : body) {
    if (!s.empty()) body_sent_ = true;
  }
  if (request_writing_ || connecting_) {
    pending_body_ = &body;  // the sink keeps it unchanged until on_request_body_wanted()
    pending_last_ = last;
    return;
  }
  write_request(&body, last);
}

void Exchange::write_request(const http::BodySlices* body, bool last) {
  req_bufs_.clear();
  if (head_pending_) {
    req_bufs_.emplace_back(head_.data(), head_.size());
    head_pending_ = false;
  }
  if (body != nullptr) {
    http::h1::frame_body(*body, request_.chunked_body, chunk_line_, req_bufs_);
  }
  if (last && request_.has_body && request_.chunked_body) {
    if (request_trailers_ != nullptr) {
      http::write_last_chunk(*request_trailers_, request_last_chunk_);
      req_bufs_.emplace_back(request_last_chunk_.data(), request_last_chunk_.size());
    } else {
      req_bufs_.emplace_back(http::h1::kLastChunk.data(), http::h1::kLastChunk.size());
    }
  }
  if (req_bufs_.empty()) {
    // An empty piece (a Content-Length body that ended exactly at a buffer boundary).
    if (last) {
      request_written_ = true;
      if (response_finished_) complete();
    } else {
      sink_->on_request_body_wanted();
    }
    return;
  }
  request_writing_ = true;
  ++pending_ops_;
  up_->transport.async_write(
      std::span<const asio::const_buffer>(req_bufs_),
      [keep = sink_->exchange_keepalive(), conn = up_, this, a = attempt_](
          boost::system::error_code ec, std::size_t) { on_request_written(a, ec); });
}

bool Exchange::write_pending_body() {
  if (pending_body_ == nullptr) return false;
  const auto* body = pending_body_;
  pending_body_ = nullptr;
  write_request(body, pending_last_);
  return true;
}

void Exchange::on_request_written(std::uint64_t attempt, boost::system::error_code ec) {
  --pending_ops_;
  if (attempt != attempt_ || !active_) return;
  request_writing_ = false;
  if (ec) {
    // The upstream stopped reading. If it is answering (an early response), the response
    // side finishes the exchange; otherwise this is a reset before any response byte.
    if (!response_started_) {
      fail(Failure::reset);
    } else if (response_finished_) {
      complete();
    }
    return;
  }
  if (!response_read_started_) {
    response_read_started_ = true;
    read_response();
    if (attempt != attempt_ || !active_) return;  // the read failed at once
  }
  if (write_pending_body()) return;
  if (last_given_) {
    request_written_ = true;
    if (response_finished_) complete();
    return;
  }
  sink_->on_request_body_wanted();
}

// ---------------------------------------------------------------------------------------
// Response: back to the sink

void Exchange::read_response() {
  if (uin_.capacity() == 0) uin_.reserve(kResponseBufferInitial);
  if (uin_.tail_size() == 0) uin_.compact();
  // Full (a large head or chunk line), or the last read filled it: grow to the full size.
  if ((uin_.tail_size() == 0 || grow_response_buffer_) && uin_.capacity() < kResponseBuffer) {
    uin_.reserve(kResponseBuffer);
  }
  grow_response_buffer_ = false;
  if (uin_.tail_size() == 0) {
    fail(Failure::invalid);  // a chunk line longer than the whole buffer
    return;
  }
  ++pending_ops_;
  read_size_ = uin_.tail_size();
  up_->transport.async_read_some(
      asio::buffer(uin_.tail(), uin_.tail_size()),
      [keep = sink_->exchange_keepalive(), conn = up_, this, a = attempt_](
          boost::system::error_code ec, std::size_t n) { on_response_read(a, ec, n); });
}

void Exchange::on_response_read(std::uint64_t attempt, boost::system::error_code ec,
                                std::size_t n) {
  --pending_ops_;
  if (attempt != attempt_ || !active_) return;
  if (ec) {
    if (ec == asio::error::eof && resp_.head_done() && !resp_.done()) {
      resp_.finish_on_eof();  // a close-delimited body ends here; others are cut short
      if (!resp_.error()) {
        deliver(0);
        return;
      }
    }
    fail(response_started_ ? Failure::invalid : Failure::reset);
    return;
  }
  uin_.commit(n);
  grow_response_buffer_ = n == read_size_;
  response_started_ = true;
  if (resp_.head_done()) {
    deliver(0);
    return;
  }
  while (true) {
    const std::size_t head_length = resp_.parse_head(uin_.data());
    if (resp_.error()) {
      fail(Failure::invalid);
      return;
    }
    if (head_length == 0) {
      read_response();
      return;
    }
    const unsigned status = resp_.head().status;
    if (status >= 100 && status < 200) {
      if (status == 101) {
        if (!request_.upgrade) {  // switching protocols nobody asked for
          fail(Failure::invalid);
          return;
        }
        // The WebSocket handshake succeeded: the head goes to the sink, and the connection
        // (with whatever the origin sent after the head) to its tunnel (take_upgraded).
        head_received();
        upgraded_ = true;
        note_outcome(false);
        resp_slices_.clear();
        pending_consume_ = head_length;
        last_body_consumed_ = 0;
        response_delivering_ = true;
        response_delivered_any_ = true;
        sink_->on_response_data(&resp_.head(), resp_slices_, true);
        return;
      }
      // Interim answers (103 Early Hints, a 100 the origin sent anyway) are dropped: the
      // client already had its 100 Continue from meridian.
      uin_.consume(head_length);
      resp_.reset({kResponseBuffer - 1, kMaxResponseFields, 0}, request_.head_request);
      continue;
    }
    head_received();
    if (retry_status(status)) return;
    note_outcome(status >= 500);
    deliver(head_length);
    return;
  }
}

void Exchange::deliver(std::size_t head_length) {
  // The head's bytes stay in uin_ (its views point there) until the sink has delivered them.
  resp_slices_.clear();
  std::size_t consumed = 0;
  if (!resp_.done() && uin_.size() > head_length) {
    consumed = resp_.parse_body(uin_.data().substr(head_length), resp_slices_);
    if (resp_.error()) {
      fail(Failure::invalid);
      return;
    }
  }
  const bool done = resp_.done();
  if (done) trailers_ = resp_.trailers();  // a chunked body's trailer section, if any
  if (head_length == 0 && resp_slices_.empty() && !done) {
    uin_.consume(consumed);  // chunk framing only: nothing to hand over yet
    read_response();
    return;
  }
  pending_consume_ = head_length + consumed;
  last_body_consumed_ = consumed;
  response_delivering_ = true;
  response_delivered_any_ = true;
  sink_->on_response_data(head_length > 0 ? &resp_.head() : nullptr, resp_slices_, done);
}

void Exchange::response_delivered() {
  if (!active_ || !response_delivering_) return;
  if (request_.protocol != config::UpstreamProtocol::http1) {
    h2_response_delivered();
    return;
  }
  response_delivering_ = false;
  uin_.consume(pending_consume_);
  pending_consume_ = 0;
  if (upgraded_) {
    // Settled like a complete exchange, but the connection stays for take_upgraded().
    active_ = false;
    pending_body_ = nullptr;
    release_retry_budget();
    sink_->on_exchange_done();
  } else if (resp_.done()) {
    response_finished_ = true;
    complete();
  } else if (!uin_.empty() && last_body_consumed_ > 0) {
    deliver(0);
  } else {
    read_response();
  }
}

void Exchange::complete() {
  // Waiting for the last body write only makes sense when the whole body was handed over;
  // after an early response the rest of the upload is abandoned with the connection.
  if (request_writing_ && last_given_) return;  // on_request_written() comes back here
  // Reusable only when both messages ended cleanly on the wire: the whole request went up,
  // the origin allows keep-alive, and it sent nothing beyond its response.
  const bool reusable = up_ && request_written_ && resp_.head().keep_alive && uin_.empty();
  if (reusable) {
    ++up_->requests;
    const auto& keepalive = request_.backend->config->keepalive;
    w_.pool.release(std::move(up_), keepalive.max_idle_per_endpoint, keepalive.idle_timeout);
    up_.reset();
    in_flight_.reset();
    ++attempt_;
  } else {
    drop_connection();
  }
  finish();
  sink_->on_exchange_done();
}

Exchange::Upgraded Exchange::take_upgraded() {
  Upgraded u;
  if (!upgraded_ || !up_) return u;
  upgraded_ = false;
  u.connection = std::move(up_);
  u.in_flight = std::move(in_flight_);
  u.pending = std::move(uin_);
  uin_ = ByteBuffer();
  ++attempt_;
  Deadline::clear();
  return u;
}

void Exchange::finish() {
  active_ = false;
  pending_body_ = nullptr;
  response_delivering_ = false;
  release_retry_budget();
  // The buffer stays for the next request (no allocation per request); ActiveRequestPool trims
  // a grown one when the downstream connection goes idle (trim()).
  uin_.consume(uin_.size());
}

// ---------------------------------------------------------------------------------------
// Failure and retry (docs/http-behaviour.md, retries)

void Exchange::fail(Failure why) {
  const bool replayable = !response_started_ && !response_delivered_any_ && !body_sent_;
  const bool bodyless_or_idempotent = request_.idempotent || !request_.has_body;
  if (why == Failure::refused && replayable && !stale_retry_used_ && h2_endpoint_) {
    // The origin did not process the stream (it refused it, or its GOAWAY crossed our
    // request): as with a stale pooled connection, one free retry to the same endpoint, on
    // a connection with room (the pool dials a new one when this one is going away).
    stale_retry_used_ = true;
    const auto endpoint = h2_endpoint_;
    drop_connection();
    use_endpoint(endpoint, true);
    return;
  }
  if (why == Failure::reset && reused_ && replayable && bodyless_or_idempotent &&
      !stale_retry_used_ && up_) {
    // A pooled connection the origin closed just as we sent on it (its idle close crossed
    // our request on the wire): not the endpoint's fault, and an origin that had decided to
    // close did not process the request. Send once more on a fresh connection to the same
    // endpoint, without spending a retry, as HAProxy, Envoy and browsers do for a reused
    // connection -- for a body-less POST too, whose request is complete in head_.
    stale_retry_used_ = true;
    const auto endpoint = up_->endpoint;
    drop_connection();
    use_endpoint(endpoint, false);
    return;
  }
  // Retry on another endpoint (routes[].retry.on: connect and reset by default) after a
  // connect failure, a connect timeout, a reset before any response byte or a per-try
  // timeout -- never once the client has been given a byte, and only when the request can
  // be sent again (no body byte was handed over). A connect failure sent nothing, so any
  // method is retried; a reset or a per-try timeout after the request went up is retried
  // only for an idempotent method, since the origin may have acted on it (nginx's default).
  const bool connect_failed = why == Failure::connect || why == Failure::connect_timeout;
  if (why != Failure::refused) note_outcome(true);  // a refusal says nothing of its health
  if (connect_failed) report_connect_failure();
  const auto& policy = *request_.retry;
  bool wanted = false;
  auto reason = metrics::RetryReason::reset;
  switch (why) {
    case Failure::connect:
    case Failure::connect_timeout:
      wanted = policy.on_connect;
      reason = metrics::RetryReason::connect;
      break;
    case Failure::refused:  // the origin did not process it: as safe as a connect failure
      wanted = true;
      break;
    case Failure::reset:
      wanted = policy.on_reset && request_.idempotent;
      break;
    case Failure::per_try_timeout:
      wanted = request_.idempotent;
      reason = metrics::RetryReason::per_try_timeout;
      break;
    case Failure::invalid:
    case Failure::timeout:
    case Failure::status:
      break;
  }
  if (in_flight_.get() != nullptr) tried_.add(in_flight_.get());
  last_failure_ = why;
  drop_connection();
  // A connect failure, a refusal, or a reset of a pooled connection (an origin that died or
  // closed it; nothing was processed) is the failover path and loads nobody that failed:
  // its retry is not held to the budget (docs/configuration.md).
  const bool budgeted =
      !connect_failed && why != Failure::refused && !(why == Failure::reset && reused_);
  if (wanted && replayable && retries_left_ > 0 && (!budgeted || take_retry_budget())) {
    schedule_retry(reason);
    return;
  }
  report(why);
}

bool Exchange::retry_status(unsigned status) {
  // routes[].retry.on lists the status: retried like a reset (idempotent requests whose
  // body, if any, was not handed over: bodies are streamed, not kept), on another endpoint,
  // and only when one is there -- otherwise this answer is the one the client gets.
  const auto& policy = *request_.retry;
  if (status >= policy.on_status.size() || !policy.on_status[status]) {
    return false;
  }
  if (!request_.idempotent || body_sent_ || response_delivered_any_ || retries_left_ == 0) {
    return false;
  }
  balancing::TriedEndpoints tried = tried_;
  if (in_flight_.get() != nullptr) tried.add(in_flight_.get());
  const auto* config = request_.backend->config;
  bool another = false;
  for (std::size_t pos = region_pos_; pos < order_.count && !another; ++pos) {
    const auto& region = request_.backend->regions[order_.index[pos]];
    std::uint64_t rotation = w_.rotation(region.ordinal);  // a look, not a turn
    another =
        balancing::pick_endpoint(region, config->balance, config->max_connections_per_endpoint,
                                 tried, rotation, now_ns_, true, 0, request_.key_hash) != nullptr;
  }
  if (!another || !take_retry_budget()) return false;
  note_outcome(status >= 500);
  tried_ = tried;
  last_failure_ = Failure::status;
  last_status_ = status;
  drop_connection();  // the answer is not read: the connection goes with it
  schedule_retry(metrics::RetryReason::status);
  return true;
}

bool Exchange::take_retry_budget() {
  // routes[].retry.budget: retries in flight at most `budget` of the backend's requests in
  // flight, and always at least kMinRetriesInFlight. A request holds one unit from its first
  // retry to its end, whatever number of retries it makes. Requests in flight are counted
  // without a per-request shared write: the attempts in flight to the backend's endpoints,
  // node-wide, plus the requests holding a unit (some of them waiting out a backoff, with
  // no attempt in flight), plus this one.
  if (holds_retry_budget_) return true;
  auto& budget = *request_.backend->retry_budget;
  const std::uint32_t retrying = budget.retries_in_flight.load(std::memory_order_relaxed);
  std::uint64_t requests = 1 + std::uint64_t{retrying};
  for (const auto& region : request_.backend->regions) {
    for (const auto& e : region.endpoints) {
      requests += e->in_flight.load(std::memory_order_relaxed);
    }
  }
  const double allowed = std::max(static_cast<double>(config::RetryPolicy::kMinRetriesInFlight),
                                  request_.retry->budget * static_cast<double>(requests));
  if (static_cast<double>(retrying) >= allowed) {
    budget.exhausted.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  budget.retries_in_flight.fetch_add(1, std::memory_order_relaxed);
  holds_retry_budget_ = true;
  return true;
}

void Exchange::release_retry_budget() {
  if (!holds_retry_budget_) return;
  holds_retry_budget_ = false;
  request_.backend->retry_budget->retries_in_flight.fetch_sub(1, std::memory_order_relaxed);
}

void Exchange::schedule_retry(metrics::RetryReason reason) {
  --retries_left_;
  retry_from_region_ = region_index_;  // counted in dispatch() if a retry goes out
  retry_reason_ = reason;
  // Jittered exponential backoff (Envoy's): retry n waits a uniform draw from
  // [0, (2^n - 1) * backoff], at most 10 * backoff.
  const auto base = request_.retry->backoff;
  if (base.count() <= 0) {
    dispatch();
    return;
  }
  const std::uint32_t n = request_.retries - retries_left_;  // this retry's number, from 1
  const std::uint64_t factor = n >= 4 ? 10 : (1ULL << n) - 1;
  const auto ceiling_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(base).count() * factor);
  const std::uint64_t draw =
      splitmix64(attempt_ ^ static_cast<std::uint64_t>(balancing::steady_now_ns()));
  const auto wait = std::chrono::microseconds(draw % (ceiling_us + 1));
  if (!backoff_timer_) backoff_timer_.emplace(w_.ioc);
  backoff_timer_->expires_after(wait);
  backing_off_ = true;
  ++pending_ops_;
  backoff_timer_->async_wait([keep = sink_->exchange_keepalive(), this,
                              a = attempt_](boost::system::error_code) { on_backoff_done(a); });
}

void Exchange::on_backoff_done(std::uint64_t attempt) {
  --pending_ops_;
  if (attempt != attempt_ || !active_ || !backing_off_) return;
  backing_off_ = false;
  now_ns_ = balancing::steady_now_ns();  // ejections and slow start as they are now
  dispatch();
}

void Exchange::report(Failure why) {
  finish();
  switch (why) {
    case Failure::connect:
      sink_->on_exchange_failed(502, "upstream connect failed", false);
      break;
    case Failure::connect_timeout:
      sink_->on_exchange_failed(504, "upstream connect timed out", false);
      break;
    case Failure::reset:
      sink_->on_exchange_failed(502, "upstream closed the connection before answering", false);
      break;
    case Failure::invalid:
      sink_->on_exchange_failed(502, "invalid response from upstream", false);
      break;
    case Failure::timeout:
      sink_->on_exchange_failed(504, "upstream timed out", false);
      break;
    case Failure::refused:
      sink_->on_exchange_failed(502, "upstream refused the stream", false);
      break;
    case Failure::per_try_timeout:
      sink_->on_exchange_failed(504, "upstream timed out (per-try timeout)", false);
      break;
    case Failure::status:
      // A retried answer, and no endpoint was left for the retry when it was due.
      sink_->on_exchange_failed(last_status_,
                                "upstream answered " + std::to_string(last_status_) +
                                    " and no endpoint was left to retry on",
                                last_status_ == 503);
      break;
  }
}

void Exchange::on_request_timeout() {
  if (!active_) return;
  note_outcome(true);
  drop_connection();
  report(Failure::timeout);
}

void Exchange::abort() {
  drop_connection();
  finish();
}

}  // namespace meridian::proxy
