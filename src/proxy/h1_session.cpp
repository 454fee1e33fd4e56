#include "meridian/proxy/h1_session.hpp"

#include <algorithm>
#include <charconv>
#include <span>

#include <boost/asio/write.hpp>

#include "meridian/core/log.hpp"
#include "meridian/http/forwarding.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t kHeadBufferInitial = 4 * 1024;
constexpr std::size_t kBodyBuffer = 64 * 1024;
constexpr std::size_t kResponseBuffer = 64 * 1024;  // also bounds an upstream response head
constexpr std::uint32_t kMaxResponseFields = 1000;
constexpr milliseconds kLingerTime{2000};
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// "<size in hex>\r\n" into `buf`; returns its length.
std::size_t chunk_line(char* buf, std::uint64_t n) {
  auto r = std::to_chars(buf, buf + 16, n, 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  return static_cast<std::size_t>(r.ptr - buf);
}

std::string address_text(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

std::uint64_t total_size(const http::BodySlices& slices) {
  std::uint64_t n = 0;
  for (auto s : slices)
    n += s.size();
  return n;
}

// Appends `slices` to `out`, framed as one chunk when `chunked`.
void frame_body(const http::BodySlices& slices, bool chunked, char* line,
                std::vector<asio::const_buffer>& out) {
  const std::uint64_t n = total_size(slices);
  if (n == 0) return;
  if (chunked) out.emplace_back(line, chunk_line(line, n));
  for (auto s : slices)
    out.emplace_back(s.data(), s.size());
  if (chunked) out.emplace_back(kCrlf.data(), kCrlf.size());
}

using BufferSpan = std::span<const asio::const_buffer>;

}  // namespace

H1Session::H1Session(WorkerContext& worker, tcp::socket socket, std::string listener_name)
    : w_(worker), client_(std::move(socket)), listener_name_(std::move(listener_name)) {
  ++w_.sessions;
  if (w_.node_connections != nullptr) w_.node_connections->fetch_add(1, std::memory_order_relaxed);
  link(w_.deadlines);
  req_bufs_.reserve(16);
  resp_bufs_.reserve(16);
}

H1Session::~H1Session() {
  unlink();
  if (w_.node_connections != nullptr) w_.node_connections->fetch_sub(1, std::memory_order_relaxed);
  if (--w_.sessions == 0 && w_.draining && w_.on_drained) w_.on_drained();
}

// ---------------------------------------------------------------------------------------
// Request head

void H1Session::start() {
  boost::system::error_code ec;
  client_.set_option(tcp::no_delay(true), ec);
  client_.non_blocking(true, ec);
  const auto peer = client_.remote_endpoint(ec);
  if (ec || !refresh_snapshot()) {
    close();
    return;
  }
  peer_ = address_text(peer.address());
  const auto& limits = snapshot_->config->limits;
  arm(net::Clock::now() + limits.header_timeout);
  req_.reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes});
  state_ = State::head;
  read_head();
}

bool H1Session::refresh_snapshot() {
  if (snapshot_ == w_.snapshot && listener_ != nullptr) return true;
  snapshot_ = w_.snapshot;
  const int index = snapshot_->listener_index(listener_name_);
  listener_ = index < 0 ? nullptr : &snapshot_->listeners[static_cast<std::size_t>(index)];
  return listener_ != nullptr;
}

void H1Session::read_head() {
  if (!in_.empty() && try_parse_head()) return;
  const std::uint64_t max_head = snapshot_->config->limits.max_request_header_bytes;
  if (in_.capacity() == 0) in_.reserve(kHeadBufferInitial);
  if (in_.tail_size() == 0) in_.compact();
  if (in_.tail_size() == 0) {
    if (in_.capacity() > max_head) {
      // Beast's header_limit normally fires first; this is the backstop for a full buffer.
      const bool line_complete = in_.data().find(kCrlf) != std::string_view::npos;
      reply(line_complete ? 431 : 414,
            line_complete ? "request header fields too large" : "request line too long", true);
      return;
    }
    in_.reserve(std::min<std::size_t>(in_.capacity() * 2, max_head + 1));
  }
  read_client();
}

bool H1Session::try_parse_head() {
  const std::size_t n = req_.parse_head(in_.data());
  if (const auto& err = req_.error()) {
    reply(err.status, err.reason, true);
    return true;
  }
  if (n == 0) return false;
  begin_exchange(n);
  return true;
}

void H1Session::read_client() {
  char* p = linger_buf_;
  std::size_t len = sizeof linger_buf_;
  if (state_ != State::closing) {
    if (in_.capacity() == 0) in_.reserve(kHeadBufferInitial);
    if (in_.tail_size() == 0) in_.compact();
    p = in_.tail();
    len = in_.tail_size();
  }
  client_read_pending_ = true;
  client_.async_read_some(asio::buffer(p, len),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            self->on_client_read(ec, n);
                          });
}

void H1Session::on_client_read(boost::system::error_code ec, std::size_t n) {
  client_read_pending_ = false;
  switch (state_) {
    case State::closed:
    case State::replying:
      return;
    case State::closing:
      if (ec || n == 0) {
        close();
      } else {
        read_client();  // discard what the client still sends until it closes (lingering close)
      }
      return;
    case State::idle:
    case State::head:
      if (ec) {
        close();  // the client went away; nothing to answer
        return;
      }
      in_.commit(n);
      if (state_ == State::idle || !head_bytes_seen_) {
        // The head of a new request began: header_timeout runs from its first byte on a
        // kept-alive connection, and from the accept on a new one (set in start()).
        request_start_ = net::Clock::now();
        if (state_ == State::idle) {
          arm(request_start_ + snapshot_->config->limits.header_timeout);
        }
        state_ = State::head;
        head_bytes_seen_ = true;
      }
      read_head();
      return;
    case State::exchange:
      if (ec) {
        // The client vanished mid-body: the request can never complete.
        drop_upstream();
        close();
        return;
      }
      in_.commit(n);
      pump_request();
      return;
  }
}

void H1Session::begin_exchange(std::size_t head_length) {
  state_ = State::exchange;
  const auto& head = req_.head();
  has_body_ = head.has_body();
  idempotent_ = http::is_idempotent(head.method);
  head_request_ = head.method == "HEAD";
  client_http10_ = head.version == 10;
  client_keep_alive_ = head.keep_alive && !w_.draining;
  close_after_ = !client_keep_alive_;
  body_consumed_ = 0;
  request_written_ = false;
  response_started_ = response_head_sent_ = response_done_ = response_chunked_ = false;
  tried_ = {};
  last_failure_ = UpstreamFailure::connect;

  if (!refresh_snapshot()) {
    reply(503, "listener is being removed", true);
    return;
  }
  route_ = listener_->router.match(head.host, head.path, head.method);
  if (route_ == nullptr) {
    in_.consume(head_length);
    // A body we will not read makes the connection unusable for a next request.
    reply(404, "no route matches this request", close_after_ || has_body_);
    return;
  }
  backend_ = &snapshot_->backends[route_->backend_index];
  retries_left_ = route_->retries;
  request_deadline_ = request_start_ + route_->timeout;
  arm(request_deadline_);

  // Serialise the upstream head now, while the parsed head's views into in_ are valid.
  std::string_view request_id = http::request_id_of(head);
  if (request_id.empty()) request_id = w_.request_ids.next();
  const auto& first_region = backend_->regions.front();
  const http::RequestForwarding fwd{peer_, "http", snapshot_->via, request_id,
                                    first_region.endpoints.front()->address};
  http::write_upstream_request(head, fwd, up_head_);
  const bool expect_continue = head.expect_continue && has_body_ && !client_http10_;
  in_.consume(head_length);  // the head's views are invalid from here on
  if (has_body_) in_.reserve(kBodyBuffer);

  if (expect_continue) {
    // The body is welcome: say so at once rather than making the client wait out its
    // expect timeout. The send buffer is empty at this point, so this write completes.
    boost::system::error_code ec;
    const auto n = client_.write_some(asio::buffer(kContinue), ec);
    if (ec || n != kContinue.size()) {
      close();
      return;
    }
  }
  dispatch();
}

// ---------------------------------------------------------------------------------------
// Upstream

void H1Session::dispatch() {
  // The foundation serves a backend from its first region; steering (SPEC 5) will hand the
  // session an ordered list of regions and this loop will walk it.
  const auto& region = backend_->regions.front();
  const auto* config = backend_->config;
  const auto* picked = balancing::pick_endpoint(
      region, config->balance, config->max_connections_per_endpoint, tried_, w_.rotation);
  if (picked == nullptr) {
    const bool close = close_after_ || (has_body_ && !req_.done());
    if (tried_.count == 0) {
      reply(503, "no eligible endpoint for backend " + config->name, close, "Retry-After: 1\r\n");
    } else {
      fail_attempt(last_failure_);
    }
    return;
  }
  ++attempt_;
  request_head_pending_ = true;
  in_flight_ = balancing::InFlightGuard(picked->get());
  resp_.reset({kResponseBuffer - 1, kMaxResponseFields, 0}, head_request_);
  uin_.consume(uin_.size());
  up_ = w_.pool.acquire(picked->get());
  if (up_) {
    start_upstream_streams();
    return;
  }
  up_ = std::make_shared<UpstreamConnection>(w_.ioc, *picked);
  ++w_.pool.connects;
  connecting_ = true;
  arm(std::min(net::Clock::now() + config->connect_timeout, request_deadline_));
  up_->socket.async_connect(
      (*picked)->target, [self = shared_from_this(), a = attempt_](boost::system::error_code ec) {
        self->on_connected(a, ec);
      });
}

void H1Session::on_connected(std::uint64_t attempt, boost::system::error_code ec) {
  if (attempt != attempt_ || state_ != State::exchange) return;
  connecting_ = false;
  arm(request_deadline_);
  if (ec) {
    log::debug("upstream ", in_flight_.get()->address, ": connect failed: ", ec.message());
    fail_attempt(UpstreamFailure::connect);
    return;
  }
  up_->socket.set_option(tcp::no_delay(true), ec);
  start_upstream_streams();
}

void H1Session::start_upstream_streams() {
  // The response read goes first: pump_request may end the attempt synchronously (a body
  // the codec refuses), which leaves the pending read to complete as a stale attempt.
  read_response();
  pump_request();
}

void H1Session::fail_attempt(UpstreamFailure why) {
  // SPEC 7: retry on another endpoint after a connect failure, a connect timeout or a reset
  // before any response byte -- never once the client has seen a byte, and only when the
  // request can be sent again: nothing of its body was consumed, and it is idempotent or
  // had no body at all (a connect failure sent nothing, so it is always safe).
  const bool nothing_sent =
      why == UpstreamFailure::connect || why == UpstreamFailure::connect_timeout;
  const bool retryable =
      !response_started_ && !response_head_sent_ && body_consumed_ == 0 &&
      (nothing_sent || (why == UpstreamFailure::reset && (idempotent_ || !has_body_)));
  if (in_flight_.get() != nullptr) tried_.add(in_flight_.get());
  last_failure_ = why;
  drop_upstream();
  if (retryable && retries_left_ > 0) {
    --retries_left_;
    dispatch();
    return;
  }
  if (response_head_sent_) {
    close();  // the client has part of a response; only a close tells it that it is cut
    return;
  }
  const bool close = close_after_ || (has_body_ && !req_.done());
  switch (why) {
    case UpstreamFailure::connect:
      reply(502, "upstream connect failed", close);
      break;
    case UpstreamFailure::connect_timeout:
      reply(504, "upstream connect timed out", close);
      break;
    case UpstreamFailure::reset:
      reply(502, "upstream closed the connection before answering", close);
      break;
    case UpstreamFailure::invalid:
      reply(502, "invalid response from upstream", true);
      break;
    case UpstreamFailure::timeout:
      reply(504, "upstream timed out", true);
      break;
  }
}

// ---------------------------------------------------------------------------------------
// Request body: client -> upstream

void H1Session::pump_request() {
  if (client_read_pending_ || !up_ || connecting_) return;  // a completion will call again
  req_bufs_.clear();
  if (request_head_pending_) req_bufs_.emplace_back(up_head_.data(), up_head_.size());
  std::size_t consumed = 0;
  if (has_body_ && !req_.done() && !in_.empty()) {
    req_slices_.clear();
    consumed = req_.parse_body(in_.data(), req_slices_);
    if (const auto& err = req_.error()) {
      drop_upstream();
      if (response_head_sent_) {
        close();
      } else {
        reply(err.status, err.reason, true);
      }
      return;
    }
    const bool chunked = req_.head().chunked;
    frame_body(req_slices_, chunked, req_chunk_line_, req_bufs_);
    if (req_.done() && chunked) req_bufs_.emplace_back(kLastChunk.data(), kLastChunk.size());
    if (consumed == 0 && in_.tail_size() == 0 && in_.capacity() > 0) {
      in_.compact();
      if (in_.tail_size() == 0) {
        drop_upstream();
        reply(400, "malformed request: chunk header too long", true);
        return;
      }
    }
  }
  if (req_bufs_.empty()) {
    in_.consume(consumed);
    if (!has_body_ || req_.done()) {
      request_written_ = true;
      if (response_done_) finish_exchange();
    } else {
      read_client();
    }
    return;
  }
  request_head_pending_ = false;
  asio::async_write(up_->socket, BufferSpan(req_bufs_),
                    [self = shared_from_this(), a = attempt_, consumed](
                        boost::system::error_code ec, std::size_t) {
                      self->on_request_written(a, consumed, ec);
                    });
}

void H1Session::on_request_written(std::uint64_t attempt, std::size_t consumed,
                                   boost::system::error_code ec) {
  if (attempt != attempt_ || state_ != State::exchange) return;
  if (ec) {
    // The upstream stopped reading. If it is answering (an early response), the response
    // stream finishes the exchange; otherwise this is a reset before any response byte.
    if (!response_started_) fail_attempt(UpstreamFailure::reset);
    return;
  }
  in_.consume(consumed);
  body_consumed_ += consumed;
  pump_request();
}

// ---------------------------------------------------------------------------------------
// Response: upstream -> client

void H1Session::read_response() {
  if (uin_.capacity() == 0) uin_.reserve(kResponseBuffer);
  if (uin_.tail_size() == 0) uin_.compact();
  if (uin_.tail_size() == 0) {
    fail_attempt(UpstreamFailure::invalid);  // a response head or chunk line over 64 KiB
    return;
  }
  up_->socket.async_read_some(
      asio::buffer(uin_.tail(), uin_.tail_size()),
      [self = shared_from_this(), a = attempt_](boost::system::error_code ec, std::size_t n) {
        self->on_response_read(a, ec, n);
      });
}

void H1Session::on_response_read(std::uint64_t attempt, boost::system::error_code ec,
                                 std::size_t n) {
  if (attempt != attempt_ || state_ != State::exchange) return;
  if (ec) {
    if (ec == asio::error::eof && resp_.head_done() && !resp_.done()) {
      resp_.finish_on_eof();  // a close-delimited body ends here, others are cut short
      if (!resp_.error()) {
        pump_response(false);
        return;
      }
    }
    fail_attempt(response_started_ ? UpstreamFailure::invalid : UpstreamFailure::reset);
    return;
  }
  uin_.commit(n);
  response_started_ = true;
  if (resp_.head_done()) {
    pump_response(false);
    return;
  }
  while (true) {
    const std::size_t head_length = resp_.parse_head(uin_.data());
    if (resp_.error()) {
      fail_attempt(UpstreamFailure::invalid);
      return;
    }
    if (head_length == 0) {
      read_response();
      return;
    }
    const unsigned status = resp_.head().status;
    if (status >= 100 && status < 200) {
      if (status == 101) {  // no Upgrade is forwarded yet (WebSocket comes with the edge issue)
        fail_attempt(UpstreamFailure::invalid);
        return;
      }
      // Interim answers (103 Early Hints, a 100 the origin sent anyway) are dropped: the
      // client already had its 100 Continue from meridian.
      uin_.consume(head_length);
      resp_.reset({kResponseBuffer - 1, kMaxResponseFields, 0}, head_request_);
      continue;
    }
    on_response_head(head_length);
    return;
  }
}

void H1Session::on_response_head(std::size_t head_length) {
  const auto& head = resp_.head();
  if (head.has_body && !head.content_length) {
    // A chunked or close-delimited upstream body: HTTP/1.1 clients get it re-chunked (and
    // keep their connection), HTTP/1.0 clients get it delimited by our close.
    if (client_http10_) {
      close_after_ = true;
    } else {
      response_chunked_ = true;
    }
  }
  // The origin answered before the whole request body arrived: the rest of the body would
  // be read as a next request, so this connection ends with this response.
  if (has_body_ && !req_.done()) close_after_ = true;
  if (w_.draining) close_after_ = true;
  const bool debug = snapshot_->config->debug_headers;
  const auto* endpoint = in_flight_.get();
  const http::ResponseForwarding fwd{
      snapshot_->via,
      response_chunked_,
      close_after_,
      client_http10_ && !close_after_,
      debug ? std::string_view(endpoint->region) : std::string_view{},
      debug ? std::string_view(endpoint->address) : std::string_view{}};
  http::write_downstream_response(head, fwd, down_head_);
  uin_.consume(head_length);
  pump_response(true);
}

void H1Session::pump_response(bool with_head) {
  resp_bufs_.clear();
  if (with_head) resp_bufs_.emplace_back(down_head_.data(), down_head_.size());
  std::size_t consumed = 0;
  if (!resp_.done() && !uin_.empty()) {
    resp_slices_.clear();
    consumed = resp_.parse_body(uin_.data(), resp_slices_);
    if (resp_.error()) {
      fail_attempt(UpstreamFailure::invalid);
      return;
    }
    frame_body(resp_slices_, response_chunked_, resp_chunk_line_, resp_bufs_);
  }
  const bool finished = resp_.done();
  if (finished && response_chunked_) {
    resp_bufs_.emplace_back(kLastChunk.data(), kLastChunk.size());
  }
  if (resp_bufs_.empty()) {
    uin_.consume(consumed);
    if (finished) {
      response_done_ = true;
      finish_exchange();
    } else {
      read_response();
    }
    return;
  }
  response_head_sent_ = true;
  asio::async_write(client_, BufferSpan(resp_bufs_),
                    [self = shared_from_this(), a = attempt_, consumed, finished](
                        boost::system::error_code ec, std::size_t) {
                      self->on_response_written(a, consumed, finished, ec);
                    });
}

void H1Session::on_response_written(std::uint64_t attempt, std::size_t consumed, bool finished,
                                    boost::system::error_code ec) {
  if (attempt != attempt_ || state_ != State::exchange) return;
  if (ec) {
    drop_upstream();
    close();  // the client went away
    return;
  }
  uin_.consume(consumed);
  if (finished) {
    response_done_ = true;
    finish_exchange();
  } else if (!uin_.empty() && consumed > 0) {
    pump_response(false);
  } else {
    read_response();
  }
}

void H1Session::finish_exchange() {
  if (!response_done_) return;
  const bool request_complete = !has_body_ || req_.done();
  // The last request bytes are still being written; on_request_written comes back here.
  if (request_complete && !request_written_ && up_) return;
  const bool reusable =
      up_ && request_complete && request_written_ && resp_.head().keep_alive && uin_.empty();
  if (reusable) {
    ++up_->requests;
    const auto& keepalive = backend_->config->keepalive;
    w_.pool.release(std::move(up_), keepalive.max_idle_per_endpoint, keepalive.idle_timeout);
    up_.reset();
    in_flight_.reset();
    ++attempt_;
  } else {
    drop_upstream();
  }
  if (close_after_ || !request_complete || w_.draining) {
    linger_close();
    return;
  }
  next_request();
}

// ---------------------------------------------------------------------------------------
// Local answers, next request, closing

void H1Session::reply(unsigned status, std::string_view cause, bool close,
                      std::string_view extra_headers) {
  drop_upstream();
  if (close) close_after_ = true;
  http::write_local_reply(status, cause, close_after_, snapshot_ ? snapshot_->via : "",
                          extra_headers, down_head_);
  state_ = State::replying;
  response_head_sent_ = true;
  arm(net::Clock::now() + snapshot_->config->limits.idle_timeout);
  asio::async_write(client_, asio::buffer(down_head_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      if (self->state_ != State::replying) return;
                      if (ec) {
                        self->close();
                      } else {
                        self->after_local_reply();
                      }
                    });
}

void H1Session::after_local_reply() {
  if (close_after_ || w_.draining) {
    linger_close();
  } else {
    next_request();
  }
}

void H1Session::next_request() {
  const auto& limits = snapshot_->config->limits;
  req_.reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes});
  route_ = nullptr;
  backend_ = nullptr;
  uin_.release_if_empty();
  if (!in_.empty()) {
    // A pipelined request is already here.
    state_ = State::head;
    head_bytes_seen_ = true;
    request_start_ = net::Clock::now();
    arm(request_start_ + limits.header_timeout);
    read_head();
    return;
  }
  state_ = State::idle;
  head_bytes_seen_ = false;
  arm(net::Clock::now() + limits.idle_timeout);
  if (in_.capacity() > kHeadBufferInitial) {
    // A body or a large head grew the buffer; an idle connection goes back to the small one.
    in_.release_if_empty();
  }
  read_client();
}

void H1Session::drop_upstream() {
  if (up_) {
    boost::system::error_code ignored;
    up_->socket.close(ignored);
    up_.reset();
  }
  in_flight_.reset();
  connecting_ = false;
  ++attempt_;
}

void H1Session::linger_close() {
  // Half-close and read until the client closes (or kLingerTime), so that the response is
  // not destroyed by a reset caused by request bytes we never read (RFC 9112 9.6).
  drop_upstream();
  state_ = State::closing;
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    close();
    return;
  }
  arm(net::Clock::now() + kLingerTime);
  if (!client_read_pending_) read_client();
}

void H1Session::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  clear();
  drop_upstream();
  boost::system::error_code ignored;
  client_.close(ignored);
}

void H1Session::on_deadline() {
  switch (state_) {
    case State::head:
      if (head_bytes_seen_) {
        reply(408, "request head not received within header_timeout", true);
      } else {
        close();  // a connection that never sent a byte gets no answer, as in nginx
      }
      return;
    case State::exchange:
      if (net::Clock::now() >= request_deadline_) {
        if (response_head_sent_) {
          close();
        } else if (has_body_ && !req_.done()) {
          reply(408, "request body not received within the route timeout", true);
        } else {
          fail_attempt(UpstreamFailure::timeout);
        }
      } else if (connecting_) {
        fail_attempt(UpstreamFailure::connect_timeout);
      } else {
        arm(request_deadline_);
      }
      return;
    case State::idle:
    case State::replying:
    case State::closing:
    case State::closed:
      close();
      return;
  }
}

void H1Session::on_drain() {
  // Idle connections close now; a request in progress finishes and its response carries
  // Connection: close (begin_exchange and on_response_head look at w_.draining).
  if (state_ == State::idle || (state_ == State::head && !head_bytes_seen_)) close();
}

}  // namespace meridian::proxy
