// Asynchronous operations outliving their executor's run: an io_context destroyed while
// operations wait in channels, or with their completion queued, and one stopped and resumed.
// Run under AddressSanitizer, these show no leak and no use-after-free.

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

#include "support/asio_spawn.hpp"

using custody::Channel;
using custody::received;
using custody::status;

namespace {
namespace asio_lifetime_test {

using custody_test::spawn;

// A coroutine's frame owns `token`: once the frame is freed, the weak pointer expires.
asio::awaitable<void> wait_holding(Channel<int> ch, std::shared_ptr<int> token) {
  (void)co_await custody::async_recv(ch, asio::use_awaitable);
  ADD_FAILURE() << "resumed after its io_context was destroyed";
  (void)token;
}

TEST(AsyncLifetime, DestroyingAnIoContextFreesItsSuspendedOperations) {
  Channel<int> ch, other;
  auto token = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = token;
  bool callback_ran = false;
  {
    asio::io_context ctx;
    spawn(ctx, wait_holding(ch, std::move(token)));
    custody::async_send(other, 1, asio::bind_executor(ctx, [&](std::exception_ptr, status) {
                          callback_ran = true;
                        }));
    ctx.poll();
    EXPECT_FALSE(frame_alive.expired());  // suspended in the channel
  }
  EXPECT_TRUE(frame_alive.expired());
  EXPECT_FALSE(callback_ran);
  // Nobody is left waiting in either channel.
  EXPECT_EQ(ch.try_send(1), status::would_block);
  EXPECT_EQ(other.try_recv().status(), status::would_block);
}

// A peer completed the operation, but its io_context never ran the completion: destroying the
// context frees it without resuming the coroutine.
TEST(AsyncLifetime, DestroyingAnIoContextFreesAQueuedCompletion) {
  Channel<int> ch;
  auto token = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = token;
  {
    asio::io_context ctx;
    spawn(ctx, wait_holding(ch, std::move(token)));
    ctx.poll();
    EXPECT_EQ(ch.send(5), status::ok);  // hands the value to the suspended receive
  }
  EXPECT_TRUE(frame_alive.expired());
}

// Operations that their channels completed at initiation, their completions still queued:
// destroying the context frees them and what they hold without calling the handlers.
TEST(AsyncLifetime, DestroyingAnIoContextFreesCompletionsMadeAtOnce) {
  Channel<std::shared_ptr<int>> ch(1);
  auto token = std::make_shared<int>(0);
  const std::weak_ptr<int> value_alive = token;
  bool callback_ran = false;
  {
    asio::io_context ctx;
    custody::async_send(
        ch, std::move(token),
        asio::bind_executor(ctx, [&](std::exception_ptr, status) { callback_ran = true; }));
    EXPECT_EQ(ch.size(), 1u);
  }
  EXPECT_FALSE(callback_ran);
  EXPECT_FALSE(value_alive.expired());  // sent: the channel holds it
  {
    asio::io_context ctx;
    custody::async_recv(
        ch, asio::bind_executor(ctx, [&](std::exception_ptr, received<std::shared_ptr<int>>) {
          callback_ran = true;
        }));
    EXPECT_EQ(ch.size(), 0u);
    EXPECT_FALSE(value_alive.expired());  // received: the queued completion holds it
  }
  EXPECT_FALSE(callback_ran);
  EXPECT_TRUE(value_alive.expired());
}

// An io_context stopped while operations wait: a peer completes one meanwhile, and the
// coroutine resumes once the context runs again.
TEST(AsyncLifetime, AStoppedIoContextResumesItsOperationsWhenRunAgain) {
  asio::io_context ctx;
  Channel<int> ch;
  std::optional<received<int>> got;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    got = co_await custody::async_recv(ch, asio::use_awaitable);
  });
  ctx.poll();                              // the coroutine waits in the channel
  std::thread runner([&] { ctx.run(); });  // returns only once stopped: the receive is work
  ctx.stop();
  runner.join();
  EXPECT_FALSE(got);
  EXPECT_EQ(ch.send(8), status::ok);
  EXPECT_FALSE(got);
  ctx.restart();
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value(), 8);
}

}  // namespace asio_lifetime_test
}  // namespace
