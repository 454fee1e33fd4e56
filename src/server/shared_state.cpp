#include "meridian/server/shared_state.hpp"

#include <algorithm>
#include <chrono>
#include <poll.h>
#include <string_view>

#include <boost/asio/post.hpp>
#include <hiredis/hiredis.h>

#include "meridian/core/log.hpp"

namespace meridian::server {

namespace {

constexpr const char* kKey = "meridian:state";  // the hash and the channel
constexpr std::chrono::milliseconds kPoll{200};
constexpr timeval kConnectTimeout{1, 0};
constexpr timeval kPublishTimeout{0, 200'000};

std::string field_of(const SharedUpdate& u) {
  return u.backend + '\t' + u.region + '\t' + u.endpoint.value_or("");
}

// "backend\tregion\tendpoint" and a state -> an update; nullopt for a malformed field.
std::optional<SharedUpdate> parse(std::string_view field, std::string_view state) {
  const auto a = field.find('\t');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = field.find('\t', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  SharedUpdate u;
  u.backend = std::string(field.substr(0, a));
  u.region = std::string(field.substr(a + 1, b - a - 1));
  const auto endpoint = field.substr(b + 1);
  if (!endpoint.empty()) u.endpoint = std::string(endpoint);
  u.state = std::string(state);
  return u;
}

std::string_view text_of(const redisReply* r) {
  return r->str != nullptr ? std::string_view(r->str, r->len) : std::string_view{};
}

struct ReplyDeleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Reply command(redisContext* c, const char* format, const char* arg) {
  return Reply(static_cast<redisReply*>(redisCommand(c, format, arg)));
}

}  // namespace

SharedState::SharedState(boost::asio::io_context& main, boost::asio::ip::tcp::endpoint redis,
                         std::string address_text, Apply apply)
    : main_(main),
      redis_(std::move(redis)),
      address_text_(std::move(address_text)),
      apply_(std::move(apply)),
      thread_([this] { run(); }) {}

SharedState::~SharedState() {
  stop_.store(true);
  thread_.join();
  if (publisher_ != nullptr) redisFree(publisher_);
}

bool SharedState::publish(const SharedUpdate& update) {
  if (publisher_ == nullptr) {
    publisher_ = redisConnectWithTimeout(redis_.address().to_string().c_str(), redis_.port(),
                                         kPublishTimeout);
    if (publisher_ == nullptr || publisher_->err != 0) {
      log::warn("shared state: Redis ", address_text_, ": ",
                publisher_ != nullptr ? publisher_->errstr : "cannot connect");
      if (publisher_ != nullptr) redisFree(publisher_);
      publisher_ = nullptr;
      return false;
    }
    redisSetTimeout(publisher_, kPublishTimeout);
  }
  const std::string field = field_of(update);
  const std::string message = field + '\t' + update.state;
  redisAppendCommand(publisher_, "HSET %s %b %b", kKey, field.data(), field.size(),
                     update.state.data(), update.state.size());
  redisAppendCommand(publisher_, "PUBLISH %s %b", kKey, message.data(), message.size());
  bool ok = true;
  for (int i = 0; i < 2; ++i) {
    void* raw = nullptr;
    if (redisGetReply(publisher_, &raw) != REDIS_OK) {
      ok = false;
      break;
    }
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) ok = false;
  }
  if (!ok) {
    log::warn("shared state: Redis ", address_text_,
              " did not take the override: ", publisher_->err != 0 ? publisher_->errstr : "error");
    redisFree(publisher_);  // a half-read pipeline cannot be reused
    publisher_ = nullptr;
  }
  return ok;
}

void SharedState::run() {
  auto backoff = std::chrono::milliseconds(100);
  while (!stop_.load()) {
    const std::string host = redis_.address().to_string();
    redisContext* sub = redisConnectWithTimeout(host.c_str(), redis_.port(), kConnectTimeout);
    if (sub != nullptr && sub->err == 0 && follow(sub)) backoff = std::chrono::milliseconds(100);
    if (sub != nullptr) redisFree(sub);
    if (connected_.exchange(false)) log::warn("shared state: lost Redis ", address_text_);
    // Wait before dialling again, waking for stop.
    for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stop_.load();
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

// Subscribes, reads the whole hash, then hands each message to the main thread until the
// connection fails or stop is asked. True once it got as far as following the channel.
bool SharedState::follow(redisContext* sub) {
  redisSetTimeout(sub, kConnectTimeout);
  // TCP keepalive: a path that died silently (a NAT's idle timeout, a host gone) ends the
  // connection instead of leaving this node deaf to the fleet while reporting "connected".
  redisEnableKeepAlive(sub);
  const Reply subscribed = command(sub, "SUBSCRIBE %s", kKey);
  if (!subscribed || subscribed->type == REDIS_REPLY_ERROR) return false;
  // The hash after the subscription: what changes from here on arrives as messages, which
  // are applied after it, so the newest value always wins.
  redisContext* reader =
      redisConnectWithTimeout(redis_.address().to_string().c_str(), redis_.port(), kConnectTimeout);
  if (reader == nullptr || reader->err != 0) {
    if (reader != nullptr) redisFree(reader);
    return false;
  }
  redisSetTimeout(reader, kConnectTimeout);
  const Reply all = command(reader, "HGETALL %s", kKey);
  redisFree(reader);
  if (!all || all->type != REDIS_REPLY_ARRAY) return false;
  std::vector<SharedUpdate> updates;
  for (std::size_t i = 0; i + 1 < all->elements; i += 2) {
    if (auto u = parse(text_of(all->element[i]), text_of(all->element[i + 1]))) {
      updates.push_back(std::move(*u));
    }
  }
  log::info("shared state: following Redis ", address_text_, " (", updates.size(),
            updates.size() == 1 ? " override)" : " overrides)");
  connected_.store(true);
  boost::asio::post(main_, [apply = apply_, updates = std::move(updates)] { apply(updates); });

  while (!stop_.load()) {
    void* raw = nullptr;
    if (redisReaderGetReply(sub->reader, &raw) != REDIS_OK) return true;
    if (raw != nullptr) {
      const Reply reply(static_cast<redisReply*>(raw));
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
          text_of(reply->element[0]) != "message") {
        continue;
      }
      const auto payload = text_of(reply->element[2]);
      const auto last = payload.rfind('\t');
      if (last == std::string_view::npos) continue;
      if (auto u = parse(payload.substr(0, last), payload.substr(last + 1))) {
        boost::asio::post(main_, [apply = apply_, u = std::move(*u)] { apply({u}); });
      }
      continue;
    }
    pollfd p{sub->fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(kPoll.count()));
    if (n < 0 && errno != EINTR) return true;
    if (n > 0 && redisBufferRead(sub) != REDIS_OK) return true;
  }
  return true;
}

}  // namespace meridian::server
