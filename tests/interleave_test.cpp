// detail::atomic and the interleave points (include/custody/detail/interleave.hpp): outside the
// interleave build the wrapper is std::atomic itself; inside it, a seed replays each thread's
// decisions, and the wrapper still behaves as std::atomic.

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <custody/detail/interleave.hpp>

namespace {

#if !CUSTODY_INTERLEAVE

TEST(Interleave, OutsideTheInterleaveBuildTheWrapperIsStdAtomic) {
  static_assert(std::is_same_v<custody::detail::atomic<bool>, std::atomic<bool>>);
  static_assert(std::is_same_v<custody::detail::atomic<std::uint64_t>, std::atomic<std::uint64_t>>);
  static_assert(std::is_same_v<custody::detail::atomic<int*>, std::atomic<int*>>);
  static_assert(noexcept(custody::detail::interleave_point()));
  custody::detail::atomic<int> a{1};
  custody::detail::interleave_point();
  EXPECT_EQ(a.fetch_add(1), 1);
  EXPECT_EQ(a.load(), 2);
}

#else

namespace il = custody::detail::interleave;

/// The first `n` decisions of stream `stream` (or, when negative, of whichever stream a fresh
/// thread is given at its first point), taken on a fresh thread.
std::vector<int> decisions(int stream, int n = 2000) {
  std::vector<int> out;
  std::thread t([&] {
    if (stream >= 0) il::bind_thread(static_cast<unsigned>(stream));
    for (int i = 0; i < n; ++i) out.push_back(il::next_pause());
  });
  t.join();
  return out;
}

TEST(Interleave, SameSeedGivesEachStreamTheSameDecisionsWhateverOrderThreadsStartIn) {
  il::reseed(42);
  const auto three = decisions(3);
  il::reseed(42);
  const auto four = decisions(4);
  EXPECT_NE(four, three);
  EXPECT_EQ(decisions(3), three);
  il::reseed(43);
  EXPECT_NE(decisions(3), three);
}

TEST(Interleave, UnboundThreadsTakeStreamsInTheOrderOfTheirFirstPoint) {
  il::reseed(7);
  const auto first = decisions(-1);
  const auto second = decisions(-1);
  il::reseed(7);
  EXPECT_EQ(decisions(0), first);
  EXPECT_EQ(decisions(1), second);
}

TEST(Interleave, PointsRunOnYieldOrSleepAFewMicroseconds) {
  il::reseed(1234);
  int run_on = 0, yields = 0, sleeps = 0;
  for (int stream = 0; stream < 16; ++stream) {
    for (const int d : decisions(stream, 5000)) {
      if (d < 0) {
        ++run_on;
      } else if (d == 0) {
        ++yields;
      } else {
        ++sleeps;
        EXPECT_LE(d, 20);
      }
    }
  }
  // Most points run on; of those that act, most yield and about one in 16 sleeps.
  EXPECT_GT(run_on, yields);
  EXPECT_GT(yields, 4 * sleeps);
  EXPECT_GT(sleeps, 0);
}

TEST(Interleave, TheWrapperBehavesAsStdAtomic) {
  static_assert(sizeof(custody::detail::atomic<std::uint64_t>) == sizeof(std::uint64_t));
  static_assert(std::is_base_of_v<std::atomic<int>, custody::detail::atomic<int>>);
  custody::detail::atomic<unsigned> a{5};
  EXPECT_EQ(a.fetch_add(2), 5u);
  EXPECT_EQ(a.fetch_sub(1), 7u);
  EXPECT_EQ(a.fetch_or(8), 6u);
  EXPECT_EQ(a.fetch_and(12), 14u);
  EXPECT_EQ(a.exchange(3), 12u);
  unsigned expected = 4;
  EXPECT_FALSE(a.compare_exchange_strong(expected, 9));
  EXPECT_EQ(expected, 3u);
  EXPECT_TRUE(
      a.compare_exchange_strong(expected, 9, std::memory_order_acq_rel, std::memory_order_acquire));
  a.store(11, std::memory_order_release);
  EXPECT_EQ(a.load(std::memory_order_acquire), 11u);
  a = 12;
  EXPECT_EQ(static_cast<unsigned>(a), 12u);

  // wait/notify: a thread waiting for the value to change is woken by the store and notify.
  std::thread waiter([&] { a.wait(12); });
  a.store(13);
  a.notify_all();
  waiter.join();
  EXPECT_EQ(a.load(), 13u);
}

#endif

}  // namespace
