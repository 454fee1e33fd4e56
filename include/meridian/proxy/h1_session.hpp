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
// request's state (parser, exchange, bookkeeping) is an RequestState borrowed from the worker
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
#include <boost/asio/ssl/stream.hpp>

#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h1_parser.hpp"
#include "meridian/net/compact_address.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/net/inline_op_storage.hpp"
#include "meridian/net/socket.hpp"
#include "meridian/net/transport.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/h2_session.hpp"
#include "meridian/proxy/request_state.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

class H1Session final : public std::enable_shared_from_this<H1Session>,
                        private net::Deadline,
                        private ExchangeSink {
 public:
  H1Session(WorkerContext& worker, net::TcpSocket socket, const std::string* listener_name);
  ~H1Session() override;

  // `peer`: the client's address as accept(2) reported it.
  void start(const boost::asio::ip::tcp::endpoint& peer);

 private:
  // limiting: a request waits for the rate limit store's verdict (scope: global).
  // tunnel: a WebSocket connection after its 101, relayed both ways.
  enum class State : std::uint8_t {
    head,
    idle,
    limiting,
    exchange,
    replying,
    closing,
    closed,
    tunnel
  };

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

  // -- rate limit, between routing and the exchange
  void on_rate_limit_decision(const ratelimit::Decision& decision);
  friend struct RequestState::StoreWaiter;  // forwards the store's answer here
  void on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome);
  void start_exchange();

  // -- metrics and access log, once per request
  void record_request(unsigned status);

  // -- request body, client -> exchange
  void pump_request_body();

  // -- ExchangeSink
  std::shared_ptr<void> exchange_keepalive() override { return shared_from_this(); }
  void on_request_body_wanted() override;
  void on_response_data(const http::ResponseHead* head, const http::BodySlices& body,
                        bool done) override;
  void on_exchange_done() override;
  void on_exchange_failed(unsigned status, std::string_view cause, bool retry_after) override;

  // -- WebSocket tunnel
  void start_tunnel();
  void touch_tunnel();  // idle_timeout runs again from now
  void tunnel_to_origin();
  void tunnel_to_client();

  // -- local answers and closing
  void reply(unsigned status, std::string_view cause, bool close,
             std::string_view extra_headers = {});
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
  void arm(net::Clock::time_point t) { expires_at(t); }

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
  std::unique_ptr<RequestState> rq_;          // from w_.requests while a request is in progress
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
