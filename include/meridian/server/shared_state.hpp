// Runtime overrides shared by a fleet (admin.shared_state: redis; docs/admin-api.md): a
// POST /state on one node reaches every node through Redis.
//
// In Redis: the hash `meridian:state` holds every override (field "backend\tregion\tendpoint",
// endpoint empty for a region; value the state), and the channel `meridian:state` carries each
// change as "backend\tregion\tendpoint\tstate" (names cannot hold control characters). A node
// reads the hash when it connects and after every reconnect, so one that was away catches up,
// and follows the channel in between. Redis being down changes nothing already applied.
//
// Threads: a subscriber thread of its own (blocking hiredis, polled every 200 ms for stop)
// hands updates to the main thread's io_context; publish() runs on the main thread with
// 200 ms timeouts (connect, then reply), so a hung Redis delays a POST /state by about
// 400 ms at most.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

struct redisContext;

namespace meridian::server {

struct SharedUpdate {
  std::string backend;
  std::string region;
  std::optional<std::string> endpoint;
  std::string state;
};

class SharedState {
 public:
  // `apply` runs on `main`'s thread with the updates read from Redis.
  using Apply = std::function<void(const std::vector<SharedUpdate>& updates)>;

  SharedState(boost::asio::io_context& main, boost::asio::ip::tcp::endpoint redis,
              std::string address_text, Apply apply);
  ~SharedState();  // stops and joins the subscriber
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  // Records `update` in the hash and announces it on the channel. Main thread. False when
  // Redis did not take it (down, hung, error): the override then holds on this node only.
  bool publish(const SharedUpdate& update);

  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  const std::string& address() const { return address_text_; }
  const boost::asio::ip::tcp::endpoint& redis() const { return redis_; }

 private:
  void run();
  bool follow(redisContext* subscriber);

  boost::asio::io_context& main_;
  boost::asio::ip::tcp::endpoint redis_;
  std::string address_text_;
  Apply apply_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  redisContext* publisher_ = nullptr;  // main thread
  std::thread thread_;
};

}  // namespace meridian::server
