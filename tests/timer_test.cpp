#include "custody/timer.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "custody/channel.hpp"
#include "custody/detail/timer_service.hpp"
#include "custody/select.hpp"
#include "custody/status.hpp"

namespace {
namespace timer_test {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using custody::status;
using custody::detail::timer_service;

// Generous bound for "this should have happened by now"; only reached when a test fails.
constexpr auto kTimeout = 10s;

// Waits until an after(d) receiver fires. All timers share one timer thread that fires entries
// in deadline order, so once this returns, every timer entry due before now + d has been
// handled. Tests use that to order events without sleeping.
void wait_after(std::chrono::nanoseconds d) {
  auto rx = custody::after(d);
  ASSERT_TRUE(rx.recv_for(kTimeout)) << "after() did not fire";
}

std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// --- timer_service ----------------------------------------------------------------------------

TEST(TimerService, RunsEntriesInDeadlineOrder) {
  auto& service = timer_service::instance();
  std::mutex m;
  std::vector<int> order;
  std::promise<void> last;
  const auto now = clock_type::now();
  auto record = [&](int which) {
    std::lock_guard lock(m);
    order.push_back(which);
  };
  (void)service.schedule(now + 30ms, [&] {
    record(3);
    last.set_value();
  });
  (void)service.schedule(now + 10ms, [&] { record(1); });
  (void)service.schedule(now + 20ms, [&] { record(2); });
  ASSERT_EQ(last.get_future().wait_for(kTimeout), std::future_status::ready);
  std::lock_guard lock(m);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(TimerService, CancelledEntryNeverRuns) {
  auto& service = timer_service::instance();
  std::atomic<bool> ran{false};
  const auto id = service.schedule(clock_type::now() + 20ms, [&] { ran = true; });
  EXPECT_TRUE(service.cancel(id));
  EXPECT_FALSE(service.cancel(id));
  wait_after(60ms);  // the entry would have run before this
  EXPECT_FALSE(ran.load());
  EXPECT_FALSE(service.cancel(timer_service::no_id));
}

TEST(TimerService, CancelReturnsFalseAfterOneShotRan) {
  auto& service = timer_service::instance();
  std::promise<void> ran;
  const auto id = service.schedule(clock_type::now(), [&] { ran.set_value(); });
  ASSERT_EQ(ran.get_future().wait_for(kTimeout), std::future_status::ready);
  wait_after(1ms);  // the callback has returned and the entry is gone
  EXPECT_FALSE(service.cancel(id));
}

TEST(TimerService, CancelWaitsForRunningCallback) {
  auto& service = timer_service::instance();
  std::promise<void> entered;
  std::promise<void> proceed;
  std::shared_future<void> proceed_f = proceed.get_future().share();
  std::atomic<bool> finished{false};
  const auto id = service.schedule_every(clock_type::now(), 1h, [&](std::uint64_t) {
    entered.set_value();
    proceed_f.wait();
    finished = true;
  });
  entered.get_future().wait();
  const std::size_t entries = service.size();
  std::atomic<bool> finished_when_cancel_returned{false};
  std::thread canceller([&] {
    EXPECT_TRUE(service.cancel(id));  // periodic: cancelling prevents later runs
    finished_when_cancel_returned = finished.load();
  });
  // Release the callback only once cancel() has removed the entry; from there it goes on to
  // wait without releasing the lock, so a cancel() that returned early would see finished false.
  while (service.size() == entries) std::this_thread::yield();
  proceed.set_value();
  canceller.join();
  EXPECT_TRUE(finished_when_cancel_returned.load());
}

TEST(TimerService, CallbackCanCancelItself) {
  auto& service = timer_service::instance();
  std::atomic<int> runs{0};
  std::promise<void> done;
  std::atomic<timer_service::id> self{timer_service::no_id};
  std::promise<void> scheduled;
  std::shared_future<void> scheduled_f = scheduled.get_future().share();
  const auto period = 2ms;
  self = service.schedule_every(clock_type::now() + period, period, [&](std::uint64_t) {
    scheduled_f.wait();
    if (++runs == 3) {
      EXPECT_TRUE(service.cancel(self.load()));  // must not wait for itself
      done.set_value();
    }
  });
  scheduled.set_value();
  ASSERT_EQ(done.get_future().wait_for(kTimeout), std::future_status::ready);
  wait_after(10 * period);
  EXPECT_EQ(runs.load(), 3);
}

TEST(TimerService, LatePeriodicEntrySkipsAheadInsteadOfBursting) {
  auto& service = timer_service::instance();
  std::atomic<int> runs{0};
  std::promise<std::uint64_t> first_skipped;
  std::atomic<timer_service::id> self{timer_service::no_id};
  std::promise<void> scheduled;
  std::shared_future<void> scheduled_f = scheduled.get_future().share();
  // The first deadline is 9.5 periods in the past, so nine later deadlines have passed too.
  // They must be reported as skipped by a single run, not run as a burst.
  self = service.schedule_every(clock_type::now() - 95ms, 10ms, [&](std::uint64_t skipped) {
    scheduled_f.wait();
    ++runs;
    (void)service.cancel(self.load());
    first_skipped.set_value(skipped);
  });
  scheduled.set_value();
  auto f = first_skipped.get_future();
  ASSERT_EQ(f.wait_for(kTimeout), std::future_status::ready);
  EXPECT_GE(f.get(), 9u);
  wait_after(1ms);
  EXPECT_EQ(runs.load(), 1);
}

TEST(TimerService, SchedulePeriodicRejectsNonPositivePeriod) {
  auto& service = timer_service::instance();
  EXPECT_THROW((void)service.schedule_every(clock_type::now(), 0ns, [](std::uint64_t) {}),
               std::invalid_argument);
  EXPECT_THROW((void)service.schedule_every(clock_type::now(), -1ms, [](std::uint64_t) {}),
               std::invalid_argument);
}

// --- after() / at() ---------------------------------------------------------------------------

TEST(After, DeliversOnceAndOnlyOnce) {
  const auto start = clock_type::now();
  auto rx = custody::after(20ms);
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, start + 20ms);
  EXPECT_LT(*r, start + 2s);
  wait_after(60ms);
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  EXPECT_FALSE(rx.is_closed());
}

TEST(After, NonPositiveDurationDeliversAtOnce) {
  auto zero = custody::after(0ms);
  EXPECT_TRUE(zero.try_recv());
  EXPECT_EQ(zero.try_recv().status(), status::would_block);
  auto negative = custody::after(-5s);
  EXPECT_TRUE(negative.try_recv());
}

TEST(After, HugeDurationsSaturateInsteadOfOverflowing) {
  auto hours = custody::after(std::chrono::hours::max());
  EXPECT_EQ(hours.try_recv().status(), status::would_block);
  auto seconds = custody::after(std::chrono::duration<double>(1e300));
  EXPECT_EQ(seconds.try_recv().status(), status::would_block);
  auto nan = custody::after(std::chrono::duration<double>(std::nan("")));
  EXPECT_TRUE(nan.try_recv());  // not a positive delay: fires at once
}

TEST(At, PastDeadlineDeliversAtOnce) {
  auto rx = custody::at(clock_type::now() - 1s);
  EXPECT_TRUE(rx.try_recv());
}

TEST(At, FutureDeadlineDeliversNoEarlier) {
  const auto deadline = clock_type::now() + 15ms;
  auto rx = custody::at(deadline);
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, deadline);
}

// --- Ticker -----------------------------------------------------------------------------------

TEST(Ticker, DeliversTicksOnTheGrid) {
  const auto period = 5ms;
  const auto before = clock_type::now();
  custody::Ticker ticker(period);
  auto rx = ticker.receiver();
  time_point previous = before;
  for (int n = 1; n <= 5; ++n) {
    auto r = rx.recv_for(kTimeout);
    ASSERT_TRUE(r) << "tick " << n;
    // The n-th tick received is at least the n-th on the grid (earlier ones may be dropped).
    EXPECT_GE(*r, before + n * period);
    EXPECT_GT(*r, previous);
    previous = *r;
  }
  EXPECT_LT(previous, before + 2s);
}

TEST(Ticker, SlowReceiverMissesTicks) {
  const auto period = 5ms;
  custody::Ticker ticker(period);
  // Not reading for ten periods: ticks 1..10 are all handled before this returns. The first
  // fills the slot; the other nine are dropped (or skipped) and counted.
  wait_after(10 * period);
  EXPECT_GE(ticker.missed(), 9u);
  auto rx = ticker.receiver();
  EXPECT_TRUE(rx.try_recv());  // the one tick that found the slot empty
}

TEST(Ticker, NoTickAfterStop) {
  const auto period = 2ms;
  custody::Ticker ticker(period);
  auto rx = ticker.receiver();
  wait_after(3 * period);  // a tick is now sitting unread in the slot
  ASSERT_EQ(rx.size(), 1u);
  ticker.stop();
  EXPECT_EQ(rx.try_recv().status(), status::would_block);  // the stale tick was discarded
  const auto missed = ticker.missed();
  wait_after(10 * period);
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  EXPECT_EQ(ticker.missed(), missed);
  ticker.stop();  // stopping twice is harmless
}

TEST(Ticker, StopRacingWithTicksNeverLeavesATick) {
  for (int i = 0; i < 50; ++i) {
    custody::Ticker ticker(200us);
    auto rx = ticker.receiver();
    ASSERT_TRUE(rx.recv_for(kTimeout));
    ticker.stop();  // often while the timer thread is delivering the next tick
    EXPECT_EQ(rx.try_recv().status(), status::would_block) << "iteration " << i;
  }
}

TEST(Ticker, ResetToLongerPeriodLeavesNoStaleTick) {
  custody::Ticker ticker(2ms);
  auto rx = ticker.receiver();
  wait_after(6ms);  // a tick of the old period is sitting in the slot
  ASSERT_EQ(rx.size(), 1u);
  const auto before_reset = clock_type::now();
  ticker.reset(200ms);
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  wait_after(20ms);  // ten old periods: any surviving old schedule would have ticked
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, before_reset + 200ms);
}

TEST(Ticker, ResetToShorterPeriodStartsTicking) {
  custody::Ticker ticker(1h);
  auto rx = ticker.receiver();
  const auto before_reset = clock_type::now();
  ticker.reset(3ms);
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, before_reset + 3ms);
}

TEST(Ticker, ResetRestartsAStoppedTicker) {
  custody::Ticker ticker(1ms);
  ticker.stop();
  ticker.reset(1ms);
  auto rx = ticker.receiver();
  EXPECT_TRUE(rx.recv_for(kTimeout));
}

TEST(Ticker, InvalidPeriodThrows) {
  EXPECT_THROW(custody::Ticker(0ms), std::invalid_argument);
  EXPECT_THROW(custody::Ticker(-1s), std::invalid_argument);
  EXPECT_THROW(custody::Ticker(std::chrono::duration<double>(std::nan(""))), std::invalid_argument);
  try {
    custody::Ticker bad(0ns);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("period must be positive"), std::string::npos);
  }

  // A rejected reset leaves the ticker as it was.
  custody::Ticker ticker(2ms);
  EXPECT_THROW(ticker.reset(0ms), std::invalid_argument);
  auto rx = ticker.receiver();
  EXPECT_TRUE(rx.recv_for(kTimeout));
}

TEST(Ticker, TinyPositivePeriodIsNotRejected) {
  // Rounds up to one clock tick instead of truncating to an invalid zero.
  custody::Ticker ticker(std::chrono::duration<double, std::nano>(0.25));
  auto rx = ticker.receiver();
  EXPECT_TRUE(rx.recv_for(kTimeout));
  ticker.stop();
}

TEST(Ticker, ManyLiveTickersShareOneThread) {
  constexpr int kTickers = 10'000;
  auto& service = timer_service::instance();
  const std::size_t threads_before = thread_count();
  const std::size_t entries_before = service.size();
  {
    std::vector<custody::Ticker> tickers;
    tickers.reserve(kTickers);
    for (int i = 0; i < kTickers; ++i) {
      tickers.emplace_back(500ms + std::chrono::microseconds(i * 10));
    }
    EXPECT_LE(thread_count(), threads_before + 2);
    EXPECT_GE(service.size(), entries_before + kTickers - 1);  // allow one unrelated entry to fire
    // They are live: the first and the last both tick.
    auto first = tickers.front().receiver();
    auto last = tickers.back().receiver();
    EXPECT_TRUE(first.recv_for(kTimeout));
    EXPECT_TRUE(last.recv_for(kTimeout));
    EXPECT_LE(thread_count(), threads_before + 2);
  }
  EXPECT_LE(service.size(), entries_before);  // destroying a ticker removes its entry
}

TEST(Ticker, WorksInSelectWithStopToken) {
  custody::Ticker ticker(2ms);
  auto rx = ticker.receiver();
  std::stop_source stop;
  int ticks = 0;
  bool stopped = false;
  while (!stopped) {
    auto r = custody::select(custody::on_recv(rx,
                                              [&](time_point) {
                                                if (++ticks == 3) stop.request_stop();
                                              }),
                             custody::on_stop(stop.get_token(), [&] { stopped = true; }));
    if (r.status == status::stopped) {
      EXPECT_EQ(r.index, 1u);
    }
  }
  EXPECT_GE(ticks, 3);
}

TEST(Ticker, ReceiveWithStopTokenReturnsStopped) {
  custody::Ticker ticker(1h);
  auto rx = ticker.receiver();
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(rx.recv(stop.get_token()).status(), status::stopped);
}

TEST(Ticker, MoveTransfersTheSchedule) {
  custody::Ticker a(2ms);
  auto rx = a.receiver();
  custody::Ticker b(std::move(a));
  EXPECT_FALSE(a.receiver());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.missed(), 0u);   // NOLINT(bugprone-use-after-move)
  a.stop();                    // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(a.reset(1ms), std::logic_error);
  EXPECT_TRUE(b.receiver() == rx);
  EXPECT_TRUE(rx.recv_for(kTimeout));

  b = custody::Ticker(1h);  // stops the 2 ms schedule; rx is no longer b's channel
  wait_after(10ms);
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  EXPECT_FALSE(b.receiver() == rx);
}

TEST(Ticker, ConcurrentStopAndResetWhileReceiving) {
  custody::Ticker ticker(100us);
  auto rx = ticker.receiver();
  std::stop_source done;
  std::thread reader([&, token = done.get_token()] {
    while (!token.stop_requested()) (void)rx.recv(token);
  });
  std::thread other([&] {
    for (int i = 0; i < 200; ++i) {
      ticker.reset(50us);
      (void)ticker.missed();
    }
  });
  for (int i = 0; i < 200; ++i) {
    ticker.stop();
    ticker.reset(100us);
  }
  other.join();
  done.request_stop();
  reader.join();
  ticker.stop();
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
}

// --- Timer ------------------------------------------------------------------------------------

TEST(Timer, FiresOnceNoEarlierThanTheDelay) {
  const auto start = clock_type::now();
  custody::Timer timer(10ms);
  auto rx = timer.receiver();
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, start + 10ms);
  EXPECT_FALSE(timer.stop());  // already received
  wait_after(20ms);
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
}

TEST(Timer, StopBeforeFiring) {
  custody::Timer timer(20ms);
  EXPECT_TRUE(timer.stop());
  EXPECT_FALSE(timer.stop());
  wait_after(40ms);
  EXPECT_EQ(timer.receiver().try_recv().status(), status::would_block);
}

TEST(Timer, StopDiscardsAnUnreadValue) {
  custody::Timer timer(2ms);
  wait_after(10ms);  // fired; the value is sitting unread
  ASSERT_EQ(timer.receiver().size(), 1u);
  EXPECT_TRUE(timer.stop());
  EXPECT_EQ(timer.receiver().try_recv().status(), status::would_block);
}

TEST(Timer, ZeroDelayFiresAtOnce) {
  custody::Timer timer(0ms);
  EXPECT_TRUE(timer.receiver().try_recv());
}

TEST(Timer, ResetLeavesNoStaleValue) {
  custody::Timer timer(0ms);  // a value is sitting unread
  const auto before_reset = clock_type::now();
  EXPECT_TRUE(timer.reset(30ms));
  auto rx = timer.receiver();
  EXPECT_EQ(rx.try_recv().status(), status::would_block);
  auto r = rx.recv_for(kTimeout);
  ASSERT_TRUE(r);
  EXPECT_GE(*r, before_reset + 30ms);
  EXPECT_FALSE(timer.reset(1h));  // the value was already received
  EXPECT_TRUE(timer.stop());
}

TEST(Timer, MovedFromTimerIsStopped) {
  custody::Timer a(1h);
  custody::Timer b(std::move(a));
  EXPECT_FALSE(a.receiver());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(a.stop());      // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(a.reset(1ms), std::logic_error);
  EXPECT_TRUE(b.stop());
}

TEST(Timer, DestroyingAPendingTimerRemovesItsEntry) {
  auto& service = timer_service::instance();
  const auto before = service.size();
  { custody::Timer timer(1h); }
  EXPECT_LE(service.size(), before);
}

}  // namespace timer_test
}  // namespace
