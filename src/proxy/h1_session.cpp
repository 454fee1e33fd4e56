#include "meridian/proxy/h1_session.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <span>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/write.hpp>

#include "meridian/core/log.hpp"
#include "meridian/http/client_address.hpp"
#include "meridian/http/forwarding.hpp"
#include "meridian/http/h1/chunked.hpp"
#include "meridian/net/proxy_protocol.hpp"

#include "proxy/request_flow.hpp"

namespace meridian::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

// A connection waiting for a request keeps a read pending, and so a request's state and
// buffer, this long at most; then it gives them back and waits for readability without
// one (see wait_for_request). The wait costs an epoll_ctl each time it starts (Asio re-arms
// the descriptor for a wait), so connections that are busy read directly.
constexpr milliseconds kHoldBufferFor{100};
// The first read buffer of a connection, grown (doubling, up to the head limit) for larger
// heads; 1 KiB holds most request heads (nginx's client_header_buffer_size is 1k too) and
// keeps a connection small.
constexpr std::size_t kHeadBufferInitial = 1024;
constexpr std::size_t kBodyBuffer = 64 * 1024;
constexpr milliseconds kLingerTime{2000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

using BufferSpan = std::span<const asio::const_buffer>;

}  // namespace

H1Session::H1Session(WorkerContext& worker, net::TcpSocket socket, const std::string* listener_name)
    : w_(worker), client_(std::move(socket)), listener_name_(listener_name) {
  ++w_.sessions;
  if (w_.node_connections != nullptr) w_.node_connections->fetch_add(1, std::memory_order_relaxed);
  link(w_.deadlines);
}

H1Session::~H1Session() {
  unlink();
  if (connection_counted_) w_.counters->connection_closed(connections_series_);
  // Every operation of the request's exchange held this session alive: none is pending.
  if (rq_ != nullptr) give_back_request();
  if (w_.node_connections != nullptr) w_.node_connections->fetch_sub(1, std::memory_order_relaxed);
  if (--w_.sessions == 0 && w_.draining && w_.on_drained) w_.on_drained();
}

// ---------------------------------------------------------------------------------------
// Request head

void H1Session::start(const tcp::endpoint& peer) {
  boost::system::error_code ec;
  client_.socket().set_option(tcp::no_delay(true), ec);
  if (!refresh_snapshot()) {
    close();
    return;
  }
  peer_address_ = net::CompactAddress(peer.address());
  if (w_.counters != nullptr) {
    connections_series_ = listener().connections_series;
    w_.counters->connection_opened(connections_series_);
    connection_counted_ = true;
  }
  state_ = State::head;
  proxy_header_pending_ = listener().config->proxy_protocol != config::ProxyProtocol::off;
  // Decided once per connection: a reload that adds or removes tls on a kept listener
  // applies to new connections only (no request fails because of a reload).
  tls_pending_ = listener().tls != nullptr;
  // Most clients send their request with or right after the handshake: read it at once
  // (the read usually completes without waiting).
  borrow_request();
  wait_for_request(net::Clock::now() + snapshot_->config->limits.header_timeout);
}

void H1Session::wait_for_request(net::Clock::time_point until) {
  const auto now = net::Clock::now();
  wait_until_ = until;
  arm(rq_ != nullptr ? std::min(until, now + kHoldBufferFor) : until);
  read_client();
}

void H1Session::give_back_buffer() {
  // The connection stayed quiet past kHoldBufferFor: its pending read is cancelled (which
  // completes in on_client_read with operation_aborted) so that the request state and the
  // buffer can go back to the worker, and the connection waits for readability instead.
  if (rq_ == nullptr || !client_read_pending_ || !rq_->in.empty()) return;
  shrinking_ = true;
  client_.cancel();
}

bool H1Session::refresh_snapshot() {
  if (snapshot_ == w_.snapshot && listener_index_ >= 0) return true;
  const int index = w_.snapshot->listener_index(*listener_name_);
  if (index < 0) {
    // A reload removed this connection's listener. A request already here is still served
    // under the configuration the connection had, and the connection ends after it (no
    // request fails because of a reload). A connection accepted just before the removal has
    // no configuration to be served with.
    if (listener_index_ < 0) {
      snapshot_ = w_.snapshot;
      return false;
    }
    listener_removed_ = true;
    return true;
  }
  snapshot_ = w_.snapshot;
  listener_index_ = index;
  return true;
}

void H1Session::read_head() {
  if (proxy_header_pending_ && !read_proxy_header()) return;  // closed: a bad header
  if (!proxy_header_pending_) {  // else: part of a PROXY header, which is not HTTP yet
    if (tls_pending_) {
      tls_pending_ = false;
      start_tls();  // snapshot_ is still the one start() pinned: listener().tls is set
      return;
    }
    bool preface_pending = false;
    if (!served_ && !client_.is_tls()) {
      // A cleartext connection may begin with the HTTP/2 preface (prior knowledge, RFC
      // 9113 3.3), as Envoy's codec detection and HAProxy's "proto h2" accept it.
      constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
      const auto seen = rq_->in.data();
      const auto n = std::min(seen.size(), kPreface.size());
      if (seen.substr(0, n) == kPreface.substr(0, n)) {
        if (n == kPreface.size()) {
          hand_over_to_h2();
          return;
        }
        preface_pending = n != 0;  // read the rest of it
      } else {
        served_ = true;
      }
    }
    if (!preface_pending && !rq_->in.empty() && try_parse_head()) return;
  }
  const std::uint64_t max_head = snapshot_->config->limits.max_request_header_bytes;
  if (rq_->in.capacity() == 0) rq_->in.reserve(kHeadBufferInitial);
  if (rq_->in.tail_size() == 0) rq_->in.compact();
  if (rq_->in.tail_size() == 0) {
    if (rq_->in.capacity() > max_head) {
      // Beast's header_limit normally fires first; this is the backstop for a full buffer.
      const bool line_complete = rq_->in.data().find(http::h1::kCrlf) != std::string_view::npos;
      reply(line_complete ? 431 : 414,
            line_complete ? "request header fields too large" : "request line too long", true);
      return;
    }
    rq_->in.reserve(std::min<std::size_t>(rq_->in.capacity() * 2, max_head + 1));
  }
  read_client();
}

void H1Session::start_tls() {
  // After the PROXY header (if any), the TLS handshake. What was read so far is the start of
  // the ClientHello; the stream takes it as already received.
  auto& tls = client_.start_tls(listener().tls->initial(), net::TlsRole::server);
  tls_handshaking_ = true;
  tls.received(rq_->in.data());
  rq_->in.consume(rq_->in.size());  // the stream has it
  tls.async_handshake([self = shared_from_this()](boost::system::error_code ec) {
    self->tls_handshaking_ = false;
    if (self->w_.counters != nullptr) {
      using metrics::TlsHandshake;
      const auto result = ec ? TlsHandshake::failed
                          : SSL_session_reused(self->client_.tls().native_handle()) == 1
                              ? TlsHandshake::resumed
                              : TlsHandshake::full;
      self->w_.counters->record_tls_handshake(self->connections_series_, result);
    }
    if (self->state_ == State::closed) return;
    if (ec) {
      log::debug("listener ", *self->listener_name_, ": TLS handshake with ",
                 self->peer_address_.get().to_string(), " failed: ", ec.message());
      self->close();
      return;
    }
    const unsigned char* protocol = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(self->client_.tls().native_handle(), &protocol, &length);
    if (length == 2 && std::memcmp(protocol, "h2", 2) == 0) {
      self->hand_over_to_h2();
      return;
    }
    self->read_client();
  });
}

void H1Session::hand_over_to_h2() {
  // The connection is HTTP/2's from here: its socket (or TLS stream), its client address
  // and what was read of it move to an H2Session; this session ends without closing it.
  H2Transport transport{std::move(client_), peer_address_, proxied_source_,
                        std::move(rq_->peer_text)};
  const auto received = rq_->in.data();
  auto h2 = std::make_shared<H2Session>(w_, listener_name_, snapshot_, listener_index_,
                                        std::move(transport));
  std::string bytes(received);
  rq_->in.consume(rq_->in.size());
  state_ = State::closed;
  clear();
  give_back_request();
  h2->start(bytes);
}

bool H1Session::read_proxy_header() {
  // The balancer's PROXY header comes before anything else on the connection (even TLS);
  // its source is the client from here on.
  const auto mode = listener().config->proxy_protocol;
  const auto header = net::parse_proxy_header(rq_->in.data(), mode);
  using Status = net::ProxyHeader::Status;
  switch (header.status) {
    case Status::incomplete:
      return true;  // read more (the parser bounds the header's length)
    case Status::invalid:
      // No HTTP answer: the peer is not speaking HTTP to us, or lies about the client.
      log::debug("listener ", *listener_name_, ": PROXY protocol header from ",
                 peer_address_.get().to_string(), " refused: ", header.error);
      close();
      return false;
    case Status::absent:  // `any`, and a plain connection
      proxy_header_pending_ = false;
      return true;
    case Status::done:
      proxy_header_pending_ = false;
      rq_->in.consume(header.length);
      if (header.source) {
        peer_address_ = net::CompactAddress(*header.source);
        rq_->peer_text = address_text(*header.source);
        proxied_source_ = true;
      }
      return true;
  }
  return true;
}

bool H1Session::try_parse_head() {
  const std::size_t n = rq_->parser.parse_head(rq_->in.data());
  if (const auto& err = rq_->parser.error()) {
    if (!client_.is_tls() && !h1_seen_ && http::is_foreign_request_line(rq_->in.data())) {
      // The first bytes of a cleartext connection, which may speak h2c, are not HTTP/1 at
      // all: an HTTP/1.1 answer would be read as a frame header by an HTTP/2 client with a
      // broken preface (RFC 9113 3.4 wants the connection ended), so none is sent.
      close();
      return true;
    }
    reply(err.status, err.reason, true);
    return true;
  }
  if (n == 0) return false;
  begin_exchange(n);
  return true;
}

void H1Session::read_client() {
  // A connection between requests holds no buffer: it waits until the client sends --
  // unless TLS has the next request's records already, which the socket will not announce.
  if (rq_ == nullptr) {
    if (!client_.has_buffered_input()) {
      // Nor OpenSSL's record buffers: the connection gave its request state back, so it has
      // been quiet for kHoldBufferFor, or was before its last request (see next_request). A
      // busy one keeps them, which saves their malloc and free per request.
      client_.release_idle_buffers();
      wait_readable();
      return;
    }
    borrow_request();
  }
  // Lingering (closing) reads are discarded: they go to the same buffer, never committed.
  if (state_ == State::closing) rq_->in.consume(rq_->in.size());
  if (rq_->in.capacity() == 0) rq_->in.reserve(kHeadBufferInitial);
  if (rq_->in.tail_size() == 0) rq_->in.compact();
  client_read_pending_ = true;
  client_.async_read_some(asio::buffer(rq_->in.tail(), rq_->in.tail_size()),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            self->on_client_read(ec, n);
                          });
}

void H1Session::on_client_read(boost::system::error_code ec, std::size_t n) {
  client_read_pending_ = false;
  const bool shrinking = shrinking_;
  shrinking_ = false;
  if (shrinking && ec == asio::error::operation_aborted && waiting_for_request()) {
    if (rq_->exchange.quiescent()) give_back_request();
    read_client();  // without a request: waits for readability
    return;
  }
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
      rq_->in.commit(n);
      if (state_ == State::idle || !head_bytes_seen_) {
        // The head of a new request began: header_timeout runs from its first byte on a
        // kept-alive connection, and from the accept on a new one (set in start()).
        const auto now = net::Clock::now();
        if (state_ == State::idle) {
          // A client that sends its next request soon after a response is busy: its
          // connection keeps its request state between requests (see next_request).
          const auto idle_since = wait_until_ - snapshot_->config->limits.idle_timeout;
          busy_ = now - idle_since < kHoldBufferFor;
          wait_until_ = now + snapshot_->config->limits.header_timeout;
        }
        begin_request(now);  // resets the state the wait or the previous request left
        arm(wait_until_);
        state_ = State::head;
        head_bytes_seen_ = true;
      }
      read_head();
      return;
    case State::request:  // only ever reading a body the exchange asked for
      if (ec) {
        // The client vanished mid-body: the request can never complete.
        rq_->exchange.abort();
        close();
        return;
      }
      rq_->in.commit(n);
      pump_request_body();
      return;
    case State::tunnel:
      if (ec == asio::error::eof) {
        rq_->client_eof = true;  // the client finished sending: pass the FIN on
      } else if (ec) {
        close();
        return;
      } else {
        rq_->in.commit(n);
        touch_tunnel();
      }
      tunnel_to_origin();
      return;
  }
}

void H1Session::begin_exchange(std::size_t head_length) {
  state_ = State::request;
  served_ = true;
  h1_seen_ = true;
  const auto& head = rq_->parser.head();
  rq_->has_body = head.has_body();
  rq_->http10 = head.version == 10;
  rq_->close_after = !head.keep_alive || w_.draining;
  rq_->routed = true;

  const bool listener_kept = refresh_snapshot();
  rq_->set_snapshot(snapshot_.get(), listener_index_);
  if (!listener_kept) {
    reply(503, "listener is being removed", true);
    return;
  }
  if (listener_removed_) rq_->close_after = true;
  rq_->expect_continue = head.expect_continue && rq_->has_body && !rq_->http10;
  const Downstream downstream{
      w_, *snapshot_, listener(), peer_address_.get(), proxied_source_, client_.is_tls()};
  rq_->begin(downstream, head, head_length);
}

void H1Session::encode_continue() {
  // Written at once, rather than making the client wait out its expect timeout; the
  // exchange starts once that is written (the socket may still hold the end of a previous
  // response, so the write may not complete at once).
  rq_->continue_pending = true;
  client_.async_write(asio::buffer(kContinue),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (self->state_ != State::request) return;
                        self->rq_->continue_pending = false;
                        if (ec) {
                          self->close();
                          return;
                        }
                        self->rq_->continue_sent();
                      });
}

// ---------------------------------------------------------------------------------------
// Request body: client -> exchange

void H1Session::pull_body() {
  release_body();  // the exchange wrote the last piece
  // Room for the body (no piece is lent now, so the bytes may move).
  if (rq_->has_body && rq_->in.capacity() < kBodyBuffer) rq_->in.reserve(kBodyBuffer);
  rq_->body_wanted = true;
  pump_request_body();
}

void H1Session::release_body() {
  rq_->in.consume(rq_->body_given_consumed);
  rq_->body_given_consumed = 0;
}

void H1Session::pump_request_body() {
  if (!rq_->body_wanted || client_read_pending_ || state_ != State::request) return;
  if (rq_->parser.done()) {
    // Everything was handed over already (an exchange that starts over asks again).
    rq_->body_wanted = false;
    rq_->body_slices.clear();
    rq_->send_body(rq_->body_slices, true, &rq_->parser.trailers());
    return;
  }
  if (!rq_->in.empty()) {
    rq_->body_slices.clear();
    const std::size_t consumed = rq_->parser.parse_body(rq_->in.data(), rq_->body_slices);
    if (const auto& err = rq_->parser.error()) {
      rq_->exchange.abort();
      if (rq_->response_head_sent) {
        close();
      } else {
        reply(err.status, err.reason, true);
      }
      return;
    }
    if (!rq_->body_slices.empty() || rq_->parser.done()) {
      rq_->body_wanted = false;
      rq_->body_given_consumed = consumed;
      const bool last = rq_->parser.done();
      rq_->send_body(rq_->body_slices, last, last ? &rq_->parser.trailers() : nullptr);
      return;
    }
    rq_->in.consume(consumed);  // chunk framing only
    if (rq_->in.tail_size() == 0) rq_->in.compact();
    if (rq_->in.tail_size() == 0) {
      rq_->exchange.abort();
      if (rq_->response_head_sent) {
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

void H1Session::encode_head(const http::ResponseHead& head, http::ResponseForwarding fwd,
                            bool end) {
  rq_->write_list.clear();
  if (head.has_body && !head.content_length) {
    // A chunked or close-delimited upstream body: HTTP/1.1 clients get it re-chunked (and
    // keep their connection), HTTP/1.0 clients get it delimited by our close.
    if (rq_->http10) {
      rq_->close_after = true;
    } else {
      rq_->response_chunked = true;
    }
  }
  // The origin answered before the whole request body arrived: the rest of the body would
  // be read as a next request, so this connection ends with this response.
  if (!request_complete()) rq_->close_after = true;
  if (w_.draining) rq_->close_after = true;
  // A WebSocket handshake the origin declined: the client may already have sent frames,
  // which must not be read as a next request.
  const bool switching = head.status == 101;  // the exchange lets 101 through only then
  if (rq_->upgrade && !switching) rq_->close_after = true;
  fwd.chunked = rq_->response_chunked;
  fwd.close = rq_->close_after;
  fwd.keep_alive_10 = rq_->http10 && !rq_->close_after;
  fwd.upgrade = switching;
  http::write_downstream_response(head, fwd, rq_->down_head);
  rq_->write_list.emplace_back(rq_->down_head.data(), rq_->down_head.size());
  if (!end) return;  // encode_data() writes it with the first body piece
  if (rq_->response_chunked)
    rq_->write_list.emplace_back(http::h1::kLastChunk.data(), http::h1::kLastChunk.size());
  write_response();
}

void H1Session::encode_trailers(const std::vector<http::Field>& trailers) {
  // They go in the last chunk; a body with a length (or an HTTP/1.0 client) has no place
  // for them.
  if (rq_->response_chunked) http::write_last_chunk(trailers, rq_->last_chunk);
}

void H1Session::encode_data(const http::BodySlices& body, bool end) {
  http::h1::frame_body(body, rq_->response_chunked, rq_->chunk_line, rq_->write_list);
  if (end && rq_->response_chunked) {
    if (rq_->last_chunk.empty()) {
      rq_->write_list.emplace_back(http::h1::kLastChunk.data(), http::h1::kLastChunk.size());
    } else {
      rq_->write_list.emplace_back(rq_->last_chunk.data(), rq_->last_chunk.size());
    }
  }
  write_response();
}

void H1Session::write_response() {
  if (rq_->write_list.empty()) {
    rq_->data_encoded();
    return;
  }
  rq_->response_head_sent = true;
  for (const auto& b : rq_->write_list)
    rq_->bytes_out += b.size();
  client_.async_write(BufferSpan(rq_->write_list),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (self->state_ != State::request) return;
                        self->rq_->write_list.clear();
                        if (ec) {
                          self->rq_->exchange.abort();
                          self->close();  // the client went away
                          return;
                        }
                        self->rq_->data_encoded();
                      });
}

void H1Session::response_complete() {
  if (rq_->close_after || !request_complete() || w_.draining) {
    linger_close();
    return;
  }
  next_request();
}

// ---------------------------------------------------------------------------------------
// Local answers, next request, closing

void H1Session::encode_local_reply(unsigned status, std::string_view cause,
                                   std::string_view extra_headers, bool close) {
  if (close) rq_->close_after = true;
  http::write_local_reply(status, cause, rq_->close_after, snapshot_ ? snapshot_->via : "",
                          extra_headers, rq_->down_head);
  rq_->bytes_out = rq_->down_head.size();
  state_ = State::replying;
  rq_->response_head_sent = true;
  arm(net::Clock::now() + snapshot_->config->limits.idle_timeout);
}

void H1Session::send_local_reply() {
  client_.async_write(asio::buffer(rq_->down_head),
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
  if (rq_->close_after || w_.draining) {
    linger_close();
  } else {
    next_request();
  }
}

void H1Session::next_request() {
  const auto& limits = snapshot_->config->limits;
  if (!rq_->in.empty()) {
    // A pipelined request is already here.
    state_ = State::head;
    head_bytes_seen_ = true;
    begin_request(net::Clock::now());
    arm(rq_->start + limits.header_timeout);
    read_head();
    return;
  }
  state_ = State::idle;
  head_bytes_seen_ = false;
  const auto now = net::Clock::now();
  // The request's state, read buffer included, goes back to the worker for the next request
  // on any connection, as nginx frees an idle keep-alive connection's buffers, and the
  // connection waits for readability without a buffer. A busy connection (its last request
  // came soon after the previous response) keeps them for up to kHoldBufferFor and reads
  // directly, which saves the wait's epoll_ctl on every request; so does a connection whose
  // exchange still has a completion due (an attempt abandoned just now).
  if (rq_->in.capacity() > kHeadBufferInitial) rq_->in.release_if_empty();  // a body grew it
  if (!busy_ && rq_->exchange.quiescent()) give_back_request();
  wait_for_request(now + limits.idle_timeout);
}

void H1Session::linger_close() {
  // Half-close and read until the client closes (or kLingerTime), so that the response is
  // not destroyed by a reset caused by request bytes we never read (RFC 9112 9.6). That can
  // only happen when the client may still be sending: a body not read to its end, or bytes
  // of a next request already here. After a complete request and nothing more, a plain
  // close sends FIN behind the response (nginx's lingering_close heuristic), which saves
  // the shutdown and the read that waits for the client's FIN on every such connection.
  if (rq_ != nullptr) rq_->exchange.abort();
  if (client_.is_tls() && !tls_handshaking_ && !client_read_pending_) {
    // TLS: a close_notify goes out first, so that a response delimited by the close cannot
    // be mistaken for a truncated one; the connection closes when the client answers it,
    // closes, or kLingerTime passes.
    state_ = State::closing;
    arm(net::Clock::now() + kLingerTime);
    client_.async_tls_shutdown(
        [self = shared_from_this()](boost::system::error_code) { self->close(); });
    return;
  }
  if (request_complete() && (rq_ == nullptr || rq_->in.empty()) && !client_read_pending_ &&
      state_ != State::head) {
    close();
    return;
  }
  state_ = State::closing;
  if (!client_.shutdown_send()) {
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
  if (rq_ != nullptr && rq_->active && rq_->routed) {
    rq_->record(rq_->response_head_sent ? rq_->response_status : 499);
  }
  state_ = State::closed;
  clear();
  if (rq_ != nullptr) {
    rq_->exchange.abort();
    if (rq_->tunnel) {
      // The socket object stays (a pending operation on it completes, aborted) until the
      // request state is given back; the endpoint is no longer in flight from now on.
      rq_->tunnel->transport.close();
      rq_->tunnel_in_flight.reset();
    }
  }
  client_.close();
}

void H1Session::borrow_request() {
  rq_ = w_.requests->take(*this);
  rq_->set_snapshot(snapshot_.get(), listener_index_);
  rq_->peer_text = address_text(peer_address_.get());
}

void H1Session::begin_request(net::Clock::time_point now) {
  const auto& limits = snapshot_->config->limits;
  rq_->set_snapshot(snapshot_.get(), listener_index_);
  rq_->reset(
      {limits.max_request_header_bytes, limits.max_request_headers, limits.max_request_body_bytes},
      now);
}

void H1Session::give_back_request() {
  if (w_.requests != nullptr) {
    w_.requests->give(std::move(rq_));
  } else {
    rq_->exchange.abort();  // the worker is gone (shutdown): nothing to keep it for
    rq_.reset();
  }
}

void H1Session::on_deadline() {
  switch (state_) {
    case State::head:
      if (tls_handshaking_ || proxy_header_pending_) {
        close();  // no HTTP answer before the PROXY header and TLS are through
      } else if (head_bytes_seen_) {
        reply(408, "request head not received within header_timeout", true);
      } else if (net::Clock::now() < wait_until_) {
        give_back_buffer();
        arm(wait_until_);
      } else {
        close();  // a connection that never sent a byte gets no answer, as in nginx
      }
      return;
    case State::request:
      // The route timeout, while the rate limit or the exchange runs.
      if (!rq_->on_deadline(net::Clock::now())) close();
      return;
    case State::idle:
      if (net::Clock::now() < wait_until_) {
        give_back_buffer();
        arm(wait_until_);
      } else {
        close();  // idle_timeout
      }
      return;
    case State::tunnel:  // idle_timeout without a byte either way
    case State::replying:
    case State::closing:
    case State::closed:
      close();
      return;
  }
}

void H1Session::wait_readable() {
  client_read_pending_ = true;
  // The wait's operation lives in wait_op_ (an idle connection allocates nothing).
  client_.socket().async_wait(
      tcp::socket::wait_read,
      asio::bind_allocator(WaitOpAllocator(wait_op_),
                           [self = shared_from_this()](boost::system::error_code ec) {
                             self->client_read_pending_ = false;
                             if (!self->waiting_for_request()) return;
                             if (ec) {
                               self->close();
                               return;
                             }
                             // Bytes (or the client's FIN) are there: borrow a request's state and
                             // its buffer; the read completes at once.
                             if (self->rq_ == nullptr) self->borrow_request();
                             self->read_client();
                           }));
}

void H1Session::on_drain() {
  // Idle connections close now; a request in progress finishes and its response carries
  // Connection: close (begin_exchange and on_response_head look at w_.draining).
  if (state_ == State::idle || (state_ == State::head && !head_bytes_seen_)) close();
}

}  // namespace meridian::proxy
