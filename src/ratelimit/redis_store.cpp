#include "meridian/ratelimit/redis_store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <exception>
#include <optional>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "meridian/core/log.hpp"

namespace meridian::ratelimit {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// GCRA (see gcra.hpp) in microseconds on Redis's clock. ARGV: interval, capacity (burst x
// interval). Returns {1, TAT after - now} when allowed, {0, TAT - now} when not. The value
// expires a second after the bucket would be full again, so idle keys leave Redis.
// replicate_commands() makes TIME legal before a write on Redis < 5 (a no-op later).
constexpr const char* kScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local clamped = tat > now + capacity  -- the limit shrank since this bucket was written
if clamped then tat = now + capacity end
local nxt = tat + interval
if nxt - now > capacity then
  if clamped then
    redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX',
               math.ceil((tat - now) / 1000) + 1000)
  end
  return {0, math.floor(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX',
           math.ceil((nxt - now) / 1000) + 1000)
return {1, math.ceil(nxt - now)}
)lua";

constexpr milliseconds kBackoffMin{100};
constexpr milliseconds kBackoffMax{2000};
constexpr milliseconds kConnectTimeout{1000};
constexpr std::size_t kMaxPending = 10000;

std::string sha1_hex(const char* text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text, std::char_traits<char>::length(text), digest, &length, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

// Microseconds with three decimals, for the script's arguments.
void format_us(char (&buf)[32], std::int64_t ns) {
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000),
                static_cast<long long>(ns % 1000));
}

}  // namespace

struct RedisStore::Impl : std::enable_shared_from_this<Impl> {
  struct Pending {
    bool script = false;  // a SCRIPT LOAD, not a take()
    bool answered = false;
    Clock::time_point sent;
    Clock::time_point deadline;
    StoreWaiter* waiter = nullptr;
    std::shared_ptr<void> keepalive;
    std::uint64_t tag = 0;
  };

  Impl(asio::io_context& io, const config::RateLimitStore& c, std::atomic<std::uint32_t>* count)
      : ioc(io),
        connected_count(count),
        config(c),
        host(c.redis.resolved.address().to_string()),
        port(c.redis.resolved.port()),
        sha(sha1_hex(kScript)),
        stuck_after(std::max<Clock::duration>(std::chrono::seconds(2), 20 * c.timeout)),
        timer(io),
        retry_timer(io),
        connect_timer(io) {}

  asio::io_context& ioc;
  std::atomic<std::uint32_t>* const connected_count;
  const config::RateLimitStore config;
  const std::string host;
  const int port;
  const std::string sha;
  const Clock::duration stuck_after;

  redisAsyncContext* ac = nullptr;
  bool connected = false;       // change only through set_connected()
  bool script_loading = false;  // a SCRIPT LOAD is on its way
  bool error_logged = false;    // an error reply was logged on this connection
  bool closing = false;
  bool down_logged = false;
  milliseconds backoff = kBackoffMin;
  std::uint64_t generation = 0;  // of the connection; stale socket waits are ignored
  std::deque<Pending> pending;   // in the order the commands were sent

  std::optional<asio::posix::stream_descriptor> socket;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;

  asio::steady_timer timer;  // the next request deadline or hang check
  bool timer_armed = false;
  std::uint64_t timer_generation = 0;
  asio::steady_timer retry_timer;    // reconnect backoff
  asio::steady_timer connect_timer;  // a dial that never completes

  // ---- connection -----------------------------------------------------------------------

  void set_connected(bool up) {
    if (up == connected) return;
    connected = up;
    if (connected_count != nullptr) {
      if (up) {
        connected_count->fetch_add(1, std::memory_order_relaxed);
      } else {
        connected_count->fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }

  void connect() {
    if (closing || ac != nullptr) return;
    ac = redisAsyncConnect(host.c_str(), port);
    if (ac == nullptr || ac->err) {
      report_down(ac != nullptr ? ac->errstr : "out of memory");
      if (ac != nullptr) redisAsyncFree(ac);
      ac = nullptr;
      schedule_reconnect();
      return;
    }
    ++generation;
    script_loading = false;
    error_logged = false;
    ac->data = this;
    ac->ev.data = this;
    ac->ev.addRead = [](void* p) { static_cast<Impl*>(p)->set_read(true); };
    ac->ev.delRead = [](void* p) { static_cast<Impl*>(p)->set_read(false); };
    ac->ev.addWrite = [](void* p) { static_cast<Impl*>(p)->set_write(true); };
    ac->ev.delWrite = [](void* p) { static_cast<Impl*>(p)->set_write(false); };
    ac->ev.cleanup = [](void* p) { static_cast<Impl*>(p)->release_socket(); };
    redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c, int status) {
      static_cast<Impl*>(c->data)->on_connect(status, c->errstr);
    });
    redisAsyncSetDisconnectCallback(ac, [](const redisAsyncContext* c, int status) {
      static_cast<Impl*>(c->data)->on_disconnect(status, c->errstr);
    });
    try {
      socket.emplace(ioc, ac->c.fd);
    } catch (const std::exception& e) {  // epoll registration failed (out of resources)
      report_down(e.what());
      redisAsyncFree(ac);
      ac = nullptr;
      schedule_reconnect();
      return;
    }
    want_read = want_write = read_armed = write_armed = false;
    // Queued at once: hiredis writes it when the connect completes, ahead of any take().
    send_script_load();
    connect_timer.expires_after(kConnectTimeout);
    connect_timer.async_wait([self = shared_from_this(), g = generation](auto ec) {
      if (ec || self->closing || g != self->generation || self->connected) return;
      self->report_down("connect timed out");
      self->drop_connection();
    });
  }

  void on_connect(int status, const char* error) {
    connect_timer.cancel();
    if (status != REDIS_OK) {
      // hiredis frees the context after this callback; the take()s queued on it are
      // answered through their callbacks with no reply.
      report_down(error);
      ac = nullptr;
      set_connected(false);
      schedule_reconnect();
      return;
    }
    set_connected(true);
    if (down_logged) log::info("rate_limit_store: connected to ", config.redis.text);
    down_logged = false;
  }

  void on_disconnect(int status, const char* error) {
    const bool was_connected = connected;
    ac = nullptr;
    set_connected(false);
    if (closing) return;
    if (was_connected) {
      report_down(status == REDIS_OK ? "connection closed" : error);
    }
    schedule_reconnect();
  }

  void report_down(const char* why) {
    if (down_logged) return;
    down_logged = true;
    log::warn("rate_limit_store: redis ", config.redis.text, ": ", why,
              "; requests of scope global follow on_error until it is back");
  }

  void schedule_reconnect() {
    if (closing) return;
    retry_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, kBackoffMax);
    retry_timer.async_wait([self = shared_from_this()](auto ec) {
      if (!ec && !self->closing) self->connect();
    });
  }

  // Ends the connection from our side (hang, connect timeout, shutdown): hiredis answers the
  // queued commands with no reply, calls on_disconnect when it was connected, and cleans up.
  void drop_connection() {
    if (ac == nullptr) return;
    redisAsyncContext* c = ac;
    const bool was_connected = connected;
    redisAsyncFree(c);  // may re-enter on_disconnect and the reply callbacks
    ac = nullptr;
    set_connected(false);
    if (!was_connected && !closing) schedule_reconnect();
  }

  // ---- hiredis event hooks over Asio --------------------------------------------------------

  void set_read(bool on) {
    want_read = on;
    if (on) arm_read();
  }
  void set_write(bool on) {
    want_write = on;
    if (on) arm_write();
  }
  void release_socket() {
    // hiredis closes the descriptor itself; Asio must only forget it (pending waits end
    // with operation_aborted).
    if (socket) {
      socket->release();
      socket.reset();
    }
    want_read = want_write = false;
  }

  void arm_read() {
    if (read_armed || !socket) return;
    read_armed = true;
    socket->async_wait(asio::posix::stream_descriptor::wait_read,
                       [self = shared_from_this(), g = generation](auto ec) {
                         if (g != self->generation) return;
                         self->read_armed = false;
                         if (ec && ec != asio::error::operation_aborted) {
                           self->drop_connection();  // the descriptor is unusable
                           return;
                         }
                         if (ec || self->ac == nullptr || !self->want_read) return;
                         redisAsyncHandleRead(self->ac);
                         if (g == self->generation && self->ac != nullptr && self->want_read) {
                           self->arm_read();
                         }
                       });
  }

  void arm_write() {
    if (write_armed || !socket) return;
    write_armed = true;
    socket->async_wait(asio::posix::stream_descriptor::wait_write,
                       [self = shared_from_this(), g = generation](auto ec) {
                         if (g != self->generation) return;
                         self->write_armed = false;
                         if (ec && ec != asio::error::operation_aborted) {
                           self->drop_connection();
                           return;
                         }
                         if (ec || self->ac == nullptr || !self->want_write) return;
                         redisAsyncHandleWrite(self->ac);
                         if (g == self->generation && self->ac != nullptr && self->want_write) {
                           self->arm_write();
                         }
                       });
  }

  // ---- commands -----------------------------------------------------------------------------

  void send_script_load() {
    if (script_loading) return;
    Pending p;
    p.script = true;
    p.answered = true;  // nobody waits for it
    p.sent = p.deadline = Clock::now();
    pending.push_back(std::move(p));  // first: a throw must not leave a command unmatched
    if (redisAsyncCommand(ac, &Impl::on_reply, this, "SCRIPT LOAD %s", kScript) != REDIS_OK) {
      pending.pop_back();
      return;
    }
    script_loading = true;
  }

  void take(const std::string& key, const Quota& quota, StoreWaiter& waiter,
            std::shared_ptr<void> keepalive, std::uint64_t tag) {
    if (ac == nullptr || pending.size() >= kMaxPending) {
      fail_soon(waiter, std::move(keepalive), tag,
                ac == nullptr ? "redis is not connected" : "too many requests waiting on redis");
      return;
    }
    char interval[32];
    char capacity[32];
    format_us(interval, quota.interval_ns);
    format_us(capacity, quota.capacity_ns);
    Pending p;
    p.sent = Clock::now();
    p.deadline = p.sent + config.timeout;
    p.waiter = &waiter;
    p.tag = tag;
    pending.push_back(std::move(p));  // first: a throw must not leave a command unmatched
    const int rc = redisAsyncCommand(ac, &Impl::on_reply, this, "EVALSHA %s 1 %b %s %s",
                                     sha.c_str(), key.data(), key.size(), interval, capacity);
    if (rc != REDIS_OK) {
      pending.pop_back();
      fail_soon(waiter, std::move(keepalive), tag, "redis command could not be queued");
      return;
    }
    pending.back().keepalive = std::move(keepalive);
    const auto deadline = pending.back().deadline;
    if (!timer_armed || deadline < timer.expiry()) arm_timer(deadline);
  }

  void fail_soon(StoreWaiter& waiter, std::shared_ptr<void> keepalive, std::uint64_t tag,
                 const char* why) {
    asio::post(ioc, [w = &waiter, k = std::move(keepalive), tag, why] {
      StoreOutcome o;
      o.error = why;
      w->on_store_outcome(tag, o);
    });
  }

  static void on_reply(redisAsyncContext*, void* r, void* privdata) {
    static_cast<Impl*>(privdata)->handle_reply(static_cast<redisReply*>(r));
  }

  void handle_reply(redisReply* reply) {
    if (pending.empty()) return;  // cannot happen: one entry per command sent
    Pending p = std::move(pending.front());
    pending.pop_front();
    if (p.script) {
      script_loading = false;
      if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) {
        // Redis answers: only now is the connection good, and the backoff starts over
        // (a server that accepts and closes at once keeps backing off).
        backoff = kBackoffMin;
      } else if (reply != nullptr) {
        log::error("rate_limit_store: SCRIPT LOAD failed: ", reply->str);
      }
      // No reply: the connection failed, which on_connect/on_disconnect report.
      return;
    }
    const bool error = reply != nullptr && reply->type == REDIS_REPLY_ERROR;
    if (error && std::string_view(reply->str).starts_with("NOSCRIPT") && ac != nullptr) {
      send_script_load();  // the script cache was flushed; one reload for all who saw it
    }
    if (error && !error_logged) {
      error_logged = true;  // once per connection: a misconfigured Redis would flood the log
      log::warn("rate_limit_store: redis error: ", reply->str);
    }
    if (p.answered) return;  // timed out already (or the store is closing)
    StoreOutcome o;
    if (reply == nullptr) {
      o.error = "redis connection lost";
    } else if (error) {
      o.error = "redis answered an error";
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
               reply->element[0]->type == REDIS_REPLY_INTEGER &&
               reply->element[1]->type == REDIS_REPLY_INTEGER) {
      constexpr long long kMaxAheadUs = std::int64_t{1} << 52;  // far beyond any capacity
      o.ok = true;
      o.allowed = reply->element[0]->integer == 1;
      o.ahead_ns = std::clamp(reply->element[1]->integer, 0LL, kMaxAheadUs) * 1000;
    } else {
      o.error = "unexpected reply from redis";
    }
    p.waiter->on_store_outcome(p.tag, o);
  }

  // ---- deadlines ------------------------------------------------------------------------------

  void arm_timer(Clock::time_point at) {
    // Re-arming cancels the wait in progress; its handler must not clear timer_armed.
    timer_armed = true;
    timer.expires_at(at);
    timer.async_wait([self = shared_from_this(), g = ++timer_generation](auto ec) {
      if (g != self->timer_generation) return;
      self->timer_armed = false;
      if (!ec && !self->closing) self->on_timer();
    });
  }

  void on_timer() {
    const auto now = Clock::now();
    // Answer every request whose timeout passed (their replies, if they come, are dropped).
    // Collected first: a waiter may call take(), which appends to `pending`.
    struct Expired {
      StoreWaiter* waiter;
      std::shared_ptr<void> keepalive;
      std::uint64_t tag;
    };
    std::vector<Expired> expired;
    std::optional<Clock::time_point> next;
    for (auto& p : pending) {
      if (p.answered) continue;
      if (p.deadline > now) {
        next = p.deadline;  // FIFO with one timeout: the first unanswered is the earliest
        break;
      }
      p.answered = true;
      expired.push_back({p.waiter, std::move(p.keepalive), p.tag});
    }
    const bool hung = !pending.empty() && now - pending.front().sent >= stuck_after;
    const auto hang_check = pending.empty() ? now : pending.front().sent + stuck_after;
    if (hung) {
      report_down("no reply for too long; reconnecting");
      drop_connection();
    } else if (!pending.empty()) {
      arm_timer(next ? std::min(*next, hang_check) : hang_check);
    }
    StoreOutcome o;
    o.error = "redis did not answer within timeout";
    for (auto& e : expired)
      e.waiter->on_store_outcome(e.tag, o);
  }

  void shutdown() {
    closing = true;
    timer.cancel();
    retry_timer.cancel();
    connect_timer.cancel();
    drop_connection();  // hiredis answers every queued command with no reply...
    // ...unless the free was deferred (shutdown from inside a hiredis callback): answer what
    // is left ourselves, so that every take() still gets exactly one answer.
    for (auto& p : pending) {
      if (p.answered || p.script) continue;
      p.answered = true;
      fail_soon(*p.waiter, std::move(p.keepalive), p.tag, "rate limit store closed");
    }
    pending.clear();
  }
};

RedisStore::RedisStore(asio::io_context& ioc, const config::RateLimitStore& config,
                       std::atomic<std::uint32_t>* connected_count)
    : impl_(std::make_shared<Impl>(ioc, config, connected_count)) {
  impl_->connect();
}

RedisStore::~RedisStore() {
  impl_->shutdown();
}

void RedisStore::take(const std::string& key, const Quota& quota, StoreWaiter& waiter,
                      std::shared_ptr<void> keepalive, std::uint64_t tag) {
  impl_->take(key, quota, waiter, std::move(keepalive), tag);
}

bool RedisStore::serves(const config::RateLimitStore& config) const {
  const auto& c = impl_->config;
  return c.redis.resolved == config.redis.resolved && c.timeout == config.timeout &&
         c.on_error == config.on_error;
}

}  // namespace meridian::ratelimit
