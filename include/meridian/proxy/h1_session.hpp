// One downstream HTTP/1.1 connection and the requests on it: the downstream half of the
// proxy. It reads request heads with the HTTP/1.1 codec, routes them, serialises the upstream
// head (request_flow.hpp), and hands each request to an Exchange (the upstream half, which
// HTTP/2 streams use too); then it feeds the exchange the decoded request body and writes the
// response it gets back in HTTP/1.1 framing.
//
// Memory is bounded per connection whatever the body sizes: one client buffer that is
// read again only after the exchange took the last body piece, and the exchange's own
// response buffer that is read again only after this session wrote the last response piece
// (backpressure both ways). Chunked bodies are decoded and re-encoded canonically. The
// request's state (parser, exchange, bookkeeping) is an ActiveRequest borrowed from the worker
// while a request is in progress, so an idle connection is small.
//
// Lifetime: the Beast idiom, kept alive by the shared_ptr each pending operation holds.
// Timeouts come from the worker's DeadlineList (one deadline per session, no timer per
// operation). Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <openssl/ssl.h>

#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h1/parser.hpp"
#include "meridian/net/compact_address.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/net/inline_op_storage.hpp"
#include "meridian/net/socket.hpp"
#include "meridian/net/transport.hpp"
#include "meridian/proxy/active_request.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/h2_session.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

class H1Session final : public std::enable_shared_from_this<H1Session>,
                        private net::Deadline,
                        private RequestEncoder {
 public:
  H1Session(WorkerContext& worker, net::TcpSocket socket, const std::string* listener_name);
  ~H1Session() override;

  // `peer`: the client's address as accept(2) reported it.
  void start(const boost::asio::ip::tcp::endpoint& peer);

 private:
  // request: the request's head is in; its ActiveRequest runs (rate limit, exchange).
  // tunnel: a WebSocket connection after its 101, relayed both ways.
  enum class State : std::uint8_t { head, idle, request, replying, closing, closed, tunnel };

  // -- TLS
  void start_tls();  // the handshake, fed what was read already (after a PROXY header)

  // -- client reads (one at a time; what the bytes mean depends on state_)
  void read_client();
  void on_client_read(boost::system::error_code ec, std::size_t n);

  // -- request head
  void read_head();
  bool read_proxy_header();  // false when the connection was closed for a bad header
  bool try_parse_head();     // true when an exchange started or the session is answering
  void begin_exchange(std::size_t head_length);
  bool refresh_snapshot();

  // -- request body, client -> exchange
  void pump_request_body();

  // -- RequestEncoder: the request's answer in HTTP/1.1 framing
  std::shared_ptr<void> request_keepalive() override { return shared_from_this(); }
  void encode_continue() override;
  void encode_head(const http::ResponseHead& head, http::ResponseForwarding fwd, bool end) override;
  void encode_trailers(const std::vector<http::Field>& trailers) override;
  void encode_data(const http::BodySlices& body, bool end) override;
  void encode_local_reply(unsigned status, std::string_view cause, std::string_view extra_headers,
                          bool close) override;
  void send_local_reply() override;
  void reset() override { close(); }
  void arm(net::Clock::time_point t) override { expires_at(t); }
  void pull_body() override;
  void release_body() override;
  void response_complete() override;
  void write_response();  // what encode_head/encode_data gathered, in one write

  // -- WebSocket tunnel
  void start_tunnel() override;
  void touch_tunnel();  // idle_timeout runs again from now
  void tunnel_to_origin();
  void tunnel_to_client();

  // -- local answers and closing
  void reply(unsigned status, std::string_view cause, bool close) {
    rq_->reply(status, cause, {}, close);
  }
  void after_local_reply();
  void next_request();
  // Between requests (and before the first): read with a request's buffer for a while,
  // then without one; `until`: header_timeout or idle_timeout.
  void wait_for_request(net::Clock::time_point until);
  void give_back_buffer();
  void wait_readable();  // for a connection without a request: no buffer held
  // The connection speaks HTTP/2: ALPN chose h2, or a cleartext connection began with the
  // prior-knowledge preface. Its socket, TLS stream and unread bytes go to an H2Session,
  // and this object ends.
  void hand_over_to_h2();
  const ListenerRuntime& listener() const {
    return snapshot_->listeners[static_cast<std::size_t>(listener_index_)];
  }
  bool waiting_for_request() const {
    return state_ == State::idle || (state_ == State::head && !head_bytes_seen_);
  }
  void linger_close();
  void close();

  // -- net::Deadline
  void on_deadline() override;
  void on_drain() override;
  void on_abort() override { close(); }

  // The request in progress: its state is borrowed from the worker when the client's bytes
  // can be read (or at once on a new connection), begun when they arrive, and given back
  // when the connection goes idle.
  void borrow_request();
  void begin_request(net::Clock::time_point now);
  void give_back_request();
  bool request_complete() const { return rq_ == nullptr || rq_->complete(); }

  // Held for the connection's lifetime: a few hundred bytes when idle.
  WorkerContext& w_;
  // The client's connection: TLS on a TLS listener from the first byte on, so that it can
  // pass whole to an H2Session when ALPN picks h2.
  net::Transport client_;
  const std::string* listener_name_;          // interned by the worker (WorkerContext::intern)
  std::shared_ptr<const Snapshot> snapshot_;  // pinned for the request in progress
  net::Clock::time_point wait_until_{};       // the header_timeout or idle_timeout of the wait
  std::unique_ptr<ActiveRequest> rq_;         // from w_.requests while a request is in progress
  metrics::SeriesId connections_series_ = 0;
  int listener_index_ = -1;  // in snapshot_->listeners; -1 before the first snapshot
  State state_ = State::head;
  // Flags as bit-fields: two bytes, which keeps an idle connection's object in a smaller
  // allocator size class.
  bool listener_removed_ : 1 = false;  // a reload removed it: the connection ends after its request
  bool head_bytes_seen_ : 1 = false;
  bool client_read_pending_ : 1 = false;
  bool shrinking_ : 1 = false;  // the pending read was cancelled to give the buffer back
  bool busy_ : 1 = false;       // the last request came within kHoldBufferFor of the response
  bool connection_counted_ : 1 = false;
  bool proxy_header_pending_ : 1 = false;  // the listener's PROXY protocol header is still due
  bool proxied_source_ : 1 = false;        // peer_address_ is the PROXY header's source
  bool tls_pending_ : 1 = false;           // a TLS listener: the handshake is still to start
  bool tls_handshaking_ : 1 = false;       // no HTTP may be written before it completes
  bool served_ : 1 = false;           // a request began: the HTTP/2 preface is no longer expected
  bool h1_seen_ : 1 = false;          // a request head parsed: the client speaks HTTP/1
  net::CompactAddress peer_address_;  // as accept(2) reported it
  // Room for the wait for readability (104 bytes with net::TcpSocket; checked by
  // tests/unit/net/inline_op_storage_test.cpp).
  static constexpr std::size_t kWaitOpSize = 104;
  using WaitOpAllocator = net::InlineOpAllocator<void, kWaitOpSize>;
  net::InlineOpStorage<kWaitOpSize> wait_op_;
};

}  // namespace meridian::proxy
