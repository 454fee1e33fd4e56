// The memory of one nghttp2 session (nghttp2_mem), so that an idle HTTP/2 connection does not
// keep nghttp2's 16 KiB outbound frame buffer resident. nghttp2 allocates that buffer with the
// session and keeps it for the session's life, although what it holds is dead whenever the
// session has nothing to send (it is reset after every frame). Blocks of kLargeBlock bytes and
// more (that buffer; a header block that outgrows it) are page-aligned here, and
// release_idle() gives their whole pages back to the kernel (madvise MADV_DONTNEED): they
// stay allocated, and read as zeros when nghttp2 next writes a frame into them. Everything
// else goes to malloc as before.
//
// With pages larger than 4 KiB (some ARM64 kernels use 16 or 64 KiB) a 16 KiB block has no
// page of its own to give back: large blocks are plain malloc blocks then, and release_idle()
// does nothing. Thread: the session's.
#pragma once

#include <array>
#include <cstddef>

#include <nghttp2/nghttp2.h>

namespace meridian::http::h2 {

class SessionMemory {
 public:
  static constexpr std::size_t kLargeBlock = 8192;

  SessionMemory();
  SessionMemory(const SessionMemory&) = delete;
  SessionMemory& operator=(const SessionMemory&) = delete;

  // What nghttp2_session_*_new3 takes; valid for this object's life, which must outlast the
  // session (nghttp2_session_del frees through it).
  nghttp2_mem* mem() { return &mem_; }

  // Only when the session has nothing to send (no frame is being serialized).
  void release_idle();
  std::size_t large_blocks() const;  // for tests

 private:
  static void* on_malloc(std::size_t size, void* self);
  static void on_free(void* ptr, void* self);
  static void* on_calloc(std::size_t count, std::size_t size, void* self);
  static void* on_realloc(void* ptr, std::size_t size, void* self);

  void* allocate(std::size_t size);
  struct Block {
    void* ptr = nullptr;
    std::size_t size = 0;
  };
  Block* find(void* ptr);

  // nghttp2 has one or two large blocks per session; more fall back to malloc.
  std::array<Block, 4> large_{};
  nghttp2_mem mem_;
};

}  // namespace meridian::http::h2
