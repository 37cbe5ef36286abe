// fanout(): every value to every output with room; prompt stop; slow outputs hold back others
// only in lossless mode; what replace_when_full drops is counted.

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/fanout.hpp>

namespace {
namespace store_fanout_test {

using custody::Channel;
using custody::fanout_mode;
using custody::status;

using value_t = std::int64_t;

std::vector<value_t> drain(Channel<value_t> ch) {
  std::vector<value_t> got;
  for (value_t v : ch.receiver()) got.push_back(v);
  return got;
}

TEST(StoreFanout, LockstepDeliversEveryValueToEveryOutputAndClosesThem) {
  constexpr value_t n = 5000;
  Channel<value_t> in(16), a(0), b(1), c(64);
  std::vector<value_t> ga, gb, gc;
  status result = status::would_block;
  {
    std::jthread ra([&] { ga = drain(a); });
    std::jthread rb([&] { gb = drain(b); });
    std::jthread rc([&] { gc = drain(c); });
    std::jthread f([&](std::stop_token st) {
      result = custody::fanout(st, fanout_mode::lossless, in.receiver(), a, b, c);
    });
    for (value_t i = 0; i < n; ++i) ASSERT_EQ(in.send(i), status::ok);
    in.close();
    f.join();  // ends by itself once the input is drained (a jthread would stop it)
  }
  EXPECT_EQ(result, status::closed);
  std::vector<value_t> want(static_cast<std::size_t>(n));
  for (value_t i = 0; i < n; ++i) want[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(ga, want);
  EXPECT_EQ(gb, want);
  EXPECT_EQ(gc, want);
}

TEST(StoreFanout, ReturnsPromptlyWhenStoppedWhileAnOutputIsFull) {
  for (fanout_mode mode : {fanout_mode::lossless, fanout_mode::replace_when_full}) {
    Channel<value_t> in(4), full(1);
    ASSERT_EQ(full.send(-1), status::ok);  // nobody ever reads it
    status result = status::would_block;
    std::jthread f(
        [&](std::stop_token st) { result = custody::fanout(st, mode, in.receiver(), full); });
    ASSERT_EQ(in.send(1), status::ok);
    ASSERT_EQ(in.send(2), status::ok);
    f.request_stop();
    f.join();
    EXPECT_EQ(result, status::stopped);
    EXPECT_TRUE(full.is_closed());
  }
}

TEST(StoreFanout, ASlowOutputDoesNotHoldBackTheOthers) {
  constexpr value_t n = 20'000;
  Channel<value_t> in(0), fast(0), slow(0);  // nobody reads slow
  status result = status::would_block;
  std::jthread f(
      [&](std::stop_token st) { result = custody::fanout(st, in.receiver(), fast, slow); });
  std::jthread producer([&] {
    for (value_t i = 1; i <= n; ++i) ASSERT_EQ(in.send(i), status::ok);
    in.close();
  });
  value_t last = 0;
  while (last != n) {
    auto r = fast.recv();
    ASSERT_TRUE(r);
    ASSERT_GT(*r, last);  // newer values only; some may be conflated away
    last = *r;
  }
  producer.join();
  // The input is done and fast has everything; fanout still holds the newest value for slow.
  f.request_stop();
  f.join();
  EXPECT_EQ(result, status::stopped);
  EXPECT_TRUE(fast.is_closed());
}

TEST(StoreFanout, ConflateFlushesTheNewestValueToEveryOutput) {
  Channel<value_t> in(8), a(1), b(1);
  for (value_t i = 1; i <= 5; ++i) ASSERT_EQ(in.send(i), status::ok);
  in.close();
  std::vector<value_t> ga, gb;
  std::jthread ra([&] { ga = drain(a); });
  std::jthread rb([&] { gb = drain(b); });
  std::stop_source never;
  EXPECT_EQ(custody::fanout(never.get_token(), in.receiver(), a, b), status::closed);
  ra.join();
  rb.join();
  ASSERT_FALSE(ga.empty());
  ASSERT_FALSE(gb.empty());
  EXPECT_EQ(ga.back(), 5);
  EXPECT_EQ(gb.back(), 5);
}

TEST(StoreFanout, OutputsClosedByOthersAreDropped) {
  Channel<value_t> in(8), a(4), b(4);
  b.close();
  status result = status::would_block;
  std::jthread f([&](std::stop_token st) {
    result = custody::fanout(st, fanout_mode::lossless, in.receiver(), a, b);
  });
  ASSERT_EQ(in.send(1), status::ok);
  ASSERT_EQ(*a.recv(), 1);
  a.close();  // now every output is closed: the next value finds that out
  ASSERT_EQ(in.send(2), status::ok);
  f.join();
  EXPECT_EQ(result, status::closed);
}

// An output with room gets every value, in order, even though it is read only afterwards.
TEST(StoreFanout, AnOutputWithRoomGetsEveryValueInOrder) {
  constexpr value_t n = 10'000;
  Channel<value_t> in(n), out(n);
  for (value_t i = 0; i < n; ++i) ASSERT_EQ(in.send(value_t{i}), status::ok);
  in.close();
  std::uint64_t dropped[1] = {0};
  std::stop_source never;
  EXPECT_EQ(custody::fanout(never.get_token(), in.receiver(), {out.sender()},
                            fanout_mode::replace_when_full, dropped),
            status::closed);
  EXPECT_EQ(dropped[0], 0u);
  const std::vector<value_t> got = drain(out);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  for (value_t i = 0; i < n; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i);
}

// A full output keeps only the newest value waiting; each one replaced, and the one still
// waiting at the stop, is counted for that output alone.
TEST(StoreFanout, ReplaceWhenFullCountsWhatAFullOutputMissed) {
  Channel<value_t> in(8), slow(1), fast(8);
  ASSERT_EQ(slow.send(-1), status::ok);  // full, and nobody reads it until the end
  for (value_t i = 1; i <= 5; ++i) ASSERT_EQ(in.send(value_t{i}), status::ok);
  in.close();
  std::uint64_t dropped[2] = {0, 0};
  status result = status::would_block;
  std::jthread f([&](std::stop_token st) {
    result = custody::fanout(st, in.receiver(), {slow.sender(), fast.sender()},
                             fanout_mode::replace_when_full, dropped);
  });
  for (value_t i = 1; i <= 5; ++i) ASSERT_EQ(*fast.recv(), i);
  f.request_stop();
  f.join();
  EXPECT_EQ(result, status::stopped);
  EXPECT_EQ(dropped[0], 5u);  // 1..4 replaced, 5 still waiting at the stop
  EXPECT_EQ(dropped[1], 0u);
  EXPECT_EQ(drain(slow), (std::vector<value_t>{-1}));
}

// Stop is honoured between any two values, however many the input still holds.
TEST(StoreFanout, AStoppedFanoutPassesNoQueuedValueOn) {
  constexpr value_t n = 1000;
  Channel<value_t> in(n), out(n);
  for (value_t i = 0; i < n; ++i) ASSERT_EQ(in.send(value_t{i}), status::ok);
  for (fanout_mode mode : {fanout_mode::replace_when_full, fanout_mode::lossless}) {
    std::stop_source stop;
    stop.request_stop();
    EXPECT_EQ(custody::fanout(stop.get_token(), mode, in.receiver(), out), status::stopped);
    EXPECT_EQ(out.size(), 0u);
    EXPECT_EQ(in.size(), static_cast<std::size_t>(n));
  }
}

// With a producer that never runs dry, the reader stops the fanout from its own thread and
// counts what still arrives: at most the value in hand and one the fanout had already taken.
TEST(StoreFanout, AFanoutFedWithoutEndStopsWithinAValueOrTwo) {
  Channel<value_t> in(64), out(0);
  std::jthread producer([&](std::stop_token st) {
    for (value_t i = 0; in.send(value_t{i}, st) == status::ok; ++i) {
    }
  });
  std::jthread f([&](std::stop_token st) { custody::fanout(st, in.receiver(), out); });
  int after_stop = -1;
  for (value_t v : out.receiver()) {
    (void)v;
    if (after_stop >= 0) {
      ++after_stop;
    } else if (v >= 1000) {
      f.request_stop();
      after_stop = 0;
    }
  }
  EXPECT_GE(after_stop, 0);
  EXPECT_LE(after_stop, 2);
}

}  // namespace store_fanout_test
}  // namespace
