#include "meridian/accesslog/access_log.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "meridian/core/log.hpp"

namespace meridian::accesslog {

namespace {

// The writer looks at the rings every 5 ms while lines come, backing off to 100 ms when they
// stop (an idle writer should not wake 200 times a second), and a producer nudges it when
// its ring passes half full, so that a burst after a quiet spell is not dropped.
constexpr auto kPollMin = std::chrono::milliseconds(5);
constexpr auto kPollMax = std::chrono::milliseconds(100);
constexpr auto kPollOff = std::chrono::milliseconds(1000);  // access_log.path: off
constexpr int kWriteWaitMs = 100;  // a blocked destination is re-checked this often

// Single producer (a worker), single consumer (the writer thread). Positions only grow; the
// byte at position p lives at p % size.
struct Ring {
  explicit Ring(std::size_t bytes) : data(new char[bytes]), size(bytes) {}
  std::unique_ptr<char[]> data;
  const std::size_t size;
  alignas(64) std::atomic<std::uint64_t> written{0};  // producer's; published with release
  alignas(64) std::atomic<std::uint64_t> read{0};     // consumer's; freed with release
  alignas(64) std::atomic<std::uint64_t> dropped{0};
};

}  // namespace

struct AccessLog::Impl {
  Impl(std::string p, std::size_t workers) : path(std::move(p)) {
    for (std::size_t i = 0; i < workers; ++i)
      rings.push_back(std::make_unique<Ring>(kRingBytes));
    thread = std::thread([this] { run(); });
  }

  std::vector<std::unique_ptr<Ring>> rings;
  std::mutex mutex;  // guards path and the wake-up; never taken by workers
  std::condition_variable wake;
  std::string path;
  bool reopen_wanted = false;
  bool stopping = false;
  int fd = -1;
  bool own_fd = false;    // a file we opened (not stdout/stderr)
  bool may_block = true;  // not a regular file: wait for room before each write
  bool off = false;       // access_log.path: off -- nothing is written, nothing is lost
  std::atomic<std::uint64_t> lost{0};  // lines queued but never written (dead destination)
  std::atomic<bool> nudged{false};     // a producer's ring passed half full
  bool open_failed_logged = false;
  std::thread thread;

  void close_fd() {
    if (own_fd && fd >= 0) ::close(fd);
    fd = -1;
    own_fd = false;
  }

  void open_fd(const std::string& target) {
    close_fd();
    off = target == "off";
    if (off) return;
    if (target == "stdout" || target == "stderr") {
      fd = target == "stdout" ? STDOUT_FILENO : STDERR_FILENO;
      struct stat st {};
      may_block = ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
      return;
    }
    // Non-blocking: a FIFO without a reader fails at once (ENXIO) instead of hanging, and a
    // full one makes write() say EAGAIN, which write_all() waits out in bounded steps.
    fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd < 0) {
      if (!open_failed_logged) {
        log::error("access log: cannot open ", target, ": ", std::strerror(errno),
                   "; lines are dropped until it can be opened");
      }
      open_failed_logged = true;
      return;
    }
    open_failed_logged = false;
    own_fd = true;
    struct stat st {};
    may_block = ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
  }

  // Writes [p, p + n); false when stopping interrupted it or the destination failed. A pipe
  // or terminal (stdout included, which we must not make non-blocking) is waited on with
  // poll() in bounded steps and written at most a page at a time, which a writable pipe
  // takes without blocking, so that the thread can always notice a stop.
  bool write_all(const char* p, std::size_t n) {
    constexpr std::size_t kPage = 4096;
    while (n > 0) {
      if (may_block) {
        pollfd pfd{fd, POLLOUT, 0};
        if (::poll(&pfd, 1, kWriteWaitMs) == 0) {
          if (stop_requested()) return false;
          continue;
        }
      }
      const ssize_t w = ::write(fd, p, may_block ? std::min(n, kPage) : n);
      if (w > 0) {
        p += w;
        n -= static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        if (stop_requested()) return false;
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, kWriteWaitMs);
        continue;
      }
      return false;  // EPIPE (the reader went away), ENOSPC...: this batch is lost
    }
    return true;
  }

  bool stop_requested() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  static std::uint64_t count_lines(const Ring& ring, std::uint64_t from, std::uint64_t to) {
    std::uint64_t lines = 0;
    for (std::uint64_t pos = from; pos < to; ++pos)
      lines += ring.data[pos % ring.size] == '\n' ? 1 : 0;
    return lines;
  }

  // Moves what each ring holds to the destination; returns whether anything was there.
  bool drain() {
    bool any = false;
    for (auto& ring : rings) {
      const std::uint64_t end = ring->written.load(std::memory_order_acquire);
      std::uint64_t pos = ring->read.load(std::memory_order_relaxed);
      if (pos == end) continue;
      any = true;
      bool ok = fd >= 0;
      std::uint64_t failed_from = ok ? end : pos;
      while (ok && pos < end) {
        const std::size_t offset = pos % ring->size;
        const std::size_t n = std::min<std::uint64_t>(end - pos, ring->size - offset);
        ok = write_all(ring->data.get() + offset, n);
        if (!ok) failed_from = pos;
        pos += n;
      }
      if (failed_from < end && !off) {
        // No destination or a failed write: the lines are released all the same (a dead
        // destination must not stop the rings from taking new ones) and counted as dropped.
        lost.fetch_add(count_lines(*ring, failed_from, end), std::memory_order_relaxed);
      }
      ring->read.store(end, std::memory_order_release);
    }
    return any;
  }

  void run() {
    std::string current;
    {
      std::lock_guard lock(mutex);
      current = path;
    }
    open_fd(current);
    auto interval = kPollMin;
    while (true) {
      bool stop = false;
      bool reopen = false;
      std::string wanted;
      {
        std::unique_lock lock(mutex);
        wake.wait_for(lock, off ? kPollOff : interval, [this] {
          return stopping || reopen_wanted || nudged.load(std::memory_order_relaxed) ||
                 (off && path != "off");
        });
        nudged.store(false, std::memory_order_relaxed);
        stop = stopping;
        reopen = reopen_wanted;
        reopen_wanted = false;
        wanted = path;
      }
      if (reopen || wanted != current || (fd < 0 && !stop && current != "off")) {
        current = wanted;
        open_fd(current);
      }
      interval = drain() ? kPollMin : std::min(interval * 2, kPollMax);
      if (stop) break;
    }
    close_fd();
  }
};

AccessLog::AccessLog(std::string path, std::size_t workers)
    : path_(path), impl_(std::make_unique<Impl>(std::move(path), workers)) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_one();
  impl_->thread.join();
}

bool AccessLog::push(std::size_t index, std::string_view line) {
  Ring& ring = *impl_->rings[index];
  const std::uint64_t pos = ring.written.load(std::memory_order_relaxed);
  const std::uint64_t free = ring.size - (pos - ring.read.load(std::memory_order_acquire));
  if (line.size() > free) {
    ring.dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::size_t offset = pos % ring.size;
  const std::size_t first = std::min(line.size(), ring.size - offset);
  std::memcpy(ring.data.get() + offset, line.data(), first);
  std::memcpy(ring.data.get(), line.data() + first, line.size() - first);
  ring.written.store(pos + line.size(), std::memory_order_release);
  const std::uint64_t half = ring.size / 2;
  if (ring.size - free < half && ring.size - free + line.size() >= half) {
    // Crossing half full: the writer may be in a long sleep. Rare, so the futex is fine.
    impl_->nudged.store(true, std::memory_order_relaxed);
    impl_->wake.notify_one();
  }
  return true;
}

void AccessLog::set_path(const std::string& path) {
  if (path == path_) return;
  path_ = path;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->path = path;
  }
  impl_->wake.notify_one();
}

void AccessLog::reopen() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->reopen_wanted = true;
  }
  impl_->wake.notify_one();
}

std::uint64_t AccessLog::dropped() const {
  std::uint64_t n = impl_->lost.load(std::memory_order_relaxed);
  for (const auto& ring : impl_->rings)
    n += ring->dropped.load(std::memory_order_relaxed);
  return n;
}

}  // namespace meridian::accesslog
