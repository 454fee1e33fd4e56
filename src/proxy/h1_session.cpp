#include "meridian/proxy/h1_session.hpp"

#include <algorithm>
#include <charconv>
#include <span>

#include <boost/asio/write.hpp>

#include "meridian/core/log.hpp"
#include "meridian/http/client_address.hpp"
#include "meridian/http/forwarding.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

// The first read buffer of a connection, grown (doubling, up to the head limit) for larger
// heads; 1 KiB holds most request heads (nginx's client_header_buffer_size is 1k too) and
// keeps a connection small.
constexpr std::size_t kHeadBufferInitial = 1024;
constexpr std::size_t kBodyBuffer = 64 * 1024;
constexpr milliseconds kLingerTime{2000};
// A keep-alive connection idle this long gives its buffers back (see shrink_while_idle).
constexpr milliseconds kIdleShrinkAfter{100};
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
    : w_(worker),
      client_(std::move(socket)),
      listener_name_(std::move(listener_name)),
      exchange_(worker, *this) {
  ++w_.sessions;
  if (w_.node_connections != nullptr) w_.node_connections->fetch_add(1, std::memory_order_relaxed);
  link(w_.deadlines);
}

H1Session::~H1Session() {
  unlink();
  if (connection_counted_) w_.counters->connection_closed(connections_series_);
  exchange_.abort();
  if (w_.node_connections != nullptr) w_.node_connections->fetch_sub(1, std::memory_order_relaxed);
  if (--w_.sessions == 0 && w_.draining && w_.on_drained) w_.on_drained();
}

// ---------------------------------------------------------------------------------------
// Request head

void H1Session::start(const tcp::endpoint& peer) {
  boost::system::error_code ec;
  client_.set_option(tcp::no_delay(true), ec);
  if (!refresh_snapshot()) {
    close();
    return;
  }
  peer_address_ = peer.address();
  peer_ = address_text(peer_address_);
  if (w_.counters != nullptr) {
    connections_series_ = listener_->connections_series;
    w_.counters->connection_opened(connections_series_);
    connection_counted_ = true;
  }
  const auto& limits = snapshot_->config->limits;
  arm(net::Clock::now() + limits.header_timeout);
  req_.reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes});
  state_ = State::head;
  read_head();
}

bool H1Session::refresh_snapshot() {
  if (snapshot_ == w_.snapshot && listener_ != nullptr) return true;
  const int index = w_.snapshot->listener_index(listener_name_);
  if (index < 0) {
    // A reload removed this connection's listener. A request already here is still served
    // under the configuration the connection had, and the connection ends after it (SPEC 9:
    // no request fails because of a reload). A connection accepted just before the removal
    // has no configuration to be served with.
    if (listener_ == nullptr) {
      snapshot_ = w_.snapshot;
      return false;
    }
    listener_removed_ = true;
    return true;
  }
  snapshot_ = w_.snapshot;
  listener_ = &snapshot_->listeners[static_cast<std::size_t>(index)];
  return true;
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
  // Lingering (closing) reads are discarded: they go to the same buffer, never committed.
  if (state_ == State::closing) in_.consume(in_.size());
  if (in_.capacity() == 0) in_.reserve(kHeadBufferInitial);
  if (in_.tail_size() == 0) in_.compact();
  client_read_pending_ = true;
  client_.async_read_some(asio::buffer(in_.tail(), in_.tail_size()),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            self->on_client_read(ec, n);
                          });
}

void H1Session::on_client_read(boost::system::error_code ec, std::size_t n) {
  client_read_pending_ = false;
  if (waiting_readable_ && state_ == State::idle && ec == asio::error::operation_aborted) {
    wait_readable();  // shrink_while_idle() cancelled the read to drop its buffer
    return;
  }
  waiting_readable_ = false;  // the read completed before the cancel reached it
  switch (state_) {
    case State::closed:
    case State::replying:
    case State::limiting:  // no read is started while the rate limit decides
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
        begin_request(net::Clock::now());
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
        exchange_.abort();
        close();
        return;
      }
      in_.commit(n);
      pump_request_body();
      return;
  }
}

void H1Session::begin_exchange(std::size_t head_length) {
  state_ = State::exchange;
  const auto& head = req_.head();
  has_body_ = head.has_body();
  client_http10_ = head.version == 10;
  client_keep_alive_ = head.keep_alive && !w_.draining;
  close_after_ = !client_keep_alive_;
  body_wanted_ = false;
  body_given_consumed_ = 0;
  response_head_sent_ = response_chunked_ = false;
  limit_ = nullptr;
  limit_headers_.clear();
  request_routed_ = true;

  if (!refresh_snapshot()) {
    reply(503, "listener is being removed", true);
    return;
  }
  if (listener_removed_) close_after_ = true;
  // SPEC 3 step 2, once per request: the access log, GeoIP and rate limit keys all use it.
  const auto client = http::settle_client_address(peer_address_, head,
                                                  snapshot_->config->client_ip.trusted_proxies);
  if (logging()) capture_log_fields(head, client);
  const auto* route = listener_->router.match(head.host, head.path, head.method);
  if (route == nullptr) {
    in_.consume(head_length);
    // A body we will not read makes the connection unusable for a next request.
    reply(404, "no route matches this request", close_after_ || has_body_);
    return;
  }
  const auto& backend = snapshot_->backends[route->backend_index];
  request_deadline_ = request_start_ + route->timeout;
  arm(request_deadline_);

  // Serialise the upstream head now, while the parsed head's views into in_ are valid.
  std::string_view request_id = http::request_id_of(head);
  if (request_id.empty()) request_id = w_.request_ids.next();
  route_ = route;
  const auto route_index = static_cast<std::size_t>(route - listener_->config->routes.data());
  route_series_ = &listener_->series[route_index];
  if (logging()) log_request_id_.assign(request_id);
  const http::RequestForwarding fwd{peer_, "http", snapshot_->via, request_id,
                                    backend.regions.front().endpoints.front()->address};
  http::write_upstream_request(head, fwd, exchange_.request_head());
  limit_ = listener_->limits[route_index].get();
  ExchangeRequest& request = exchange_request_;
  request = ExchangeRequest{};
  request.backend = &backend;
  request.node_location = &snapshot_->config->node.location;
  request.retries = route->retries;
  request.idempotent = http::is_idempotent(head.method);
  request.has_body = has_body_;
  request.chunked_body = head.chunked;
  request.head_request = head.method == "HEAD";
  request.region_series = &snapshot_->region_series[route->backend_index];
  expect_continue_ = head.expect_continue && has_body_ && !client_http10_;
  const bool locate = snapshot_->geo && backend.uses_client_location;
  if (locate || limit_ != nullptr) {
    if (locate) request.client = snapshot_->geo->lookup(client);
    if (limit_ != nullptr) {
      const auto key = ratelimit::client_key(limit_->config, head, client, key_buffer_);
      if (limit_->config.scope == config::RateLimitScope::global) {
        store_key_ = ratelimit::global_key(*limit_, key);
      } else {
        // Node-wide and synchronous: decided now, while the key's views are valid.
        const auto decision = ratelimit::take_local(*limit_, snapshot_->buckets.get(), key,
                                                    balancing::steady_now_ns());
        in_.consume(head_length);
        on_rate_limit_decision(decision);
        return;
      }
    }
  }
  in_.consume(head_length);  // the head's views are invalid from here on
  if (limit_ == nullptr) {
    start_exchange();
    return;
  }
  // scope: global -- one round trip to the store, answered within its timeout.
  state_ = State::limiting;
  auto* store = w_.redis.get();
  if (store == nullptr) {
    ratelimit::StoreOutcome none;
    none.error = "no rate_limit_store";
    on_store_outcome(++limit_tag_, none);
    return;
  }
  store->take(store_key_, limit_->quota, *this, shared_from_this(), ++limit_tag_);
}

void H1Session::on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) {
  if (tag != limit_tag_ || state_ != State::limiting) return;  // abandoned, or closed
  state_ = State::exchange;
  if (outcome.ok) {
    on_rate_limit_decision(
        ratelimit::gcra_decision(outcome.allowed, outcome.ahead_ns, limit_->quota));
    return;
  }
  // SPEC 8: the store failed or answered late; on_error decides, without RateLimit headers
  // (there is no count to report).
  log::debug("rate limit ", limit_->name, ": store unavailable (", outcome.error, ")");
  const auto& store = snapshot_->config->rate_limit_store;
  if (store && store->on_error == config::OnError::deny) {
    reply(503, "rate limit store unavailable", close_after_ || has_body_);
    return;
  }
  start_exchange();
}

void H1Session::on_rate_limit_decision(const ratelimit::Decision& d) {
  state_ = State::exchange;
  auto line = [this](std::string_view name, std::uint64_t value) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, value);
    limit_headers_.append(name);
    limit_headers_.append(digits, r.ptr);
    limit_headers_.append(kCrlf);
  };
  line("RateLimit-Limit: ", d.limit);
  line("RateLimit-Remaining: ", d.remaining);
  line("RateLimit-Reset: ", d.reset_s);
  if (d.allowed) {
    start_exchange();
    return;
  }
  limit_->limited.fetch_add(1, std::memory_order_relaxed);
  line("Retry-After: ", d.retry_after_s);
  // A body we will not read makes the connection unusable for a next request.
  reply(429, "rate limit exceeded", close_after_ || has_body_, limit_headers_);
}

void H1Session::start_exchange() {
  if (has_body_) in_.reserve(kBodyBuffer);
  if (!expect_continue_) {
    exchange_.start(exchange_request_);
    return;
  }
  // The body is welcome: say so at once rather than making the client wait out its expect
  // timeout, and start the exchange once that is written (the socket may still hold the
  // end of a previous response, so the write may not complete at once).
  continue_pending_ = true;
  asio::async_write(client_, asio::buffer(kContinue),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->continue_pending_ = false;
                      if (self->state_ != State::exchange) return;
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->exchange_.start(self->exchange_request_);
                    });
}

// ---------------------------------------------------------------------------------------
// Request body: client -> exchange

void H1Session::on_request_body_wanted() {
  in_.consume(body_given_consumed_);  // the exchange wrote the last piece
  body_given_consumed_ = 0;
  body_wanted_ = true;
  pump_request_body();
}

void H1Session::pump_request_body() {
  if (!body_wanted_ || client_read_pending_ || state_ != State::exchange) return;
  if (req_.done()) {
    // Everything was handed over already (an exchange that starts over asks again).
    body_wanted_ = false;
    req_slices_.clear();
    exchange_.send_request_body(req_slices_, true);
    return;
  }
  if (!in_.empty()) {
    req_slices_.clear();
    const std::size_t consumed = req_.parse_body(in_.data(), req_slices_);
    if (const auto& err = req_.error()) {
      exchange_.abort();
      if (response_head_sent_) {
        close();
      } else {
        reply(err.status, err.reason, true);
      }
      return;
    }
    if (!req_slices_.empty() || req_.done()) {
      body_wanted_ = false;
      body_given_consumed_ = consumed;
      exchange_.send_request_body(req_slices_, req_.done());
      return;
    }
    in_.consume(consumed);  // chunk framing only
    if (in_.tail_size() == 0) in_.compact();
    if (in_.tail_size() == 0) {
      exchange_.abort();
      if (response_head_sent_) {
        close();  // an early response is on its way: no second answer on top of it
      } else {
        reply(400, "malformed request: chunk header too long", true);
      }
      return;
    }
  }
  read_client();
}

// ---------------------------------------------------------------------------------------
// Response: exchange -> client

void H1Session::on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                                 bool done) {
  resp_bufs_.clear();
  if (head != nullptr) {
    if (head->has_body && !head->content_length) {
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
    if (!request_complete()) close_after_ = true;
    if (w_.draining) close_after_ = true;
    const bool debug = snapshot_->config->debug_headers;
    const auto* endpoint = exchange_.endpoint();
    const bool named = debug && endpoint != nullptr;
    const http::ResponseForwarding fwd{
        snapshot_->via,
        response_chunked_,
        close_after_,
        client_http10_ && !close_after_,
        named ? std::string_view(endpoint->region) : std::string_view{},
        named ? std::string_view(endpoint->address) : std::string_view{},
        limit_headers_};
    http::write_downstream_response(*head, fwd, down_head_);
    resp_bufs_.emplace_back(down_head_.data(), down_head_.size());
    response_status_ = head->status;
  }
  frame_body(body, response_chunked_, resp_chunk_line_, resp_bufs_);
  if (done && response_chunked_) resp_bufs_.emplace_back(kLastChunk.data(), kLastChunk.size());
  if (resp_bufs_.empty()) {
    exchange_.response_delivered();
    return;
  }
  response_head_sent_ = true;
  for (const auto& b : resp_bufs_)
    bytes_out_ += b.size();
  asio::async_write(client_, BufferSpan(resp_bufs_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      if (self->state_ != State::exchange) return;
                      if (ec) {
                        self->exchange_.abort();
                        self->close();  // the client went away
                        return;
                      }
                      self->exchange_.response_delivered();
                    });
}

void H1Session::on_exchange_done() {
  in_.consume(body_given_consumed_);  // the last body piece is written too
  body_given_consumed_ = 0;
  record_request(response_status_);
  if (close_after_ || !request_complete() || w_.draining) {
    linger_close();
    return;
  }
  next_request();
}

void H1Session::on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) {
  // The body piece the exchange held is spent either way; left in in_, it would be parsed as
  // the next request on this connection.
  in_.consume(body_given_consumed_);
  body_given_consumed_ = 0;
  if (response_head_sent_) {
    close();  // the client has part of a response; only a close tells it that it is cut
    return;
  }
  if (retry_after) limit_headers_.append("Retry-After: 1\r\n");
  reply(status, cause, close_after_ || !request_complete(), limit_headers_);
}

// ---------------------------------------------------------------------------------------
// Local answers, next request, closing

void H1Session::reply(unsigned status, std::string_view cause, bool close,
                      std::string_view extra_headers) {
  exchange_.abort();
  if (close) close_after_ = true;
  http::write_local_reply(status, cause, close_after_, snapshot_ ? snapshot_->via : "",
                          extra_headers, down_head_);
  bytes_out_ = down_head_.size();
  record_request(status);
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
  if (!in_.empty()) {
    // A pipelined request is already here.
    state_ = State::head;
    head_bytes_seen_ = true;
    begin_request(net::Clock::now());
    arm(request_start_ + limits.header_timeout);
    read_head();
    return;
  }
  state_ = State::idle;
  head_bytes_seen_ = false;
  const auto now = net::Clock::now();
  idle_until_ = now + limits.idle_timeout;
  idle_shrunk_ = false;
  arm(std::min(idle_until_, now + kIdleShrinkAfter));
  if (in_.capacity() > kHeadBufferInitial) {
    // A body or a large head grew the buffer; an idle connection goes back to the small one.
    in_.release_if_empty();
  }
  read_client();
}

void H1Session::linger_close() {
  // Half-close and read until the client closes (or kLingerTime), so that the response is
  // not destroyed by a reset caused by request bytes we never read (RFC 9112 9.6). That can
  // only happen when the client may still be sending: a body not read to its end, or bytes
  // of a next request already here. After a complete request and nothing more, a plain
  // close sends FIN behind the response (nginx's lingering_close heuristic), which saves
  // the shutdown and the read that waits for the client's FIN on every such connection.
  exchange_.abort();
  if (request_complete() && in_.empty() && !client_read_pending_ && state_ != State::head) {
    close();
    return;
  }
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
  // A request whose head was complete ends here without its response: cut short after its
  // head (the status sent), or never answered because the client left (499, as nginx logs).
  if (request_active_ && request_routed_) {
    record_request(response_head_sent_ ? response_status_ : 499);
  }
  state_ = State::closed;
  clear();
  exchange_.abort();
  boost::system::error_code ignored;
  client_.close(ignored);
}

void H1Session::begin_request(net::Clock::time_point now) {
  request_start_ = now;
  request_active_ = true;
  request_routed_ = false;
  route_ = nullptr;
  route_series_ = nullptr;
  response_status_ = 0;
  bytes_out_ = 0;
  exchange_.forget_attempts();
  log_method_.clear();
  log_target_.clear();
  log_host_.clear();
  log_user_agent_.clear();
  log_referer_.clear();
  log_request_id_.clear();
  log_client_.clear();
}

void H1Session::capture_log_fields(const http::RequestHead& head, const asio::ip::address& client) {
  // Copied (into buffers reused from request to request): the head's views die with in_.
  log_method_.assign(head.method);
  log_target_.assign(head.target);
  log_host_.assign(head.host);
  log_version_ = head.version;
  const auto* ua = head.find("user-agent");
  log_user_agent_.assign(ua != nullptr ? ua->value : std::string_view{});
  const auto* referer = head.find("referer");
  log_referer_.assign(referer != nullptr ? referer->value : std::string_view{});
  log_client_ = client == peer_address_ ? peer_ : address_text(client);
}

void H1Session::record_request(unsigned status) {
  if (!request_active_ || listener_ == nullptr) return;
  request_active_ = false;
  const auto duration = net::Clock::now() - request_start_;
  const auto duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
  const int region = exchange_.region_index();
  if (w_.counters != nullptr) {
    const metrics::SeriesId id = route_series_ == nullptr ? listener_->no_route_series
                                 : region >= 0
                                     ? route_series_->regions[static_cast<std::size_t>(region)]
                                     : route_series_->local;
    w_.counters->record_request(id, status, duration_ns);
  }
  if (!logging()) return;
  accesslog::Entry e;
  e.time = std::chrono::system_clock::now();
  e.client = log_client_.empty() ? std::string_view(peer_) : std::string_view(log_client_);
  e.method = log_method_;
  e.host = log_host_;
  e.target = log_target_;
  e.path = std::string_view(log_target_).substr(0, log_target_.find('?'));
  e.version = log_version_;
  e.status = status;
  e.bytes_out = bytes_out_;
  e.duration_ms = static_cast<double>(duration_ns) / 1e6;
  e.listener = listener_->config->name;
  if (route_ != nullptr) {
    e.route = route_->name;
    e.backend = route_->backend;
    if (region >= 0) {
      const auto& backend = snapshot_->backends[route_->backend_index];
      e.region = backend.regions[static_cast<std::size_t>(region)].config->name;
    }
    if (const auto* endpoint = exchange_.last_endpoint()) e.endpoint = endpoint->address;
  }
  e.request_id = log_request_id_;
  e.user_agent = log_user_agent_;
  e.referer = log_referer_;
  accesslog::format(snapshot_->config->access_log.format, e, w_.log_time, w_.log_line);
  w_.access_log->push(w_.index, w_.log_line);
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
    case State::limiting:
      if (net::Clock::now() < request_deadline_) {
        arm(request_deadline_);
      } else {
        ++limit_tag_;  // the store's answer, when it comes, is for nobody
        reply(504, "rate limit store did not answer within the route timeout", true);
      }
      return;
    case State::exchange:
      if (net::Clock::now() < request_deadline_) {
        arm(request_deadline_);
      } else if (response_head_sent_ || continue_pending_) {
        close();
      } else if (!request_complete()) {
        reply(408, "request body not received within the route timeout", true);
      } else {
        exchange_.on_request_timeout();  // answers 504 through on_exchange_failed()
      }
      return;
    case State::idle:
      if (!idle_shrunk_ && net::Clock::now() < idle_until_) {
        shrink_while_idle();
        arm(idle_until_);
        return;
      }
      close();
      return;
    case State::replying:
    case State::closing:
    case State::closed:
      close();
      return;
  }
}

void H1Session::shrink_while_idle() {
  // A keep-alive connection that stayed quiet past kIdleShrinkAfter gives back what only a
  // request needs: the read buffer (its pending read is cancelled and replaced by a wait for
  // readability, which holds no buffer) and the heads' and write lists' storage. Busy
  // connections never get here, so the request path keeps its buffers and its one read per
  // request; an idle one pays one epoll re-arm when it wakes up.
  idle_shrunk_ = true;
  std::string().swap(down_head_);
  std::vector<asio::const_buffer>().swap(resp_bufs_);
  exchange_.release_idle_memory();
  if (client_read_pending_ && in_.empty()) {
    waiting_readable_ = true;
    boost::system::error_code ignored;
    client_.cancel(ignored);  // the read completes with operation_aborted: on_client_read
  }
}

void H1Session::wait_readable() {
  waiting_readable_ = false;
  in_.release_if_empty();
  client_read_pending_ = true;
  client_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->client_read_pending_ = false;
                       if (self->state_ != State::idle) return;
                       if (ec) {
                         self->close();
                         return;
                       }
                       self->read_client();  // the bytes are there: the read completes at once
                     });
}

void H1Session::on_drain() {
  // Idle connections close now; a request in progress finishes and its response carries
  // Connection: close (begin_exchange and on_response_head look at w_.draining).
  if (state_ == State::idle || (state_ == State::head && !head_bytes_seen_)) close();
}

}  // namespace meridian::proxy
