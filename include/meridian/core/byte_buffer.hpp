// A contiguous byte buffer with a read position and a write position, for socket I/O.
// Bytes are appended at the end (prepare/commit) and taken from the front (consume); compact()
// moves the unread bytes to the start so the free tail is as large as possible. It grows only
// when asked (reserve) and never past what the caller allows, so every session's memory stays
// bounded. One owner; not thread-safe.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace meridian {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(std::size_t capacity) { reserve(capacity); }

  // Unread bytes.
  std::string_view data() const { return {storage_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::size_t capacity() const { return capacity_; }

  // Free space after the unread bytes (compact first to maximise it).
  char* tail() { return storage_.get() + end_; }
  std::size_t tail_size() const { return capacity_ - end_; }
  void commit(std::size_t n) { end_ += n; }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;  // cheap reset keeps the whole buffer free
  }

  void compact() {
    if (begin_ == 0) return;
    const std::size_t n = size();
    if (n > 0) std::memmove(storage_.get(), storage_.get() + begin_, n);
    begin_ = 0;
    end_ = n;
  }

  // Makes the capacity at least `capacity`, keeping the unread bytes (compacted).
  void reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
    const std::size_t n = size();
    if (n > 0) std::memcpy(bigger.get(), storage_.get() + begin_, n);
    storage_ = std::move(bigger);
    capacity_ = capacity;
    begin_ = 0;
    end_ = n;
  }

  // Frees the storage when nothing is unread (an idle connection keeps no buffer).
  void release_if_empty() {
    if (!empty()) return;
    storage_.reset();
    capacity_ = begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<char[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace meridian
