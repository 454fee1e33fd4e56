#include "meridian/http/h2/session_memory.hpp"

#include <cstdint>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace meridian::http::h2 {
namespace {

class SessionMemoryTest : public ::testing::Test {
 protected:
  void* alloc(std::size_t n) { return mem_->malloc(n, mem_->mem_user_data); }
  void* grow(void* p, std::size_t n) { return mem_->realloc(p, n, mem_->mem_user_data); }
  void release(void* p) { mem_->free(p, mem_->mem_user_data); }

  SessionMemory memory_;
  nghttp2_mem* mem_ = memory_.mem();
};

// nghttp2's outbound frame buffer: 9-byte header, 1 pad byte, 16 KiB payload.
constexpr std::size_t kFrameBuffer = 9 + 1 + 16384;
// nghttp2's stream map: 256 buckets of 16 bytes.
constexpr std::size_t kStreamMap = 256 * 16;

// Whether the page at `p` is resident (mincore).
bool resident(const void* p) {
  unsigned char v = 0;
  if (mincore(const_cast<void*>(p), 4096, &v) != 0) return true;
  return (v & 1) != 0;
}

TEST_F(SessionMemoryTest, LargeBlocksArePageAlignedAndTheirPagesCanBeGivenBack) {
  if (sysconf(_SC_PAGESIZE) != 4096) GTEST_SKIP() << "large blocks are plain malloc here";
  auto* p = static_cast<unsigned char*>(alloc(kFrameBuffer));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 4096, 0u);
  EXPECT_EQ(memory_.large_blocks(), 1u);
  std::memset(p, 0xab, kFrameBuffer);
  memory_.release_idle();
  // The whole pages are gone and read as zeros; the bytes past the last whole page are kept.
  EXPECT_FALSE(resident(p));
  EXPECT_FALSE(resident(p + 3 * 4096));
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[16383], 0);
  EXPECT_EQ(p[16384], 0xab);
  p[0] = 7;  // and the block is still ours to write
  EXPECT_EQ(p[0], 7);
  release(p);
  EXPECT_EQ(memory_.large_blocks(), 0u);
}

TEST_F(SessionMemoryTest, PageSizedBlocksGiveBackOnlyTheirAllZeroPages) {
  if (sysconf(_SC_PAGESIZE) != 4096) GTEST_SKIP() << "large blocks are plain malloc here";
  auto* map = static_cast<unsigned char*>(mem_->calloc(256, 16, mem_->mem_user_data));
  ASSERT_NE(map, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(map) % 4096, 0u);
  // A stream in the map: its contents must survive.
  map[100] = 0x5a;
  memory_.release_idle();
  EXPECT_TRUE(resident(map));
  EXPECT_EQ(map[100], 0x5a);
  // No stream: all zeros, which the kernel gives back on the next touch anyway.
  map[100] = 0;
  memory_.release_idle();
  EXPECT_FALSE(resident(map));
  for (std::size_t i = 0; i < kStreamMap; ++i)
    ASSERT_EQ(map[i], 0) << i;
  map[7] = 1;
  EXPECT_EQ(map[7], 1);
  release(map);
}

TEST_F(SessionMemoryTest, OtherLargeBlocksKeepWhatTheyHold) {
  if (sysconf(_SC_PAGESIZE) != 4096) GTEST_SKIP() << "large blocks are plain malloc here";
  // A large header value being received, say: not scratch, whatever its size.
  constexpr std::size_t kValue = 3 * 4096;
  auto* v = static_cast<unsigned char*>(alloc(kValue));
  ASSERT_NE(v, nullptr);
  std::memset(v, 0, kValue);
  v[5000] = 0x42;  // the second page holds data; the first and third are zeros
  memory_.release_idle();
  EXPECT_FALSE(resident(v));
  EXPECT_TRUE(resident(v + 4096));
  EXPECT_EQ(v[5000], 0x42);
  release(v);
}

TEST_F(SessionMemoryTest, SmallBlocksAreLeftToMalloc) {
  void* p = alloc(100);
  void* q = mem_->calloc(10, 10, mem_->mem_user_data);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memory_.large_blocks(), 0u);
  EXPECT_EQ(static_cast<unsigned char*>(q)[99], 0);
  release(p);
  release(q);
}

TEST_F(SessionMemoryTest, ReallocKeepsTheContentsAcrossBothKinds) {
  auto* p = static_cast<char*>(alloc(64));
  std::memcpy(p, "frame", 6);
  p = static_cast<char*>(grow(p, kFrameBuffer));  // small to large
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p, "frame");
  p = static_cast<char*>(grow(p, 2 * kFrameBuffer));  // large to larger
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p, "frame");
  p = static_cast<char*>(grow(p, 32));  // back to small
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p, "frame");
  EXPECT_EQ(memory_.large_blocks(), 0u);
  release(p);
}

}  // namespace
}  // namespace meridian::http::h2
