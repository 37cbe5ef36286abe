// How blocked threads sleep and wake: each on its own word, woken by exactly the party that
// settles it, never while a spinlock is held, and without using the CPU while asleep.
//
// This executable is built with CUSTODY_COUNT_WAKEUPS (tests/CMakeLists.txt), which makes
// detail/futex.hpp count sleepers, wake-ups and wakes sent under a spinlock.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <latch>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/detail/futex.hpp>
#include <custody/detail/spin.hpp>
#include <custody/select.hpp>

#ifndef CUSTODY_COUNT_WAKEUPS
#error "waking_test needs CUSTODY_COUNT_WAKEUPS"
#endif

namespace {

using namespace std::chrono_literals;
using custody::Channel;
using custody::status;
using counters = custody::detail::wakeup_counters;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

/// Blocks until `n` threads sleep in the kernel (counted by futex.hpp).
void await_sleepers(std::uint64_t n) {
  for (std::uint64_t now = counters::sleeping.load(); now < n; now = counters::sleeping.load()) {
    counters::sleeping.wait(now);
  }
}

std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Wall- and CPU-clock bounds: meaningless under a sanitizer, which slows every step.
TEST(Waking, AThreadBlockedForASecondUsesUnderAMillisecondOfCpu) {
  if (sanitized) GTEST_SKIP() << "CPU-time bound: not under a sanitizer";
  Channel<int> unbuffered(0), empty(1), full(1), never(0);
  ASSERT_EQ(full.send(0), status::ok);
  std::optional<std::chrono::nanoseconds> cpu[3];
  status got[3]{};
  // Each thread first waits a millisecond, which pays for its first use of the clocks, its
  // thread-local state and lazily bound symbols: the second wait is the one measured.
  std::jthread lone([&] {  // a plain receive with a deadline: waits in the lone slot
    (void)unbuffered.recv_for(1ms);
    const auto before = thread_cpu_time();
    got[0] = unbuffered.recv_for(1s).status();
    cpu[0] = thread_cpu_time() - before;
  });
  std::jthread selecting([&] {  // a select with a deadline on a buffered channel
    (void)custody::select(custody::on_recv(empty.receiver(), [](int) {}), custody::on_timeout(1ms));
    const auto before = thread_cpu_time();
    got[1] =
        custody::select(custody::on_recv(empty.receiver(), [](int) {}), custody::on_timeout(1s))
            .status;
    cpu[1] = thread_cpu_time() - before;
  });
  std::jthread sending([&] {  // no deadline: woken by close after a second
    (void)full.send_for(1, 1ms);
    const auto before = thread_cpu_time();
    got[2] = full.send(1);
    cpu[2] = thread_cpu_time() - before;
  });
  // The main thread's second passes in a receive that times out, too.
  EXPECT_EQ(never.recv_for(1s).status(), status::timeout);
  full.close();
  lone.join();
  selecting.join();
  sending.join();
  EXPECT_EQ(got[0], status::timeout);
  EXPECT_EQ(got[1], status::timeout);
  EXPECT_EQ(got[2], status::closed);
  const char* names[] = {"lone_recv_cpu_us", "select_cpu_us", "send_cpu_us"};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cpu[i]);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(*cpu[i]).count();
    RecordProperty(names[i], static_cast<int>(us));
    EXPECT_LT(*cpu[i], 1ms) << us << " us of CPU";
  }
}

class WakingThousand : public ::testing::TestWithParam<std::size_t> {};

// A send wakes exactly the receiver it serves: 1,000 sleeping receivers, 1,000 sends, and no
// more wake-ups than that (plus a few for retries), rather than every sleeper on each send.
// (250 under a sanitizer, where starting a thread is slow.)
TEST_P(WakingThousand, ReceiversAreWokenOneBySendWithoutAHerd) {
  const std::uint64_t threads = sanitized ? 250 : 1000;
  Channel<int> ch(GetParam());  // a buffered capacity of 1024 never blocks the sender
  std::atomic<std::uint64_t> sum{0};
  const std::uint64_t sleeping_before = counters::sleeping.load();
  const std::uint64_t under_lock_before = counters::wakes_under_lock.load();
  std::vector<std::jthread> receivers;
  receivers.reserve(threads);
  for (std::uint64_t i = 0; i < threads; ++i) {
    receivers.emplace_back([&] {
      auto r = ch.recv();
      if (r) sum += static_cast<std::uint64_t>(*r);
    });
  }
  await_sleepers(sleeping_before + threads);
  const std::uint64_t woken_before = counters::woken.load();
  const std::uint64_t settled_before = counters::settled.load();
  for (int v = 1; v <= static_cast<int>(threads); ++v) ASSERT_EQ(ch.send(v), status::ok);
  receivers.clear();  // joins
  const std::uint64_t woken = counters::woken.load() - woken_before;
  EXPECT_EQ(sum.load(), threads * (threads + 1) / 2);
  // Counted by the word, not the wake. Timing decides it, so only outside the sanitizers: under
  // ThreadSanitizer a sleep is sliced (futex.hpp), and a value that lands between slices ends
  // the next sleep before it starts (106 of 250 once in CI). The herd check below holds anyway.
  if (!sanitized) {
    EXPECT_GE(counters::settled.load() - settled_before, threads / 2)
        << "most receivers slept until their value came";
  }
  EXPECT_LE(woken, threads + 16);
  EXPECT_EQ(counters::wakes_under_lock.load(), under_lock_before);
}

INSTANTIATE_TEST_SUITE_P(UnbufferedAndBuffered, WakingThousand, ::testing::Values(0u, 1024u),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("Unbuffered")
                                                  : std::string("Buffered");
                         });

class WakingClose : public ::testing::TestWithParam<std::size_t> {};

// Closing wakes every sleeper once, in batches between holds of the channel's lock (more
// sleepers than one batch holds), and none of those wakes is sent with the lock held.
TEST_P(WakingClose, CloseWakesEverySleeperOnceAndNeverUnderTheLock) {
  constexpr std::uint64_t threads = 100;
  Channel<int> ch(GetParam());
  std::atomic<std::uint64_t> closed_seen{0};
  const std::uint64_t sleeping_before = counters::sleeping.load();
  const std::uint64_t under_lock_before = counters::wakes_under_lock.load();
  std::vector<std::jthread> receivers;
  for (std::uint64_t i = 0; i < threads; ++i) {
    receivers.emplace_back([&] {
      if (ch.recv().status() == status::closed) ++closed_seen;
    });
  }
  await_sleepers(sleeping_before + threads);
  const std::uint64_t woken_before = counters::woken.load();
  EXPECT_TRUE(ch.close());
  receivers.clear();
  EXPECT_EQ(closed_seen.load(), threads);
  EXPECT_LE(counters::woken.load() - woken_before, threads + 4);
  EXPECT_EQ(counters::wakes_under_lock.load(), under_lock_before);
}

INSTANTIATE_TEST_SUITE_P(UnbufferedAndBuffered, WakingClose, ::testing::Values(0u, 4u),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("Unbuffered")
                                                  : std::string("Buffered");
                         });

// Senders blocked on a full buffered channel are told of room one at a time, each woken after
// the receiver released the lock of the senders' list.
TEST(Waking, BlockedSendersAreWokenOutsideTheLock) {
  constexpr int threads = 50;
  Channel<int> ch(1);
  ASSERT_EQ(ch.send(0), status::ok);
  const std::uint64_t sleeping_before = counters::sleeping.load();
  const std::uint64_t under_lock_before = counters::wakes_under_lock.load();
  std::vector<std::jthread> senders;
  for (int i = 1; i <= threads; ++i) {
    senders.emplace_back([&ch, i] { EXPECT_EQ(ch.send(i), status::ok); });
  }
  await_sleepers(sleeping_before + threads);
  int sum = 0;
  for (int i = 0; i <= threads; ++i) {
    auto r = ch.recv();
    ASSERT_TRUE(r);
    sum += *r;
  }
  senders.clear();
  EXPECT_EQ(sum, threads * (threads + 1) / 2);
  EXPECT_EQ(counters::wakes_under_lock.load(), under_lock_before);
}

// The spin budget and the record of failed spins belong to the thread: what it learnt waiting
// in one place holds when it waits somewhere else (another instantiation of spin_until).
TEST(Waking, TheSpinHistoryIsPerThreadNotPerCallSite) {
  using custody::detail::spin_history;
  using custody::detail::spin_until;
  using custody::detail::this_thread_spins;
  std::jthread([] {
    ASSERT_EQ(this_thread_spins().misses, 0u);
    // Spins that never succeed: the thread starts probing (one look per wait, mostly).
    for (unsigned i = 0; i < spin_history::misses_before_probing; ++i) {
      EXPECT_FALSE(spin_until([] { return false; }));
    }
    EXPECT_EQ(this_thread_spins().misses, spin_history::misses_before_probing);
    EXPECT_EQ(this_thread_spins().budget, spin_history::min_budget);
    int looks = 0;
    EXPECT_FALSE(spin_until([&looks] {  // a different lambda: a different instantiation
      ++looks;
      return false;
    }));
    EXPECT_EQ(looks, 1);
  }).join();
  // Another thread starts afresh.
  std::jthread([] { EXPECT_EQ(this_thread_spins().misses, 0u); }).join();
}

// At most `limit` spinners at a time, even when many threads try to enter at once.
TEST(Waking, TheSpinnerLimitIsNeverExceeded) {
  constexpr unsigned limit = 1, threads = 4, rounds = 20000;
  custody::detail::spinner_limit spinners(limit);
  std::atomic<unsigned> inside{0}, most{0}, refused{0};
  std::latch start(threads);
  std::vector<std::jthread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      start.arrive_and_wait();
      for (unsigned i = 0; i < rounds; ++i) {
        if (!spinners.try_enter()) {
          ++refused;
          continue;
        }
        const unsigned now = ++inside;
        for (unsigned seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        for (int k = 0; k < 200; ++k) custody::detail::cpu_relax();  // stay long enough to meet
        --inside;
        spinners.leave();
      }
    });
  }
  pool.clear();
  EXPECT_LE(most.load(), limit);
  EXPECT_GT(refused.load(), 0u) << "the threads never contended: the test proved nothing";
  EXPECT_EQ(spinners.inside(), 0u);
}

}  // namespace
