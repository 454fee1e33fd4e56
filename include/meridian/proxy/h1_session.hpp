// One downstream HTTP/1.1 connection and the requests on it (SPEC 3, 4, 7, 11): the
// downstream half of the proxy. It reads request heads with the HTTP/1.1 codec, routes
// them, serialises the upstream head (SPEC 4), and hands each request to an Exchange (the
// upstream half, shared with HTTP/2 later); then it feeds the exchange the decoded request
// body and writes the response it gets back in HTTP/1.1 framing.
//
// Memory is bounded per connection whatever the body sizes: one client buffer (in_) that is
// read again only after the exchange took the last body piece, and the exchange's own
// response buffer that is read again only after this session wrote the last response piece
// (backpressure both ways). Chunked bodies are decoded and re-encoded canonically.
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

#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h1_parser.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/exchange.hpp"
#include "meridian/proxy/worker_context.hpp"
#include "meridian/ratelimit/redis_store.hpp"
#include "meridian/ratelimit/route_limit.hpp"

namespace meridian::proxy {

class H1Session final : public std::enable_shared_from_this<H1Session>,
                        private net::Deadline,
                        private ExchangeSink,
                        private ratelimit::StoreWaiter {
 public:
  H1Session(WorkerContext& worker, boost::asio::ip::tcp::socket socket, std::string listener_name);
  ~H1Session() override;

  // `peer`: the client's address as accept(2) reported it.
  void start(const boost::asio::ip::tcp::endpoint& peer);

 private:
  // limiting: a request waits for the rate limit store's verdict (scope: global).
  enum class State { head, idle, limiting, exchange, replying, closing, closed };

  // -- client reads (one at a time; what the bytes mean depends on state_)
  void read_client();
  void on_client_read(boost::system::error_code ec, std::size_t n);

  // -- request head
  void read_head();
  bool try_parse_head();  // true when an exchange started or the session is answering
  void begin_exchange(std::size_t head_length);
  bool refresh_snapshot();

  // -- rate limit (SPEC 8), between routing and the exchange
  void on_rate_limit_decision(const ratelimit::Decision& decision);
  void on_store_outcome(std::uint64_t tag, const ratelimit::StoreOutcome& outcome) override;
  void start_exchange();

  // -- metrics and access log (SPEC 12, 13), once per request
  bool logging() const { return w_.access_log != nullptr && snapshot_->access_log_on; }
  void begin_request(net::Clock::time_point now);
  void capture_log_fields(const http::RequestHead& head, const boost::asio::ip::address& client);
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

  // -- local answers and closing
  void reply(unsigned status, std::string_view cause, bool close,
             std::string_view extra_headers = {});
  void after_local_reply();
  void next_request();
  void shrink_while_idle();
  void wait_readable();
  void linger_close();
  void close();

  // -- net::Deadline
  void on_deadline() override;
  void on_drain() override;
  void on_abort() override { close(); }
  void arm(net::Clock::time_point t) { expires_at(t); }

  bool request_complete() const { return !has_body_ || req_.done(); }

  WorkerContext& w_;
  boost::asio::ip::tcp::socket client_;
  std::string listener_name_;
  std::shared_ptr<const Snapshot> snapshot_;  // pinned for the request in progress
  const ListenerRuntime* listener_ = nullptr;
  bool listener_removed_ = false;  // a reload removed it: this connection ends after its request
  boost::asio::ip::address peer_address_;
  std::string peer_;  // the client's address as text, for X-Forwarded-For
  State state_ = State::head;

  ByteBuffer in_;  // client bytes: request heads, request body, pipelined requests
  http::RequestParser req_;
  bool head_bytes_seen_ = false;
  net::Clock::time_point idle_until_{};  // idle_timeout of the keep-alive wait
  bool idle_shrunk_ = false;             // buffers given back during this idle wait
  bool waiting_readable_ = false;        // the read was cancelled to wait without a buffer
  bool client_read_pending_ = false;
  net::Clock::time_point request_start_{};
  net::Clock::time_point request_deadline_{};

  // The request in progress.
  Exchange exchange_;
  ExchangeRequest exchange_request_;  // held while the rate limit decides
  bool expect_continue_ = false;
  bool continue_pending_ = false;           // the 100 Continue is being written: no other write now
  ratelimit::RouteLimit* limit_ = nullptr;  // the route's limit (owned by snapshot_), or null
  std::uint64_t limit_tag_ = 0;             // names the store answer this request waits for
  std::string limit_headers_;               // RateLimit-* lines for the response, or empty
  std::string store_key_;                   // the bucket's Redis key (scope: global)
  ratelimit::KeyBuffer key_buffer_{};
  bool has_body_ = false;
  bool client_keep_alive_ = true;
  bool client_http10_ = false;
  bool close_after_ = false;
  bool body_wanted_ = false;             // the exchange waits for the next body piece
  std::size_t body_given_consumed_ = 0;  // in_ bytes behind the piece the exchange holds
  bool response_head_sent_ = false;      // a byte went to the client
  bool response_chunked_ = false;        // the client gets the body re-encoded as chunks

  // Metrics and access log of the request in progress.
  metrics::SeriesId connections_series_ = 0;
  bool connection_counted_ = false;
  bool request_active_ = false;  // a request began and is not recorded yet
  bool request_routed_ = false;  // its head was complete (a vanished client is then a 499)
  const config::Route* route_ = nullptr;
  const RouteSeries* route_series_ = nullptr;
  unsigned response_status_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::string log_client_, log_method_, log_target_, log_host_, log_user_agent_, log_referer_,
      log_request_id_;
  unsigned log_version_ = 11;

  std::string down_head_;
  http::BodySlices req_slices_;
  std::vector<boost::asio::const_buffer> resp_bufs_;
  char resp_chunk_line_[24] = {};
};

}  // namespace meridian::proxy
