// One downstream HTTP/2 connection (RFC 9113): TLS with ALPN h2, or cleartext with
// the prior-knowledge preface. http::h2::ServerCodec does the framing, HPACK, flow control
// and RFC 9113 checks; this class does the I/O and implements the codec's events, and
// each stream is an H2Stream that drives the same Exchange and request logic
// (request_flow.hpp) as an HTTP/1.1 request.
//
// Bounded memory: SETTINGS_MAX_CONCURRENT_STREAMS (100), a 64 KiB receive window per stream
// whose bytes are acknowledged to the client only once the upstream took them (so a
// stream's request body buffer never exceeds its window), one 16 KiB read buffer, and an
// output batch of at most kWriteBatch (the client is read again only after the last batch
// was written when the codec has more to send). Both buffers go as soon as no stream is open
// and nothing is being written: an idle connection waits for readability without a read
// buffer, as an idle HTTP/1.1 connection does, and allocates one again when the client sends.
// After a quiet tick the codec's own buffers (stream table, header block, output queue) go
// too, leaving the codec object and the client's HPACK table. Responses are pulled from the
// exchange frame by frame, so an exchange reads its upstream again only when the client's window
// let the last piece go.
//
// Abuse (CVE-2023-44487 rapid reset, CONTINUATION floods, PING/SETTINGS floods): the codec's
// own limits (8 CONTINUATION frames per block, 1,000 queued ACKs and resets), plus a per-connection
// budget of "glitches" -- streams reset by the client before their answer, streams refused
// or malformed, PING, SETTINGS, PRIORITY and empty DATA frames -- refilled at a steady rate;
// a client that spends it gets GOAWAY (ENHANCE_YOUR_CALM) and is closed. Streams whose
// upstream work is still winding down count against the concurrency limit too (open and
// retired together at most twice the limit), so resetting streams does not buy unbounded
// concurrent upstream work.
//
// GOAWAY (graceful, NO_ERROR) on drain, on idle_timeout, and when a reload removed the
// listener; the streams in progress finish first. Lifetime: the Beast idiom, kept alive by
// the shared_ptr of each pending operation (socket I/O, exchanges, rate limit store). A
// client that reads nothing for idle_timeout while a write is pending is closed (nginx's
// send_timeout); an answer its flow-control window never lets out is reset after it.
// Thread: the owning worker only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meridian/http/h2/server_codec.hpp"
#include "meridian/net/compact_address.hpp"
#include "meridian/net/deadline_list.hpp"
#include "meridian/net/socket.hpp"
#include "meridian/net/transport.hpp"
#include "meridian/proxy/snapshot.hpp"
#include "meridian/proxy/worker_context.hpp"

namespace meridian::proxy {

class H2Stream;

// What an HTTP/1.1 session hands over when its connection turns out to speak HTTP/2.
struct H2Transport {
  net::Transport transport;  // TLS after the handshake, or plain for h2c
  net::CompactAddress peer;  // accept(2), or the PROXY header's source
  bool proxied_source = false;
  std::string peer_text;
};

class H2Session final : public std::enable_shared_from_this<H2Session>,
                        private net::Deadline,
                        private http::h2::Events {
 public:
  static constexpr std::uint32_t kMaxConcurrentStreams = 100;
  static constexpr std::int32_t kStreamWindow = 64 * 1024;
  static constexpr std::int32_t kConnectionWindow = 1024 * 1024;
  static constexpr std::size_t kReadBuffer = 16 * 1024;
  static constexpr std::size_t kWriteBatch = 64 * 1024;

  H2Session(WorkerContext& worker, const std::string* listener_name,
            std::shared_ptr<const Snapshot> snapshot, int listener_index, H2Transport transport);
  ~H2Session() override;
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // `received`: bytes already read from the connection (the preface, for h2c).
  void start(std::string_view received);

  // -- for H2Stream
  WorkerContext& worker() { return w_; }
  http::h2::ServerCodec& codec() { return *codec_; }
  // The snapshot new streams pin, and the listener's index in it.
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  int listener_index() const { return listener_index_; }
  const ListenerRuntime& listener() const {
    return snapshot_->listeners[static_cast<std::size_t>(listener_index_)];
  }
  const H2Transport& transport() const { return t_; }
  bool transport_is_tls() const { return t_.transport.is_tls(); }
  std::shared_ptr<H2Session> keepalive() { return shared_from_this(); }
  // Sends what the codec has queued (now, or after the write in progress).
  void flush();
  // The same once the handlers ready now have run: what a stream's upstream produced is sent
  // together with what other streams' upstreams produced in the same turn of the event loop
  // (one write for several responses, as HAProxy's loop does). For the streams' events.
  void flush_soon();
  // The exchange of `stream_id` may have its last response piece acknowledged
  // (Exchange::response_delivered) once the current codec call returned.
  void deliver_later(std::int32_t stream_id) { acks_.push_back(stream_id); }
  // The client misbehaved in a way a budget tolerates a little of (see the file comment).
  void glitch();
  // GOAWAY then close once written: graceful (NO_ERROR, streams in progress finish) or
  // not (the error code, at once).
  void go_away(std::uint32_t error_code, bool graceful);

 private:
  bool setup();
  void read();
  void on_read(boost::system::error_code ec, std::size_t n);
  bool feed(const std::uint8_t* data, std::size_t n);  // false: the connection is done
  void run_acks();
  // The end after a GOAWAY: our side shut, the client's bytes read and dropped for a while.
  void linger_close();
  void linger_read();
  void close();
  void refresh_snapshot();

  // -- streams
  H2Stream* stream(std::int32_t id);
  void reap_retired();

  // -- http::h2::Events
  bool on_stream_open(std::int32_t id) override;
  void on_field(void* user, http::h2::Block block, std::string_view name,
                std::string_view value) override;
  void on_block_end(void* user, http::h2::Block block, bool end_stream) override;
  void on_data(void* user, const std::uint8_t* data, std::size_t n) override;
  void on_end_stream(void* user) override;
  void on_sent_end(void* user) override;
  void on_peer_reset(void* user, std::uint32_t error_code) override;
  void on_stream_closed(void* user, std::uint32_t error_code) override;
  http::h2::Pull pull(void* user, std::uint8_t* buffer, std::size_t max) override;
  void on_glitch() override { glitch(); }

  // -- net::Deadline
  void on_deadline() override;
  void on_drain() override;
  void on_abort() override { close(); }
  void arm();
  void wait_readable();  // an idle connection's read: no buffer until the client sends
  // An idle connection gives its read and write buffers back (a busy one on an idle tick).
  void shed_buffers(bool idle_tick = false);

  WorkerContext& w_;
  const std::string* listener_name_;
  std::shared_ptr<const Snapshot> snapshot_;
  int listener_index_;
  H2Transport t_;
  metrics::SeriesId connections_series_ = 0;
  std::unique_ptr<http::h2::ServerCodec> codec_;

  std::unique_ptr<std::uint8_t[]> in_;
  std::string out_;  // the batch being written
  std::vector<std::int32_t> acks_;
  std::vector<std::unique_ptr<H2Stream>> open_;     // streams the codec knows
  std::vector<std::unique_ptr<H2Stream>> retired_;  // closed; their exchange still winding down

  double glitch_tokens_ = 0;
  net::Clock::time_point glitch_refill_{};
  net::Clock::time_point idle_since_{};   // no open stream since then
  net::Clock::time_point write_since_{};  // the write in progress started then
  // A header block left waiting for its CONTINUATION frames since then (or never: {}).
  net::Clock::time_point header_block_since_{};

  bool reading_ = false;
  bool shedding_ = false;               // the pending read was cancelled to let the read buffer go
  bool codec_memory_released_ = false;  // the codec's buffers, since the last stream
  bool streamed_ = false;               // a stream was opened on this connection
  bool busy_ = false;  // the last stream opened within kHoldBuffersFor of the one before it
  bool writing_ = false;
  bool flushing_ = false;
  bool flush_again_ = false;
  bool flush_posted_ = false;  // flush_soon() posted a flush that has not run yet
  bool in_codec_ = false;      // inside ServerCodec::feed: no produce() now
  bool going_away_ = false;
  bool lingering_ = false;
  bool closed_ = false;
  bool listener_removed_ = false;
  bool counted_ = false;
};

}  // namespace meridian::proxy
