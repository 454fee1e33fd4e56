// HTTP/2 to origins (backends[].protocol h2 or h2c): one multiplexed connection to an
// endpoint, and a worker's set of them. Exchanges attach to a connection for one attempt each
// and open a stream on it; the connection owns the socket, the client-side codec
// (http::h2::ClientCodec) and the write loop, and hands each stream's events to its exchange.
//
// A connection takes as many streams at once as the origin's SETTINGS_MAX_CONCURRENT_STREAMS
// allows (at most kMaxStreams). No stream is opened before the origin's SETTINGS arrive (they
// come with its first bytes), so none is ever refused for a limit not yet known. A connection
// being set up takes as many exchanges as the endpoint's other connections allow (kMaxStreams
// for the first one); those beyond the origin's limit wait in nghttp2's queue for a free
// stream. When every connection to an endpoint is full, the pool dials another. A GOAWAY from the
// origin stops new streams on the connection; nghttp2 closes the streams above its
// last_stream_id with REFUSED_STREAM, which tells their exchanges that the origin did not
// process them (so any method may be sent again). A connection without streams closes after
// the backend's keepalive.idle_timeout.
//
// Lifetime: shared by the pool (while usable) and by its pending socket operations; the
// exchanges hold it too while attached. An attached exchange is called through a raw pointer
// and must detach() before it goes away. Thread: the owning worker only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "meridian/balancing/endpoint_state.hpp"
#include "meridian/config/config.hpp"
#include "meridian/core/byte_buffer.hpp"
#include "meridian/http/h2/codec.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/net/transport.hpp"

namespace meridian::proxy {

// Why a stream never reached the origin: the request may be sent again as it is.
enum class H2Unprocessed : std::uint8_t {
  connect,          // the connection could not be set up (TCP, TLS, ALPN)
  connect_timeout,  // ... within connect_timeout
  refused,          // the origin refused the stream, or went away before reaching it
};

// One exchange's side of a stream (implemented by Exchange).
class H2UpstreamStream {
 public:
  // The connection is ready: open the stream now (H2Upstream::submit).
  virtual void on_h2_ready() = 0;
  // The stream will never reach the origin; the exchange is detached already.
  virtual void on_h2_unprocessed(H2Unprocessed why) = 0;
  // The origin's answer, as the codec decodes it (http::h2::Events).
  virtual void on_h2_field(http::h2::Block block, std::string_view name,
                           std::string_view value) = 0;
  virtual void on_h2_block_end(http::h2::Block block, bool end_stream) = 0;
  virtual void on_h2_data(const std::uint8_t* data, std::size_t n) = 0;
  virtual void on_h2_end_stream() = 0;
  // The stream closed (after the response ended, or cut: reset by the origin, or the
  // connection lost). The exchange is detached already.
  virtual void on_h2_closed(std::uint32_t error_code) = 0;
  // The next DATA frame's payload of the request body.
  virtual http::h2::Pull on_h2_pull(std::uint8_t* buffer, std::size_t max) = 0;
  // Queued by H2Upstream::later(): runs after the codec call that asked for it returned.
  virtual void on_h2_later() = 0;

 protected:
  ~H2UpstreamStream() = default;
};

class H2UpstreamPool;

class H2Upstream final : public std::enable_shared_from_this<H2Upstream>,
                         private http::h2::Events,
                         private net::Deadline {
 public:
  static constexpr std::uint32_t kMaxStreams = 100;
  // Per stream: the response body buffered while the client takes it (Exchange's buffer).
  // The protocol's initial window: a larger one would apply to streams opened before the
  // origin acknowledged our SETTINGS only on the origin's side, and nghttp2 would take the
  // DATA it then sends for a flow-control error.
  static constexpr std::int32_t kStreamWindow = 65535;

  struct Options {
    boost::asio::ssl::context* tls = nullptr;  // h2: TLS with ALPN h2; null for h2c
    const config::UpstreamTls* tls_config = nullptr;
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds idle_timeout{60000};
  };

  H2Upstream(boost::asio::io_context& ioc, net::DeadlineList& deadlines,
             std::shared_ptr<balancing::EndpointState> endpoint, const Options& options);
  ~H2Upstream() override;
  H2Upstream(const H2Upstream&) = delete;
  H2Upstream& operator=(const H2Upstream&) = delete;

  void connect();

  // Takes a stream slot for `s`. True: the connection is ready, submit() now; false: it is
  // being set up, and on_h2_ready() or on_h2_unprocessed() follows.
  bool attach(H2UpstreamStream& s);
  // Opens the stream of an attached exchange; negative when it cannot be opened.
  std::int32_t submit(const http::h2::FieldBlock& fields, bool has_body, H2UpstreamStream& s);
  // The stream's pull() said `deferred` and has more now.
  void resume(std::int32_t id);
  // From the stream's pull() with the body's end: trailer fields end the stream instead.
  bool submit_trailers(std::int32_t id, const http::h2::FieldBlock& fields) {
    return codec_.submit_trailers(id, fields);
  }
  // Response body bytes the exchange is done with: the stream's window reopens by `n`.
  void consume(std::int32_t id, std::size_t n);
  // The exchange gives its stream up: it is reset if still open (CANCEL), and nothing
  // reaches `s` any more. `id` 0: not opened yet.
  void detach(H2UpstreamStream& s, std::int32_t id);
  // Calls s.on_h2_later() once the codec call in progress returned (or at once outside one).
  void later(H2UpstreamStream& s);
  // Sends what the codec has queued (deferred while a codec call is in progress).
  void flush();

  // New streams may go here: connected or connecting, no GOAWAY, not closed, not full (a
  // connection being set up is assumed to allow `assumed_limit`).
  bool has_room(std::uint32_t assumed_limit) const;
  bool usable() const { return state_ != State::closed && !goaway_; }
  bool idle() const { return streams_.empty(); }
  const balancing::EndpointState* endpoint() const { return endpoint_.get(); }
  // The connection ends once its streams are done (drain, or a reload removed it).
  void shutdown();
  // Closes at once; attached streams are told as after a lost connection.
  void close();

 private:
  friend class H2UpstreamPool;
  // settings: connected, the preface sent, the origin's SETTINGS (its stream limit) awaited
  // before any stream is opened.
  enum class State : std::uint8_t { connecting, settings, ready, closed };

  void on_connected(boost::system::error_code ec);
  void on_handshake(boost::system::error_code ec);
  void connected();
  void ready();
  void read();
  void on_read(boost::system::error_code ec, std::size_t n);
  void write();
  void run_later();
  void fail_all(bool lost);
  // A stream ended or was given up: an idle connection starts its idle_timeout, a closing one
  // ends.
  void after_stream_end();
  std::uint32_t stream_limit() const;

  // -- http::h2::Events
  bool on_stream_open(std::int32_t) override { return false; }  // servers open none
  void on_field(void* user, http::h2::Block block, std::string_view name,
                std::string_view value) override;
  void on_block_end(void* user, http::h2::Block block, bool end_stream) override;
  void on_data(void* user, const std::uint8_t* data, std::size_t n) override;
  void on_end_stream(void* user) override;
  void on_sent_end(void*) override {}
  void on_peer_reset(void*, std::uint32_t) override {}
  void on_stream_closed(void* user, std::uint32_t error_code) override;
  http::h2::Pull pull(void* user, std::uint8_t* buffer, std::size_t max) override;
  void on_goaway(std::int32_t last_stream_id, std::uint32_t error_code) override;
  void on_settings() override;

  // -- net::Deadline: connect_timeout while connecting, idle_timeout while idle
  void on_deadline() override;
  void on_drain() override { shutdown(); }
  void on_abort() override { close(); }

  std::shared_ptr<balancing::EndpointState> endpoint_;
  Options options_;
  net::Transport transport_;
  http::h2::ClientCodec codec_;
  State state_ = State::connecting;
  bool goaway_ = false;     // no new streams (the origin's GOAWAY, or ours)
  bool closing_ = false;    // shutdown(): close when the last stream ends
  bool writing_ = false;    // a write is in flight
  bool reading_ = false;    // a read is in flight
  bool timed_out_ = false;  // connect_timeout passed
  int in_codec_ = 0;        // codec calls in progress (feed/produce): no write, no later() runs
  struct Slot {
    H2UpstreamStream* stream;
    std::int32_t id;  // 0 until submitted
  };
  std::vector<Slot> streams_;             // attached, in attach order
  std::vector<H2UpstreamStream*> later_;  // on_h2_later() due
  ByteBuffer in_;
  std::string out_;
  std::string writing_buffer_;
};

// A worker's HTTP/2 connections, per endpoint. Thread: the owning worker only.
class H2UpstreamPool {
 public:
  H2UpstreamPool(boost::asio::io_context& ioc, net::DeadlineList& deadlines)
      : ioc_(ioc), deadlines_(deadlines) {}

  // A connection to `endpoint` with room for one more stream: an existing one, or a new one
  // being dialled.
  std::shared_ptr<H2Upstream> acquire(const std::shared_ptr<balancing::EndpointState>& endpoint,
                                      const H2Upstream::Options& options);
  // Drain: every connection ends once its streams are done; none is dialled any more for
  // requests that are not already here (acquire still works, for requests in progress).
  void shutdown();
  // Forgets connections that closed (every tick).
  void sweep();
  std::size_t size() const;
  // Connections dialled, over the pool's life.
  std::uint64_t connects = 0;

 private:
  boost::asio::io_context& ioc_;
  net::DeadlineList& deadlines_;
  std::unordered_map<const balancing::EndpointState*, std::vector<std::shared_ptr<H2Upstream>>>
      conns_;
};

}  // namespace meridian::proxy
