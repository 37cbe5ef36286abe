// Threads and coroutines on one channel under stress: blocking and asynchronous sends and
// receives meet in every combination, on an io_context run by two threads, and every value
// sent is received exactly once.

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using custody::Channel;
using custody::status;

namespace {
namespace asio_mixed_test {

constexpr int coroutine_senders = 4, thread_senders = 2;
constexpr int coroutine_receivers = 4, thread_receivers = 2;
constexpr std::int64_t per_sender = 2000;
constexpr int senders = coroutine_senders + thread_senders;

// A value names its sender (the high bits) and its sequence number.
constexpr std::int64_t make_value(int sender, std::int64_t seq) {
  return (std::int64_t{sender} << 32) | seq;
}
constexpr bool from_thread(std::int64_t v) { return (v >> 32) >= coroutine_senders; }

struct Tally {
  std::atomic<std::int64_t> sum{0}, count{0};
  std::atomic<std::int64_t> thread_to_coroutine{0}, coroutine_to_thread{0};
  std::atomic<int> senders_left{senders};
};

// One run: every sender sends, every receiver receives until the channel is closed.
void run_once(std::size_t capacity, Tally& tally) {
  asio::io_context ctx(2);
  Channel<std::int64_t> ch(capacity);
  auto sender_done = [&] {
    if (tally.senders_left.fetch_sub(1) == 1) ch.close();
  };
  auto take = [&](std::int64_t v, bool by_coroutine) {
    tally.sum += v;
    ++tally.count;
    if (by_coroutine && from_thread(v)) ++tally.thread_to_coroutine;
    if (!by_coroutine && !from_thread(v)) ++tally.coroutine_to_thread;
  };
  auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  for (int s = 0; s < coroutine_senders; ++s) {
    asio::co_spawn(
        ctx,
        [&, s]() -> asio::awaitable<void> {
          for (std::int64_t i = 0; i < per_sender; ++i) {
            EXPECT_EQ(co_await custody::async_send(ch, make_value(s, i), asio::use_awaitable),
                      status::ok);
          }
          sender_done();
        },
        rethrow);
  }
  for (int r = 0; r < coroutine_receivers; ++r) {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (;;) {
            auto got = co_await custody::async_recv(ch, asio::use_awaitable);
            if (!got) co_return;
            take(*got, true);
          }
        },
        rethrow);
  }
  std::vector<std::jthread> threads;
  for (int s = 0; s < thread_senders; ++s) {
    threads.emplace_back([&, s] {
      for (std::int64_t i = 0; i < per_sender; ++i) {
        EXPECT_EQ(ch.send(make_value(coroutine_senders + s, i)), status::ok);
      }
      sender_done();
    });
  }
  for (int r = 0; r < thread_receivers; ++r) {
    threads.emplace_back([&] {
      for (auto& v : ch) take(v, false);
    });
  }
  threads.emplace_back([&] { ctx.run(); });
  ctx.run();
}

class AsyncMixed : public testing::TestWithParam<std::size_t> {};

// Every run must conserve the values; runs repeat (a bounded number of times) until values
// have crossed between the two kinds both ways, which the scheduling does not promise in one.
TEST_P(AsyncMixed, ThreadsAndCoroutinesLoseAndDuplicateNothing) {
  std::int64_t want_sum = 0;
  for (int s = 0; s < senders; ++s) {
    for (std::int64_t i = 0; i < per_sender; ++i) want_sum += make_value(s, i);
  }
  bool crossed_both_ways = false;
  for (int run = 0; run < 50 && !crossed_both_ways; ++run) {
    Tally tally;
    run_once(GetParam(), tally);
    ASSERT_EQ(tally.count.load(), senders * per_sender);
    ASSERT_EQ(tally.sum.load(), want_sum);
    crossed_both_ways = tally.thread_to_coroutine.load() > 0 && tally.coroutine_to_thread > 0;
  }
  EXPECT_TRUE(crossed_both_ways);
}

INSTANTIATE_TEST_SUITE_P(Capacities, AsyncMixed, testing::Values(0, 2));

}  // namespace asio_mixed_test
}  // namespace
