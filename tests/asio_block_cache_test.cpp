// The per-thread cache of asynchronous operation blocks (custody/asio/block_cache.hpp): a freed
// block serves the next operation of its size, and coroutines exchanging values in a loop stop
// going to the heap for their operations.

#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <thread>

#include <gtest/gtest.h>

#include <custody/asio.hpp>
#include <custody/asio/block_cache.hpp>

#include "support/asio_spawn.hpp"

namespace {

// Every plain operator new of the process, counted (the replacements below).
std::atomic<std::size_t> heap_allocations{0};

}  // namespace

// GCC takes the replaced operator delete's free() for a mismatch once it inlines both.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

using custody::detail::block_cache;

TEST(BlockCache, AFreedBlockServesTheNextOfItsRoundedSize) {
  void* first = block_cache::allocate(600);
  block_cache::deallocate(first, 600);
  // 600 and 630 both round up to 640 bytes: the same block.
  void* second = block_cache::allocate(630);
  EXPECT_EQ(second, first);
  block_cache::deallocate(second, 630);
}

TEST(BlockCache, ABlockOfAnotherSizeIsNotHandedOut) {
  void* small = block_cache::allocate(100);
  block_cache::deallocate(small, 100);
  void* large = block_cache::allocate(1000);
  EXPECT_NE(large, small);  // `small` is still cached, so the two cannot be one block
  void* small_again = block_cache::allocate(100);
  EXPECT_EQ(small_again, small);
  block_cache::deallocate(large, 1000);
  block_cache::deallocate(small_again, 100);
}

TEST(BlockCache, ABlockFreedOnAnotherThreadJoinsThatThreadsCache) {
  void* block = block_cache::allocate(256);
  void* reused = nullptr;
  std::thread other([&] {
    block_cache::deallocate(block, 256);
    reused = block_cache::allocate(256);
    block_cache::deallocate(reused, 256);
  });
  other.join();
  EXPECT_EQ(reused, block);
}

asio::awaitable<void> echo(custody::Channel<int> in, custody::Channel<int> out) {
  while (auto r = co_await custody::async_recv(in, asio::use_awaitable)) {
    EXPECT_EQ(co_await custody::async_send(out, *r, asio::use_awaitable), custody::status::ok);
  }
}

asio::awaitable<void> ping(custody::Channel<int> out, custody::Channel<int> in, int rounds,
                           std::size_t& allocations) {
  const auto exchange = [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await custody::async_send(out, 7, asio::use_awaitable), custody::status::ok);
    EXPECT_EQ(*co_await custody::async_recv(in, asio::use_awaitable), 7);
  };
  co_await exchange();  // warms the caches of every kind of block
  const std::size_t before = heap_allocations.load();
  for (int i = 0; i < rounds; ++i) co_await exchange();
  allocations = heap_allocations.load() - before;
  out.close();
}

// Each round trip is four operations (two sends, two receives), each in a block of its own:
// with the cache they all come from blocks freed by the operations before them.
TEST(BlockCache, CoroutinesExchangingValuesDoNotAllocateAnOperationEach) {
  constexpr int rounds = 1000;
  custody::Channel<int> a, b;
  std::size_t allocations = 0;
  asio::io_context ctx(1);
  custody_test::spawn(ctx, echo(a, b));
  custody_test::spawn(ctx, ping(a, b, rounds, allocations));
  ctx.run();
  EXPECT_LT(allocations, static_cast<std::size_t>(rounds));
}

}  // namespace
