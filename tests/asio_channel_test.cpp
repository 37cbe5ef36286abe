// Asynchronous send and receive (custody/asio/channel.hpp): coroutines and callbacks on Asio
// executors, alone and together with threads on the same channels.

#include <asio/any_io_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

#include "support/asio_spawn.hpp"

using namespace std::chrono_literals;
using custody::Channel;
using custody::received;
using custody::Receiver;
using custody::Sender;
using custody::status;

namespace {
namespace asio_channel_test {

using custody_test::spawn;

// The async forms' constraints, as traits: a receive needs a receiving handle and a value whose
// move cannot throw; a send needs a sending handle.
struct ThrowingMove {
  ThrowingMove() = default;
  ThrowingMove(ThrowingMove&&) noexcept(false) {}
};
template <class Handle>
concept can_async_recv = requires(const Handle& h) {
  custody::async_recv(h, asio::use_awaitable);
};
template <class Handle, class T>
concept can_async_send = requires(const Handle& h, T v) {
  custody::async_send(h, std::move(v), asio::use_awaitable);
};
static_assert(can_async_recv<Receiver<int>>);
static_assert(can_async_recv<Channel<int>>);
static_assert(!can_async_recv<Sender<int>>);
static_assert(!can_async_recv<Receiver<ThrowingMove>>);
static_assert(can_async_send<Sender<int>, int>);
static_assert(can_async_send<Channel<int>, int>);
static_assert(!can_async_send<Receiver<int>, int>);

class AsyncChannel : public testing::TestWithParam<std::size_t> {};

// Two coroutines on one thread hand every value over, unbuffered or buffered, and the receiver
// sees the close after the last one.
TEST_P(AsyncChannel, CoroutinesHandEveryValueOver) {
  constexpr int n = 1000;
  asio::io_context ctx;
  Channel<int> ch(GetParam());
  std::int64_t sum = 0;
  int count = 0;
  status last = status::ok;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (int i = 1; i <= n; ++i) {
      EXPECT_EQ(co_await custody::async_send(ch, i, asio::use_awaitable), status::ok);
    }
    ch.close();
  });
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (;;) {
      received<int> r = co_await custody::async_recv(ch, asio::use_awaitable);
      if (!r) {
        last = r.status();
        co_return;
      }
      sum += *r;
      ++count;
    }
  });
  ctx.run();
  EXPECT_EQ(count, n);
  EXPECT_EQ(sum, std::int64_t{n} * (n + 1) / 2);
  EXPECT_EQ(last, status::closed);
}

INSTANTIATE_TEST_SUITE_P(Capacities, AsyncChannel, testing::Values(0, 1, 4));

// A thread's blocking send reaches a suspended coroutine, and a coroutine's send a blocked
// thread; the coroutine always resumes on its io_context's thread.
TEST(AsyncChannelMix, ThreadsAndCoroutinesHandOverBothWays) {
  asio::io_context ctx;
  Channel<int> to_coroutine, to_thread;
  std::thread::id resumed_on;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 100; ++i) {
      received<int> r = co_await custody::async_recv(to_coroutine, asio::use_awaitable);
      resumed_on = std::this_thread::get_id();
      EXPECT_EQ(r.value(), i);
      EXPECT_EQ(co_await custody::async_send(to_thread, i * 2, asio::use_awaitable), status::ok);
    }
  });
  std::thread runner([&] { ctx.run(); });
  const std::thread::id runner_id = runner.get_id();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(to_coroutine.send(i), status::ok);
    ASSERT_EQ(to_thread.recv().value(), i * 2);
  }
  runner.join();
  EXPECT_EQ(resumed_on, runner_id);
}

// A callback bound to `ex`, an executor of `ctx`, completes through a post to it: never inside
// the initiating call, even when the channel is ready, and never on the thread that completed
// it.
template <class Executor>
void expect_completion_through(asio::io_context& ctx, const Executor& ex) {
  Channel<int> ready(1);
  ASSERT_EQ(ready.send(7), status::ok);
  std::optional<int> got;
  custody::async_recv(ready, asio::bind_executor(ex, [&](std::exception_ptr e, received<int> r) {
                        EXPECT_FALSE(e);
                        got = r.value();
                      }));
  EXPECT_FALSE(got);  // not inline
  ctx.run();
  EXPECT_EQ(got, 7);

  ctx.restart();
  Channel<int> empty;
  std::thread::id completed_on;
  status sent = status::would_block;
  custody::async_send(empty, 9, asio::bind_executor(ex, [&](std::exception_ptr, status s) {
                        completed_on = std::this_thread::get_id();
                        sent = s;
                      }));
  std::thread receiver([&] { EXPECT_EQ(empty.recv().value(), 9); });
  ctx.run();  // returns once the send completed: it was outstanding work until then
  receiver.join();
  EXPECT_EQ(sent, status::ok);
  EXPECT_EQ(completed_on, std::this_thread::get_id());
}

TEST(AsyncChannelTokens, CallbackCompletesThroughItsExecutor) {
  asio::io_context ctx;
  expect_completion_through(ctx, ctx.get_executor());
}

// The same through an any_io_executor holding the io_context's executor (what use_awaitable
// hands an operation): the operation posts through the io_context's executor itself
// (custody/asio/resume_executor.hpp), with the same guarantees.
TEST(AsyncChannelTokens, CallbackBoundToAnAnyIoExecutorCompletesThroughIt) {
  asio::io_context ctx;
  const asio::any_io_executor ex = ctx.get_executor();
  ASSERT_NE(ex.target<asio::io_context::executor_type>(), nullptr);
  expect_completion_through(ctx, ex);
}

TEST(AsyncChannelTokens, DeferredAndFutureWork) {
  asio::io_context ctx;
  Channel<int> ch(2);
  auto deferred_send = custody::async_send(ch, 5, asio::experimental::deferred);
  EXPECT_EQ(ch.size(), 0u);  // deferred: nothing happens until it is launched
  spawn(ctx, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await std::move(deferred_send)(asio::use_awaitable), status::ok);
  });
  ctx.run();
  EXPECT_EQ(ch.size(), 1u);

  // use_future completes on Asio's system executor: no io_context runs here.
  std::future<received<int>> f = custody::async_recv(ch, asio::use_future);
  EXPECT_EQ(f.get().value(), 5);
  std::future<status> s = custody::async_send(ch, 6, asio::use_future);
  EXPECT_EQ(s.get(), status::ok);
  EXPECT_EQ(ch.recv().value(), 6);
}

TEST(AsyncChannelStop, StopTokenEndsAPendingReceiveAndWinsOverAReadyValue) {
  asio::io_context ctx;
  Channel<int> ch;
  std::stop_source source;
  std::optional<status> pending;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    pending = (co_await custody::async_recv(ch, source.get_token(), asio::use_awaitable)).status();
  });
  ctx.poll();
  EXPECT_FALSE(pending);
  std::thread stopper([&] { source.request_stop(); });
  ctx.run();
  stopper.join();
  EXPECT_EQ(pending, status::stopped);

  Channel<int> buffered(1);
  ASSERT_EQ(buffered.send(1), status::ok);
  std::optional<status> ready;
  ctx.restart();
  spawn(ctx, [&]() -> asio::awaitable<void> {
    ready =
        (co_await custody::async_recv(buffered, source.get_token(), asio::use_awaitable)).status();
    EXPECT_EQ(co_await custody::async_send(buffered, 2, source.get_token(), asio::use_awaitable),
              status::stopped);
  });
  ctx.run();
  EXPECT_EQ(ready, status::stopped);
  EXPECT_EQ(buffered.size(), 1u);  // the value stayed in the channel
}

TEST(AsyncChannelDeadline, DeadlinesEndPendingOperations) {
  asio::io_context ctx;
  Channel<int> ch;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    EXPECT_EQ((co_await custody::async_recv_for(ch, 1ms, asio::use_awaitable)).status(),
              status::timeout);
    EXPECT_EQ(co_await custody::async_send_for(ch, 1, 1ms, asio::use_awaitable), status::timeout);
    EXPECT_EQ((co_await custody::async_recv_until(ch, std::chrono::steady_clock::now(),
                                                  asio::use_awaitable))
                  .status(),
              status::timeout);
    EXPECT_EQ(co_await custody::async_send_until(ch, 1, std::chrono::steady_clock::now() - 1s,
                                                 asio::use_awaitable),
              status::timeout);
  });
  ctx.run();
}

// A deadline far away does not end an operation that a peer completes.
TEST(AsyncChannelDeadline, ValueBeforeTheDeadlineIsDelivered) {
  asio::io_context ctx;
  Channel<int> ch;
  std::optional<received<int>> got;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    got = co_await custody::async_recv_for(ch, 1h, asio::use_awaitable);
  });
  ctx.poll();
  std::thread sender([&] { EXPECT_EQ(ch.send(3), status::ok); });
  ctx.run();
  sender.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value(), 3);
}

// close() completes every pending send and receive at once, on both kinds of channel.
TEST(AsyncChannelClose, CloseCompletesPendingSendsAndReceives) {
  asio::io_context ctx;
  Channel<int> unbuffered, full(1), empty(1);
  ASSERT_EQ(full.send(0), status::ok);
  std::vector<status> results;
  auto record = [&](std::exception_ptr, status s) { results.push_back(s); };
  auto record_recv = [&](std::exception_ptr, received<int> r) { results.push_back(r.status()); };
  for (int i = 0; i < 3; ++i) {
    custody::async_send(unbuffered, i, asio::bind_executor(ctx, record));
    custody::async_send(full, i, asio::bind_executor(ctx, record));
    custody::async_recv(empty, asio::bind_executor(ctx, record_recv));
  }
  ctx.poll();
  EXPECT_TRUE(results.empty());
  std::thread closer([&] {
    unbuffered.close();
    full.close();
    empty.close();
  });
  ctx.run();
  closer.join();
  ASSERT_EQ(results.size(), 9u);
  for (status s : results) EXPECT_EQ(s, status::closed);
}

// Asio cancellation ends a pending operation with stopped and leaves the channel as it was;
// an operation that committed first completes with its value.
TEST(AsyncChannelCancel, CancellationSlotStopsAPendingOperationOnly) {
  asio::io_context ctx;
  Channel<int> ch;
  asio::cancellation_signal signal;
  std::optional<received<int>> got;
  auto handler = [&](std::exception_ptr, received<int> r) { got = std::move(r); };
  custody::async_recv(
      ch, asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, handler)));
  ctx.poll();
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), status::stopped);
  EXPECT_EQ(ch.try_send(1), status::would_block);  // no receiver left behind

  // Committed before the cancellation: the value arrives all the same.
  got.reset();
  ctx.restart();
  custody::async_recv(
      ch, asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, handler)));
  ctx.poll();
  ASSERT_EQ(ch.try_send(4), status::ok);  // the pending receive takes it
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), status::ok);
  EXPECT_EQ(got->value(), 4);
}

// A lone case its channel can complete right away commits inside the initiating call and still
// completes through a post; a cancellation emitted before that post runs changes nothing.
TEST(AsyncChannelAtOnce, AReadyChannelCommitsAtInitiationAndCancellationComesTooLate) {
  asio::io_context ctx;
  Channel<int> ch(1);
  asio::cancellation_signal signal;
  std::optional<status> sent;
  custody::async_send(
      ch, 3,
      asio::bind_cancellation_slot(signal.slot(),
                                   asio::bind_executor(ctx, [&](std::exception_ptr e, status s) {
                                     EXPECT_FALSE(e);
                                     sent = s;
                                   })));
  EXPECT_EQ(ch.size(), 1u);  // in the buffer already
  EXPECT_FALSE(sent);        // not inline
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  EXPECT_EQ(sent, status::ok);

  std::optional<received<int>> got;
  ctx.restart();
  custody::async_recv(
      ch, asio::bind_cancellation_slot(
              signal.slot(), asio::bind_executor(ctx, [&](std::exception_ptr e, received<int> r) {
                EXPECT_FALSE(e);
                got = std::move(r);
              })));
  EXPECT_EQ(ch.size(), 0u);
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value(), 3);
}

// Throws on the move that `moves_left` reaches zero at (once); negative: never.
struct CountedMove {
  static inline int moves_left = -1;
  int v;
  explicit CountedMove(int x) : v(x) {}
  CountedMove(CountedMove&& o) noexcept(false) : v(o.v) {
    if (moves_left >= 0 && moves_left-- == 0) throw std::runtime_error("move");
  }
  CountedMove& operator=(CountedMove&&) = delete;
  ~CountedMove() = default;
};

// A send whose value fails to move into a ready channel's buffer at once: the handler gets the
// exception, and the channel is left empty and usable.
TEST(AsyncChannelAtOnce, AThrowingMoveIntoTheBufferReachesTheHandler) {
  auto send_counting_moves = [](asio::io_context& ctx, Channel<CountedMove>& ch) {
    std::exception_ptr error;
    custody::async_send(ch, CountedMove(1),
                        asio::bind_executor(ctx, [&](std::exception_ptr e, status) { error = e; }));
    ctx.run();
    ctx.restart();
    return error;
  };
  asio::io_context ctx;
  Channel<CountedMove> ch(1);
  // Counts the moves of a send that succeeds; the last of them is the one into the buffer.
  int moves = 0;
  CountedMove::moves_left = 1 << 20;
  EXPECT_FALSE(send_counting_moves(ctx, ch));
  moves = (1 << 20) - CountedMove::moves_left;
  ASSERT_GT(moves, 0);
  ASSERT_EQ(ch.try_recv().value().v, 1);

  CountedMove::moves_left = moves - 1;
  const std::exception_ptr error = send_counting_moves(ctx, ch);
  CountedMove::moves_left = -1;
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), std::runtime_error);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.try_send(CountedMove(2)), status::ok);
  EXPECT_EQ(ch.try_recv().value().v, 2);
}

TEST(AsyncChannelErrors, NilHandleThrowsFromTheInitiatingCall) {
  Receiver<int> nil;
  EXPECT_THROW(custody::async_recv(nil, asio::use_future), std::logic_error);
  Sender<int> nil_sender;
  EXPECT_THROW(custody::async_send(nil_sender, 1, asio::use_future), std::logic_error);
}

}  // namespace asio_channel_test
}  // namespace
