#include "meridian/http/h2/session_memory.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

namespace meridian::http::h2 {

namespace {

constexpr std::size_t kPage = 4096;

// Large blocks get pages of their own only where a page is 4 KiB.
bool page_blocks() {
  static const bool ok = sysconf(_SC_PAGESIZE) == static_cast<long>(kPage);
  return ok;
}

}  // namespace

SessionMemory::SessionMemory() : mem_{this, on_malloc, on_free, on_calloc, on_realloc} {}

SessionMemory::Block* SessionMemory::find(void* ptr) {
  for (auto& b : large_) {
    if (b.ptr == ptr) return &b;
  }
  return nullptr;
}

void* SessionMemory::allocate(std::size_t size) {
  if (size < kPageBlock || !page_blocks()) return std::malloc(size);
  Block* slot = find(nullptr);
  if (slot == nullptr) return std::malloc(size);
  void* ptr = nullptr;
  if (posix_memalign(&ptr, kPage, size) != 0) return nullptr;
  *slot = {ptr, size};
  return ptr;
}

void* SessionMemory::on_malloc(std::size_t size, void* self) {
  return static_cast<SessionMemory*>(self)->allocate(size);
}

void SessionMemory::on_free(void* ptr, void* self) {
  if (ptr == nullptr) return;
  if (Block* b = static_cast<SessionMemory*>(self)->find(ptr)) *b = {};
  std::free(ptr);
}

void* SessionMemory::on_calloc(std::size_t count, std::size_t size, void* self) {
  if (size != 0 && count > SIZE_MAX / size) return nullptr;
  void* ptr = static_cast<SessionMemory*>(self)->allocate(count * size);
  if (ptr != nullptr) std::memset(ptr, 0, count * size);
  return ptr;
}

void* SessionMemory::on_realloc(void* ptr, std::size_t size, void* self) {
  auto* m = static_cast<SessionMemory*>(self);
  if (ptr == nullptr) return m->allocate(size);
  Block* old = m->find(ptr);
  if (old == nullptr && size < kPageBlock) return std::realloc(ptr, size);
  // Into or out of a page-aligned block: a new block, the contents copied.
  const std::size_t old_size = old != nullptr ? old->size : malloc_usable_size(ptr);
  void* fresh = m->allocate(size);
  if (fresh == nullptr) return nullptr;
  std::memcpy(fresh, ptr, std::min(old_size, size));
  if (old != nullptr) *old = {};
  std::free(ptr);
  return fresh;
}

namespace {

bool all_zero(const unsigned char* p, std::size_t n) {
  return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

}  // namespace

void SessionMemory::release_idle() {
  for (const auto& b : large_) {
    if (b.ptr == nullptr) continue;
    auto* const base = static_cast<unsigned char*>(b.ptr);  // the block starts on a page
    const std::size_t pages = b.size / kPage;
    if (b.size == kFrameBufferChunk) {
      madvise(base, pages * kPage, MADV_DONTNEED);
      continue;
    }
    for (std::size_t i = 0; i < pages; ++i) {
      auto* const page = base + i * kPage;
      if (all_zero(page, kPage)) madvise(page, kPage, MADV_DONTNEED);
    }
  }
}

std::size_t SessionMemory::large_blocks() const {
  return static_cast<std::size_t>(
      std::count_if(large_.begin(), large_.end(), [](const Block& b) { return b.ptr != nullptr; }));
}

}  // namespace meridian::http::h2
