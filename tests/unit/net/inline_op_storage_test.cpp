#include "meridian/net/inline_op_storage.hpp"

#include <memory>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "meridian/net/socket.hpp"

namespace meridian::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The session's wait for readability has this shape: a socket wait whose handler holds
// the connection alive by a shared_ptr. It must fit H1Session's storage (kWaitOpStorage
// there is this 160), or every idle connection would allocate after all.
constexpr std::size_t kStorage = 104;

struct Pair {
  asio::io_context ioc;
  TcpSocket a{ioc}, b{ioc};
  Pair() {
    TcpAcceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    a.connect(acceptor.local_endpoint());
    b = acceptor.accept();
  }
};

TEST(InlineOpStorage, ASocketWaitFitsAndCompletes) {
  Pair p;
  InlineOpStorage<kStorage> storage;
  // Captures exactly what the session's handler does: one shared_ptr.
  auto owner = std::make_shared<bool>(false);
  p.b.async_wait(tcp::socket::wait_read,
                 asio::bind_allocator(InlineOpAllocator<void, kStorage>(storage),
                                      [owner](boost::system::error_code ec) {
                                        EXPECT_FALSE(ec);
                                        *owner = true;
                                      }));
  asio::write(p.a, asio::buffer("x", 1));
  p.ioc.run();
  EXPECT_TRUE(*owner);
  EXPECT_EQ(storage.spilled(), 0u);
  EXPECT_EQ(owner.use_count(), 1);  // the handler was destroyed
}

TEST(InlineOpStorage, ReusableAfterCompletionAndSpillsWhenBusy) {
  Pair p;
  InlineOpStorage<kStorage> storage;
  int completed = 0;
  auto wait = [&] {
    p.b.async_wait(tcp::socket::wait_read,
                   asio::bind_allocator(InlineOpAllocator<void, kStorage>(storage),
                                        [&completed](boost::system::error_code) { ++completed; }));
  };
  wait();
  wait();  // the storage is taken: this one goes to the heap
  EXPECT_EQ(storage.spilled(), 1u);
  asio::write(p.a, asio::buffer("x", 1));
  p.ioc.run();
  EXPECT_EQ(completed, 2);
  p.ioc.restart();
  wait();  // free again
  p.ioc.run();
  EXPECT_EQ(completed, 3);
  EXPECT_EQ(storage.spilled(), 1u);
}

TEST(InlineOpStorage, AnOperationDestroyedUnrunFreesItsStorage) {
  InlineOpStorage<kStorage> storage;
  auto owner = std::make_shared<int>(0);
  {
    Pair p;
    p.b.async_wait(tcp::socket::wait_read,
                   asio::bind_allocator(InlineOpAllocator<void, kStorage>(storage),
                                        [owner](boost::system::error_code) {}));
  }  // io_context destroyed with the wait pending
  EXPECT_EQ(owner.use_count(), 1);
  void* p = storage.allocate(8);  // the inline storage is free again
  storage.deallocate(p);
  EXPECT_EQ(storage.spilled(), 0u);
}

}  // namespace
}  // namespace meridian::net
