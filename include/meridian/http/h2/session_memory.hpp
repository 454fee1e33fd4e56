// The memory of one nghttp2 session (nghttp2_mem), so that an idle HTTP/2 connection does not
// keep nghttp2's two largest blocks resident:
// - its outbound frame buffer (one chunk of kFrameBufferChunk bytes: a frame header, a pad
//   byte and 16 KiB of payload; more chunks for a header block that outgrows one), allocated
//   with the session and kept for its life, although what it holds is dead whenever the
//   session has nothing to send (it is reset after every frame). Blocks of exactly that size
//   are scratch: release_idle() gives all their pages back.
// - its stream map, a 4 KiB table of buckets that reads as all zeros whenever no stream is
//   open (a removed stream's bucket is cleared). Every other block of kPageBlock bytes or more
//   gives back only the pages that are all zeros, which is what the kernel hands back on the
//   next touch: their contents cannot change, whatever nghttp2 keeps there (a large header
//   value being received, say).
// Both kinds are page-aligned here, and release_idle() returns their pages to the kernel
// (madvise MADV_DONTNEED): they stay allocated, and read as zeros when next touched.
// Everything else goes to malloc as before.
//
// With pages larger than 4 KiB (some ARM64 kernels use 16 or 64 KiB) these blocks have no
// page of their own to give back: they are plain malloc blocks then, and release_idle()
// does nothing. Thread: the session's.
#pragma once

#include <array>
#include <cstddef>

#include <nghttp2/nghttp2.h>

namespace meridian::http::h2 {

class SessionMemory {
 public:
  static constexpr std::size_t kPageBlock = 4096;
  // nghttp2's NGHTTP2_FRAMEBUF_CHUNKLEN (9 + 1 + 16384), the same in every 1.x release.
  static constexpr std::size_t kFrameBufferChunk = 16394;

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

  // nghttp2 has two or three such blocks per session; more fall back to malloc.
  std::array<Block, 6> large_{};
  nghttp2_mem mem_;
};

}  // namespace meridian::http::h2
