// One downstream HTTP/1.1 connection and the exchanges on it (SPEC 3, 4, 7, 11).
//
// The session reads a request head with the HTTP/1.1 codec, routes it, picks an endpoint,
// borrows or dials an upstream connection from its worker's pool, and then runs two streams
// at once: request body client -> upstream, response client <- upstream. Each stream holds
// at most one buffer (in_ or uin_) and reads again only after its last write completed, so
// memory per connection is bounded whatever the body sizes (backpressure both ways). Chunked
// bodies are decoded by the codec and re-encoded canonically, so the upstream never sees a
// chunk framing meridian did not parse.
//
// Lifetime: the Beast idiom, kept alive by the shared_ptr each pending operation holds.
// Timeouts come from the worker's DeadlineList (one deadline per session, no timer per
// operation). Completions of an abandoned upstream attempt are recognised by attempt_ and
// ignored. Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "meridian/balancing/endpoint_picker.hpp"
#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h1_parser.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/proxy/upstream_pool.hpp"
#include "meridian/proxy/worker_context.hpp"

namespace meridian::proxy {

class H1Session final : public std::enable_shared_from_this<H1Session>, private net::Deadline {
 public:
  H1Session(WorkerContext& worker, boost::asio::ip::tcp::socket socket, std::string listener_name);
  ~H1Session() override;

  void start();

 private:
  enum class State { head, idle, exchange, replying, closing, closed };
  // Why an upstream attempt failed; decides the status and whether a retry is allowed.
  enum class UpstreamFailure { connect, connect_timeout, reset, invalid, timeout };

  // -- client reads (one at a time; what the bytes mean depends on state_)
  void read_client();
  void on_client_read(boost::system::error_code ec, std::size_t n);

  // -- request head
  void read_head();
  bool try_parse_head();  // true when an exchange started or the session is closing
  void begin_exchange(std::size_t head_length);
  bool refresh_snapshot();

  // -- upstream
  void dispatch();
  void on_connected(std::uint64_t attempt, boost::system::error_code ec);
  void start_upstream_streams();
  void fail_attempt(UpstreamFailure why);

  // -- request body, client -> upstream
  void pump_request();
  void on_request_written(std::uint64_t attempt, std::size_t consumed,
                          boost::system::error_code ec);

  // -- response, upstream -> client
  void read_response();
  void on_response_read(std::uint64_t attempt, boost::system::error_code ec, std::size_t n);
  void on_response_head(std::size_t head_length);
  void pump_response(bool with_head);
  void on_response_written(std::uint64_t attempt, std::size_t consumed, bool finished,
                           boost::system::error_code ec);
  void finish_exchange();

  // -- local answers and closing
  void reply(unsigned status, std::string_view cause, bool close,
             std::string_view extra_headers = {});
  void after_local_reply();
  void next_request();
  void drop_upstream();
  void linger_close();
  void close();

  // net::Deadline
  void on_deadline() override;
  void on_drain() override;
  void arm(net::Clock::time_point t) { expires_at(t); }

  WorkerContext& w_;
  boost::asio::ip::tcp::socket client_;
  std::string listener_name_;
  std::shared_ptr<const Snapshot> snapshot_;  // pinned for the exchange in progress
  const ListenerRuntime* listener_ = nullptr;
  std::string peer_;  // the client's address as text, for X-Forwarded-For
  State state_ = State::head;

  ByteBuffer in_;  // client bytes: request heads, request body, pipelined requests
  http::RequestParser req_;
  bool head_bytes_seen_ = false;
  bool client_read_pending_ = false;
  net::Clock::time_point request_start_{};
  net::Clock::time_point request_deadline_{};

  // The exchange in progress.
  const config::Route* route_ = nullptr;
  const balancing::BackendRuntime* backend_ = nullptr;
  balancing::TriedEndpoints tried_;
  std::uint32_t retries_left_ = 0;
  balancing::InFlightGuard in_flight_;
  std::shared_ptr<UpstreamConnection> up_;
  std::uint64_t attempt_ = 0;
  UpstreamFailure last_failure_ = UpstreamFailure::connect;
  bool connecting_ = false;
  bool idempotent_ = false;
  bool has_body_ = false;
  bool head_request_ = false;
  bool client_keep_alive_ = true;
  bool client_http10_ = false;
  bool close_after_ = false;
  bool request_head_pending_ = true;  // up_head_ not yet written on this attempt
  std::uint64_t body_consumed_ = 0;   // request body bytes taken from in_ (sent upstream)
  bool request_written_ = false;      // the whole request reached the upstream socket
  bool response_started_ = false;     // a byte came from the upstream
  bool response_head_sent_ = false;   // a byte went to the client
  bool response_chunked_ = false;     // the client gets the body re-encoded as chunks
  bool response_done_ = false;
  http::ResponseParser resp_;
  ByteBuffer uin_;  // upstream bytes: response head and body

  std::string up_head_;
  std::string down_head_;
  http::BodySlices req_slices_;
  http::BodySlices resp_slices_;
  std::vector<boost::asio::const_buffer> req_bufs_;
  std::vector<boost::asio::const_buffer> resp_bufs_;
  char req_chunk_line_[24] = {};
  char resp_chunk_line_[24] = {};
  char linger_buf_[512] = {};
};

}  // namespace meridian::proxy
