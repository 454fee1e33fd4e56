// Coarse timeouts for many connections on one worker without a timer per operation.
//
// Each connection keeps one deadline and links itself into its worker's list; the worker
// sweeps the list on a fixed tick (DeadlineList::kTick) and calls on_deadline() for the
// entries whose deadline passed. Setting a deadline is a store, with no syscall and no timer
// queue update, which matters when every request sets two or three of them (header, request,
// connect). Precision is one tick, which is fine for timeouts measured in seconds.
// Thread: the owning worker only.
#pragma once

#include <chrono>

namespace meridian::net {

using Clock = std::chrono::steady_clock;

class DeadlineList;

class Deadline {
 public:
  Deadline() = default;
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  virtual ~Deadline() { unlink(); }

  void link(DeadlineList& list);
  void unlink();
  void expires_at(Clock::time_point t) { when_ = t; }
  void expires_after(Clock::duration d) { when_ = Clock::now() + d; }
  void clear() { when_ = Clock::time_point::max(); }
  Clock::time_point expiry() const { return when_; }

  // Called once per sweep after expiry() passed; must clear() or move the deadline, and
  // must not destroy this object synchronously (close sockets; handlers finish later).
  virtual void on_deadline() = 0;
  // Called once when the worker starts draining (SIGTERM): close if idle, else finish the
  // work in progress and close after it. Same rules as on_deadline().
  virtual void on_drain() {}
  // Called when the worker shuts down for good: close everything now.
  virtual void on_abort() {}

 private:
  friend class DeadlineList;
  DeadlineList* list_ = nullptr;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
  Clock::time_point when_ = Clock::time_point::max();
};

class DeadlineList {
 public:
  static constexpr std::chrono::milliseconds kTick{100};

  // Calls on_deadline() on every entry whose deadline is at or before `now`. O(entries).
  void sweep(Clock::time_point now);
  // Calls on_drain() on every entry.
  void drain_all();
  // Calls on_abort() on every entry.
  void abort_all();
  std::size_t size() const { return size_; }

 private:
  friend class Deadline;
  // Calls (entry->*method)() on every entry; entries may unlink themselves meanwhile.
  void for_each(void (Deadline::*method)());

  Deadline* head_ = nullptr;
  Deadline* cursor_ = nullptr;  // the next entry of a sweep in progress (survives unlinks)
  std::size_t size_ = 0;
};

}  // namespace meridian::net
