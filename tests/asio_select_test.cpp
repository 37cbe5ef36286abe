// Asynchronous select (custody/asio/select.hpp), and Asio's ways of cancelling an operation
// (cancellation slots, the || awaitable operator, parallel_group) on custody's operations.

#include <array>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stop_token>
#include <thread>
#include <tuple>
#include <variant>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

#include "support/asio_spawn.hpp"

using namespace std::chrono_literals;
using custody::Channel;
using custody::on_default;
using custody::on_recv;
using custody::on_send;
using custody::on_stop;
using custody::on_timeout;
using custody::received;
using custody::selected;
using custody::status;

namespace {
namespace asio_select_test {

using custody_test::spawn;

TEST(AsyncSelect, RunsTheCallableOfTheCaseThatCommitted) {
  asio::io_context ctx;
  Channel<int> a, b(1);
  Channel<std::string> out;
  int from_b = 0;
  std::string pending = "sent";
  spawn(ctx, [&]() -> asio::awaitable<void> {
    // Nothing ready: the default case.
    selected s = co_await custody::async_select(on_recv(a, [](int) { ADD_FAILURE(); }),
                                                on_default(), asio::use_awaitable);
    EXPECT_EQ(s.index, 1u);
    EXPECT_EQ(s.status, status::would_block);
    // A ready buffered value; the case on `a` is disabled with when(false).
    EXPECT_EQ(b.send(5), status::ok);
    s = co_await custody::async_select(on_recv(a, [](int) { ADD_FAILURE(); }).when(false),
                                       on_recv(b, [&](int v) { from_b = v; }), asio::use_awaitable);
    EXPECT_EQ(s.index, 1u);
    EXPECT_EQ(from_b, 5);
    // A send case waits for the receiving thread.
    bool sent = false;
    s = co_await custody::async_select(on_send(out, pending, [&] { sent = true; }),
                                       asio::use_awaitable);
    EXPECT_EQ(s.status, status::ok);
    EXPECT_TRUE(sent);
  });
  std::thread receiver([&] { EXPECT_EQ(out.recv().value(), "sent"); });
  ctx.run();
  receiver.join();
}

TEST(AsyncSelect, StopTimeoutAndCloseEndIt) {
  asio::io_context ctx;
  Channel<int> ch;
  bool timed_out = false, stopped = false, closed = false;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    const selected s = co_await custody::async_select(on_recv(ch, [](int) { ADD_FAILURE(); }),
                                                      on_timeout(1ms, [&] { timed_out = true; }),
                                                      asio::use_awaitable);
    EXPECT_EQ(s.status, status::timeout);
    EXPECT_EQ(s.index, 1u);
  });
  ctx.run();
  EXPECT_TRUE(timed_out);

  std::stop_source source;
  ctx.restart();
  spawn(ctx, [&]() -> asio::awaitable<void> {
    const selected s = co_await custody::async_select(
        on_stop(source.get_token(), [&] { stopped = true; }),
        on_recv(ch, [](int) { ADD_FAILURE(); }), asio::use_awaitable);
    EXPECT_EQ(s.status, status::stopped);
    EXPECT_EQ(s.index, 0u);
  });
  ctx.poll();  // pending: nothing else can end it
  EXPECT_FALSE(stopped);
  source.request_stop();
  ctx.run();
  EXPECT_TRUE(stopped);

  ctx.restart();
  spawn(ctx, [&]() -> asio::awaitable<void> {
    const selected s =
        co_await custody::async_select(on_recv(
                                           ch, [](int) { ADD_FAILURE(); }, [&] { closed = true; }),
                                       asio::use_awaitable);
    EXPECT_EQ(s.status, status::closed);
  });
  ctx.poll();
  EXPECT_FALSE(closed);
  ch.close();
  ctx.run();
  EXPECT_TRUE(closed);
}

// Among ready cases the choice is uniform.
TEST(AsyncSelect, ChoosesUniformlyAmongReadyCases) {
  asio::io_context ctx;
  Channel<int> a(1), b(1);
  ASSERT_EQ(a.send(0), status::ok);
  ASSERT_EQ(b.send(0), status::ok);
  constexpr int rounds = 4000;
  int from_a = 0;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < rounds; ++i) {
      co_await custody::async_select(
          on_recv(a,
                  [&](int v) {
                    ++from_a;
                    EXPECT_EQ(a.send(std::move(v)), status::ok);
                  }),
          on_recv(b, [&](int v) { EXPECT_EQ(b.send(std::move(v)), status::ok); }),
          asio::use_awaitable);
    }
  });
  ctx.run();
  EXPECT_NEAR(from_a / double(rounds), 0.5, 0.05);
}

// asio#1041: a receive racing a timeout loses nothing when the timeout wins. A producer thread
// hands values over one by one while every select gives up after a few microseconds; every
// value sent is received, and rounds of both kinds happened.
TEST(AsyncSelect, ATimeoutNeverLosesAValue) {
  constexpr int n = 3000;
  asio::io_context ctx;
  Channel<int> ch;
  std::int64_t received_sum = 0;
  int received_count = 0, timeouts = 0;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (;;) {
      bool closed = false;
      const selected s = co_await custody::async_select(on_recv(
                                                            ch,
                                                            [&](int v) {
                                                              received_sum += v;
                                                              ++received_count;
                                                            },
                                                            [&] { closed = true; }),
                                                        on_timeout(20us, [&] { ++timeouts; }),
                                                        asio::use_awaitable);
      if (closed) co_return;
      (void)s;
    }
  });
  std::thread producer([&] {
    for (int i = 1; i <= n; ++i) EXPECT_EQ(ch.send(i), status::ok);
    ch.close();
  });
  ctx.run();
  producer.join();
  EXPECT_EQ(received_count, n);
  EXPECT_EQ(received_sum, std::int64_t{n} * (n + 1) / 2);
  EXPECT_GT(timeouts, 0);
}

// Cancelling through the slot ends a pending select with stopped; without an on_stop case no
// callable runs and the index is the number of cases.
TEST(AsyncSelectCancel, CancellationSlotEndsAPendingSelect) {
  asio::io_context ctx;
  Channel<int> a, b;
  asio::cancellation_signal signal;
  std::optional<selected> got;
  custody::async_select(
      on_recv(
          a, [](int) { ADD_FAILURE(); }, [] { ADD_FAILURE(); }),
      on_recv(
          b, [](int) { ADD_FAILURE(); }, [] { ADD_FAILURE(); }),
      asio::bind_cancellation_slot(signal.slot(),
                                   asio::bind_executor(ctx, [&](std::exception_ptr e, selected s) {
                                     EXPECT_FALSE(e);
                                     got = s;
                                   })));
  ctx.poll();
  EXPECT_FALSE(got);
  signal.emit(asio::cancellation_type::total);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, status::stopped);
  EXPECT_EQ(got->index, 2u);
  EXPECT_EQ(a.try_send(1), status::would_block);  // both waiters were unlinked
  EXPECT_EQ(b.try_send(1), status::would_block);
}

// The || operator cancels the loser: a receive that lost to a timer leaves the channel as it
// was, and one that wins delivers its value.
TEST(AsyncCancel, OrOperatorCancelsTheLosingReceive) {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context ctx;
  Channel<int> ch(1);
  spawn(ctx, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ctx, 1ms);
    auto lost = co_await (custody::async_recv(ch, asio::use_awaitable) ||
                          timer.async_wait(asio::use_awaitable));
    EXPECT_EQ(lost.index(), 1u);
    EXPECT_EQ(ch.try_send(1), status::ok);  // still empty: the receive took nothing
    timer.expires_after(1h);
    auto won = co_await (custody::async_recv(ch, asio::use_awaitable) ||
                         timer.async_wait(asio::use_awaitable));
    EXPECT_EQ(won.index(), 0u);
    if (won.index() != 0) co_return;
    EXPECT_EQ(std::get<0>(won).value(), 1);
  });
  ctx.run();
}

// parallel_group reports every operation's result: a receive cancelled after it had committed
// completes with its value. Two producers race two receives round after round; every value
// sent is received, and rounds where the cancelled receive had committed happened. The
// operations are bound to the io_context: parallel_group's handlers carry no executor, and
// cancellation must come from the executor the operations complete on.
TEST(AsyncCancel, ParallelGroupLosesNoCommittedValue) {
  constexpr int n = 2000;
  asio::io_context ctx;
  std::array<Channel<int>, 2> ch;
  std::int64_t sum = 0;
  int count = 0, both_committed = 0, cancelled = 0;
  auto on_ctx = asio::bind_executor(ctx, asio::experimental::deferred);
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (bool done = false; !done;) {
      auto [order, e0, r0, e1, r1] =
          co_await asio::experimental::make_parallel_group(custody::async_recv(ch[0], on_ctx),
                                                           custody::async_recv(ch[1], on_ctx))
              .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
      (void)order;
      EXPECT_FALSE(e0);
      EXPECT_FALSE(e1);
      int ok = 0;
      for (received<int>* r : {&r0, &r1}) {
        if (r->status() == status::ok) {
          sum += **r;
          ++count;
          ++ok;
        } else if (r->status() == status::stopped) {
          ++cancelled;
        }
      }
      if (ok == 2) ++both_committed;
      done = r0.status() == status::closed && r1.status() == status::closed;
    }
  });
  auto produce = [&](Channel<int>& c) {
    for (int i = 1; i <= n; ++i) EXPECT_EQ(c.send(i), status::ok);
    c.close();
  };
  std::thread p0(produce, std::ref(ch[0])), p1(produce, std::ref(ch[1]));
  ctx.run();
  p0.join();
  p1.join();
  EXPECT_EQ(count, 2 * n);
  EXPECT_EQ(sum, 2 * (std::int64_t{n} * (n + 1) / 2));
  EXPECT_GT(both_committed, 0);
  EXPECT_GT(cancelled, 0);
}

}  // namespace asio_select_test
}  // namespace
