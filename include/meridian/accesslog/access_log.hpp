// The access log's writer: workers hand finished lines to it and never wait, a
// thread of its own writes them to stdout, stderr or a file.
//
// Each worker has its own single-producer ring of bytes (lock-free: the worker writes and
// publishes with one release store, the writer thread reads and frees with another). When a
// ring is full the line is dropped and counted (meridian_access_log_dropped_total), so a slow
// or stuck destination -- a full disk, a FIFO nobody reads -- costs log lines, never request
// latency. The writer polls the rings every few milliseconds (producers make no syscall),
// writes with a bounded wait so that it can always stop, and reopens the file when asked
// (SIGUSR1, for logrotate) or when a reload names another path.
//
// Threads: push() only from the worker that owns ring `index`; everything else from the main
// thread. Lines appear in each worker's order; lines of different workers interleave.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace meridian::accesslog {

class AccessLog {
 public:
  static constexpr std::size_t kRingBytes = 1 << 20;  // per worker: about 4,000 JSON lines

  // `path`: "stdout", "stderr", "off" or a file path (opened for append, created 0640; a
  // FIFO without a reader is retried, its lines dropped meanwhile).
  AccessLog(std::string path, std::size_t workers);
  ~AccessLog();  // writes what is queued (bounded wait), then stops the thread
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Worker `index`: queue one line (it must end with '\n'). False when it was dropped.
  bool push(std::size_t index, std::string_view line);

  // Main thread: write to `path` from now on (a reload); reopen() the same path (SIGUSR1).
  void set_path(const std::string& path);
  void reopen();

  std::uint64_t dropped() const;  // lines dropped so far, all workers

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meridian::accesslog
