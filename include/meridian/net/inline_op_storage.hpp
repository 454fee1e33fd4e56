// Room for one pending asynchronous operation inside the object that starts it.
//
// Asio allocates every operation it queues (the op object wraps the completion handler).
// By default that memory comes from a per-thread recycling cache, whose blocks are as large
// as the largest operation that used them (a composed write's is about 500 bytes). An idle
// keep-alive connection keeps one operation queued for as long as it is idle -- its wait
// for the next request -- so with 10,000 idle connections those blocks would be most of the
// memory they cost. Bound to an InlineOpAllocator (boost::asio::bind_allocator), such an
// operation lives inside its connection object instead: no block at all.
//
// Safe because Asio moves the handler (which keeps the connection alive) out of the
// operation before it frees the operation's memory, on completion and on destruction
// alike (the rule behind Asio's own "allocation" example). One operation at a time; a
// second one, or one larger than N, falls back to operator new (counted, for tests).
// Thread: the owner's only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace meridian::net {

template <std::size_t N>
class InlineOpStorage {
 public:
  // Asio's operations hold pointers and integers; 8 rather than max_align_t's 16 keeps the
  // owner from padding (InlineOpAllocator checks each operation type against it).
  static constexpr std::size_t kAlignment = alignof(void*);

  InlineOpStorage() = default;
  InlineOpStorage(const InlineOpStorage&) = delete;
  InlineOpStorage& operator=(const InlineOpStorage&) = delete;

  void* allocate(std::size_t n) {
    if (!in_use_ && n <= N) {
      in_use_ = true;
      return storage_;
    }
    ++spilled_;
    return ::operator new(n);
  }
  void deallocate(void* p) {
    if (p == storage_) {
      in_use_ = false;
    } else {
      ::operator delete(p);
    }
  }
  // Allocations that did not fit (too large, or the storage was taken).
  std::uint32_t spilled() const { return spilled_; }

 private:
  alignas(kAlignment) unsigned char storage_[N];
  bool in_use_ = false;
  std::uint32_t spilled_ = 0;
};

template <typename T, std::size_t N>
class InlineOpAllocator {
 public:
  using value_type = T;
  template <typename U>
  struct rebind {  // spelled out: std::allocator_traits cannot rebind past the size parameter
    using other = InlineOpAllocator<U, N>;
  };

  explicit InlineOpAllocator(InlineOpStorage<N>& storage) noexcept : storage_(&storage) {}
  template <typename U>
  InlineOpAllocator(const InlineOpAllocator<U, N>& other) noexcept  // NOLINT: rebinding
      : storage_(other.storage_) {}

  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= InlineOpStorage<N>::kAlignment, "operation over-aligned");
    return static_cast<T*>(storage_->allocate(sizeof(T) * n));
  }
  void deallocate(T* p, std::size_t) noexcept { storage_->deallocate(p); }

  template <typename U>
  bool operator==(const InlineOpAllocator<U, N>& other) const noexcept {
    return storage_ == other.storage_;
  }

 private:
  template <typename U, std::size_t M>
  friend class InlineOpAllocator;
  InlineOpStorage<N>* storage_;
};

}  // namespace meridian::net
