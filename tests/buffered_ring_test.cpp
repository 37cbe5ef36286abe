// The lock-free ring behind a buffered channel: a sender's attempt never reads the receivers'
// position and a receiver's never reads the senders' (detail/ring.hpp). These tests check what
// that must not change: an operation a peer has completed is seen by the next attempt, full and
// empty are reported when no peer is half-way, and a spinning sender keeps its values in order
// across laps. tests/stress/closing_ring_test.cpp races a receiver against a close.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>

namespace {
namespace buffered_ring_test {

using custody::Channel;
using custody::status;

class BufferedRing : public ::testing::TestWithParam<std::size_t> {};

// Two threads take turns: one fills the ring with blocking sends, the other empties it with
// attempts. Each attempt comes after the peer's operations returned, so it must see them all:
// every value is there, and then the ring is empty; after the fill, it is full.
TEST_P(BufferedRing, AttemptsSeeEveryOperationThePeerCompleted) {
  const std::size_t capacity = GetParam();
  constexpr int rounds = 500;
  Channel<std::int64_t> ch(capacity);
  std::atomic<int> turn{0};  // 0: the filler's turn, 1: the emptier's
  const auto wait_for = [&turn](int mine) {
    for (int t = turn.load(); t != mine; t = turn.load()) turn.wait(t);
  };
  const auto pass = [&turn](int to) {
    turn.store(to);
    turn.notify_one();
  };
  std::thread filler([&] {
    std::int64_t next = 0;
    for (int r = 0; r < rounds; ++r) {
      wait_for(0);
      for (std::size_t k = 0; k < capacity; ++k) ASSERT_EQ(ch.send(next++), status::ok);
      ASSERT_EQ(ch.try_send(-1), status::would_block) << "round " << r;
      pass(1);
    }
  });
  std::int64_t expected = 0;
  for (int r = 0; r < rounds; ++r) {
    wait_for(1);
    for (std::size_t k = 0; k < capacity; ++k) {
      const custody::received<std::int64_t> got = ch.try_recv();
      ASSERT_EQ(got.status(), status::ok) << "round " << r << ", value " << k;
      ASSERT_EQ(*got, expected++);
    }
    ASSERT_EQ(ch.try_recv().status(), status::would_block) << "round " << r;
    pass(0);
  }
  filler.join();
}

// A sender that finds the ring full spins on the slot it will fill next (or, for a larger ring,
// on a slot an eighth of the ring further on) before it sleeps. Through many laps of rings of
// several sizes, every value arrives once and in order, and the receiver saw the ring full
// (the sender had to wait) at least once.
TEST_P(BufferedRing, ABlockedSenderKeepsItsValuesInOrderAcrossLaps) {
  const std::size_t capacity = GetParam();
  const std::int64_t n = 20'000 + static_cast<std::int64_t>(capacity) * 50;
  Channel<std::int64_t> ch(capacity);
  std::thread sender([&] {
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(ch.send(i), status::ok);
    ch.close();
  });
  std::int64_t expected = 0;
  int seen_full = 0;
  for (;;) {
    if (ch.size() == capacity) ++seen_full;
    const custody::received<std::int64_t> got = ch.recv();
    if (!got) {
      ASSERT_EQ(got.status(), status::closed);
      break;
    }
    ASSERT_EQ(*got, expected++);
  }
  sender.join();
  EXPECT_EQ(expected, n);
  EXPECT_GT(seen_full, 0);
}

INSTANTIATE_TEST_SUITE_P(Capacities, BufferedRing,
                         ::testing::Values(1u, 2u, 3u, 7u, 8u, 9u, 16u, 17u, 100u));

}  // namespace buffered_ring_test
}  // namespace
