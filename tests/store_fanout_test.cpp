// fanout(): every value to every output; prompt stop; slow outputs hold back others only in
// lockstep mode.

#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/fanout.hpp>

namespace {

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
      result = custody::fanout(st, fanout_mode::lockstep, in.receiver(), a, b, c);
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
  for (fanout_mode mode : {fanout_mode::lockstep, fanout_mode::conflate}) {
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
    result = custody::fanout(st, fanout_mode::lockstep, in.receiver(), a, b);
  });
  ASSERT_EQ(in.send(1), status::ok);
  ASSERT_EQ(*a.recv(), 1);
  a.close();  // now every output is closed: the next value finds that out
  ASSERT_EQ(in.send(2), status::ok);
  f.join();
  EXPECT_EQ(result, status::closed);
}

}  // namespace
