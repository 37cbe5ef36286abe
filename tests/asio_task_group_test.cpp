#include <signal.h>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <csignal>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <semaphore>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio/task_group.hpp>
#include <custody/signals.hpp>

namespace {
namespace asio_task_group_test {

using custody::asio::TaskGroup;

// Suspends until the group cancels it: a timer that never expires. Returns the error the wait
// ended with (operation_aborted when cancelled); rethrows nothing.
asio::awaitable<std::error_code> wait_forever() {
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  std::error_code ec;
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (const std::system_error& e) {
    ec = e.code();
  }
  co_return ec;
}

// Runs `io` on a thread of its own until it runs out of work.
std::jthread run_on_thread(asio::io_context& io) {
  return std::jthread([&io] { io.run(); });
}

// --- what spawn() accepts -------------------------------------------------------------------

template <class F>
concept spawnable = requires(TaskGroup& g, asio::io_context& io, F&& f) {
  g.spawn(io.get_executor(), "t", std::forward<F>(f));
};

// Callables of each shape; only their types are used.
struct WithToken {
  asio::awaitable<void> operator()(std::stop_token) const;
};
struct WithoutToken {
  asio::awaitable<void> operator()() const;
};
struct ReturnsVoid {
  void operator()(std::stop_token) const;
};
struct ReturnsIntAwaitable {
  asio::awaitable<int> operator()() const;
};
struct TakesInt {
  asio::awaitable<void> operator()(int) const;
};

TEST(AsioTaskGroup, SpawnAcceptsOnlyCoroutinesOfVoid) {
  static_assert(spawnable<WithToken>);
  static_assert(spawnable<WithoutToken>);
  static_assert(spawnable<asio::awaitable<void>>);
  static_assert(!spawnable<ReturnsVoid>);
  static_assert(!spawnable<ReturnsIntAwaitable>);
  static_assert(!spawnable<TakesInt>);
  static_assert(!spawnable<asio::awaitable<int>>);
  // An awaitable is move-only and runs once: spawning one held by name must say so with a move.
  static_assert(!spawnable<asio::awaitable<void>&>);
  static_assert(!custody::asio::detail::coroutine_task<asio::awaitable<void>&>);
  static_assert(custody::asio::detail::coroutine_task<asio::awaitable<void>>);
  SUCCEED();
}

// --- running ---------------------------------------------------------------------------------

asio::awaitable<void> count_up(std::atomic<int>& runs) {
  ++runs;
  co_return;
}

TEST(AsioTaskGroup, RunsEveryKindOfTaskOnAOneThreadIoContext) {
  asio::io_context io;
  TaskGroup group;
  std::atomic<int> runs{0};
  std::atomic<bool> token_was_stopped{true};
  group.spawn(io, "with-token", [&](std::stop_token st) -> asio::awaitable<void> {
    token_was_stopped = st.stop_requested();
    ++runs;
    co_return;
  });
  group.spawn(io.get_executor(), "without-token", [&]() -> asio::awaitable<void> {
    ++runs;
    co_return;
  });
  group.spawn(io, "awaitable", count_up(runs));
  EXPECT_EQ(runs.load(), 0) << "spawn() must not run a task inline";
  auto runner = run_on_thread(io);
  group.wait();
  EXPECT_EQ(runs.load(), 3);
  EXPECT_FALSE(token_was_stopped.load());
  EXPECT_FALSE(group.failed_task().has_value());
  EXPECT_FALSE(group.stop_token().stop_requested());
}

TEST(AsioTaskGroup, WaitWithNoTasksReturns) {
  TaskGroup group;
  group.wait();
  group.wait();
}

TEST(AsioTaskGroup, LambdaCapturesLiveAsLongAsTheCoroutine) {
  asio::io_context io;
  TaskGroup group;
  std::atomic<int> seen{0};
  // The coroutine suspends before reading its capture: the callable must still be alive.
  group.spawn(io, "captures",
              [value = std::make_unique<int>(42), &seen]() -> asio::awaitable<void> {
                co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
                seen = *value;
              });
  auto runner = run_on_thread(io);
  group.wait();
  EXPECT_EQ(seen.load(), 42);
}

TEST(AsioTaskGroup, TasksRunInParallelOnATwoThreadPool) {
  asio::thread_pool pool(2);
  TaskGroup group;
  // Each task blocks its thread until the other one arrives: both threads must run at once.
  std::latch both_running(2);
  std::atomic<int> done{0};
  std::vector<std::thread::id> ids(2);
  for (int i = 0; i < 2; ++i) {
    group.spawn(pool, "blocking-" + std::to_string(i), [&, i]() -> asio::awaitable<void> {
      ids[static_cast<std::size_t>(i)] = std::this_thread::get_id();
      both_running.arrive_and_wait();
      ++done;
      co_return;
    });
  }
  group.wait();
  EXPECT_EQ(done.load(), 2);
  EXPECT_NE(ids[0], ids[1]);
  pool.join();
}

TEST(AsioTaskGroup, ManyTasksOnATwoThreadPoolAllRun) {
  constexpr int kTasks = 200;
  asio::thread_pool pool(2);
  TaskGroup group;
  std::atomic<int> done{0};
  for (int i = 0; i < kTasks; ++i) {
    group.spawn(pool, "hop", [&]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      ++done;
    });
  }
  group.wait();
  EXPECT_EQ(done.load(), kTasks);
  pool.join();
}

// --- failures ------------------------------------------------------------------------------------

TEST(AsioTaskGroup, FirstFailureIsRethrownAndCancelsTheOthers) {
  asio::io_context io;
  TaskGroup group;
  std::error_code sibling_ended_with;
  std::atomic<bool> sibling_saw_stop{false};
  group.spawn(io, "sibling", [&](std::stop_token st) -> asio::awaitable<void> {
    sibling_ended_with = co_await wait_forever();
    sibling_saw_stop = st.stop_requested();
  });
  group.spawn(io, "failing", []() -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  auto runner = run_on_thread(io);
  try {
    group.wait();
    FAIL() << "wait() should have thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_EQ(sibling_ended_with, asio::error::operation_aborted);
  EXPECT_TRUE(sibling_saw_stop.load());
  EXPECT_EQ(group.failed_task(), "failing");
}

TEST(AsioTaskGroup, TheEarliestFailureWins) {
  asio::io_context io;
  TaskGroup group;
  // "second" fails only after "first" has failed and stopped the group.
  group.spawn(io, "second", []() -> asio::awaitable<void> {
    co_await wait_forever();
    throw std::logic_error("second");
  });
  group.spawn(io, "first", []() -> asio::awaitable<void> {
    throw std::runtime_error("first");
    co_return;
  });
  auto runner = run_on_thread(io);
  EXPECT_THROW(group.wait(), std::runtime_error);
  EXPECT_EQ(group.failed_task(), "first");
  EXPECT_THROW(group.wait(), std::runtime_error) << "a later wait() rethrows it again";
}

TEST(AsioTaskGroup, OperationAbortedWithoutAStopIsAFailure) {
  asio::io_context io;
  TaskGroup group;
  group.spawn(io, "aborted", []() -> asio::awaitable<void> {
    throw std::system_error(asio::error::operation_aborted);
    co_return;
  });
  auto runner = run_on_thread(io);
  EXPECT_THROW(group.wait(), std::system_error);
  EXPECT_EQ(group.failed_task(), "aborted");
}

// --- stopping ------------------------------------------------------------------------------------

TEST(AsioTaskGroup, RequestStopFromAnotherThreadCancelsSuspendedTasks) {
  constexpr int kTasks = 3;
  asio::io_context io;
  TaskGroup group;
  std::latch started(kTasks);
  std::atomic<int> aborted{0};
  std::atomic<int> saw_stop{0};
  for (int i = 0; i < kTasks; ++i) {
    group.spawn(io, "sleeper", [&](std::stop_token st) -> asio::awaitable<void> {
      started.count_down();
      if (co_await wait_forever() == asio::error::operation_aborted) ++aborted;
      if (st.stop_requested()) ++saw_stop;
    });
  }
  auto runner = run_on_thread(io);
  started.wait();
  std::jthread stopper([&] { group.request_stop(); });
  group.wait();  // a stop is not a failure
  EXPECT_EQ(aborted.load(), kTasks);
  EXPECT_EQ(saw_stop.load(), kTasks);
  EXPECT_FALSE(group.failed_task().has_value());
}

TEST(AsioTaskGroup, TaskLettingOperationAbortedEscapeAfterStopIsNoFailure) {
  asio::io_context io;
  TaskGroup group;
  std::latch started(1);
  group.spawn(io, "sleeper", [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
    started.count_down();
    co_await timer.async_wait(asio::use_awaitable);  // throws operation_aborted
  });
  auto runner = run_on_thread(io);
  started.wait();
  group.request_stop();
  group.wait();
  EXPECT_FALSE(group.failed_task().has_value());
}

TEST(AsioTaskGroup, SpawnAfterStopStartsWithAStoppedTokenAndCancelled) {
  asio::io_context io;
  TaskGroup group;
  group.request_stop();
  std::atomic<bool> saw_stop{false};
  std::error_code ended_with;
  group.spawn(io, "late", [&](std::stop_token st) -> asio::awaitable<void> {
    saw_stop = st.stop_requested();
    ended_with = co_await wait_forever();
  });
  auto runner = run_on_thread(io);
  group.wait();
  EXPECT_TRUE(saw_stop.load());
  EXPECT_EQ(ended_with, asio::error::operation_aborted);
}

TEST(AsioTaskGroup, SigintStopsTheGroup) {
  asio::io_context io;
  TaskGroup group;
  custody::SignalStop on_signal(group.stop_source());
  std::latch started(1);
  std::error_code ended_with;
  group.spawn(io, "server", [&]() -> asio::awaitable<void> {
    started.count_down();
    ended_with = co_await wait_forever();
  });
  auto runner = run_on_thread(io);
  started.wait();
  ASSERT_EQ(::raise(SIGINT), 0);
  group.wait();
  EXPECT_EQ(ended_with, asio::error::operation_aborted);
  EXPECT_EQ(on_signal.last_signal(), SIGINT);
  EXPECT_FALSE(group.failed_task().has_value());
}

TEST(AsioTaskGroup, DestructorStopsAndWaitsForTasksOnATimerThatNeverFires) {
  asio::io_context io;
  std::latch started(2);
  std::atomic<int> ended{0};
  auto runner = std::make_optional<std::jthread>();
  {
    TaskGroup group;
    for (int i = 0; i < 2; ++i) {
      group.spawn(io, "sleeper", [&]() -> asio::awaitable<void> {
        started.count_down();
        co_await wait_forever();
        ++ended;
      });
    }
    runner.emplace([&] { io.run(); });
    started.wait();
    EXPECT_EQ(ended.load(), 0);
  }
  EXPECT_EQ(ended.load(), 2);
  runner.reset();  // io.run() returns: the group left no work behind
}

TEST(AsioTaskGroup, DestructorOnTheTasksOwnThreadOnlyStops) {
  asio::io_context io;
  std::error_code ended_with;
  auto group = std::make_unique<TaskGroup>();
  group->spawn(io, "sleeper",
               [&]() -> asio::awaitable<void> { ended_with = co_await wait_forever(); });
  // Runs on io's only thread after the task has suspended (both are queued on io, in order):
  // waiting there could never end, so the destructor stops the task and returns.
  asio::post(io, [&] { group.reset(); });
  io.run();  // returns once the stopped task has ended, after its group object is gone
  EXPECT_EQ(group, nullptr);
  EXPECT_EQ(ended_with, asio::error::operation_aborted);
}

// --- waiting ---------------------------------------------------------------------------------

TEST(AsioTaskGroup, CoAwaitAsyncWaitReturnsWhenAllTasksEnded) {
  asio::io_context io;
  TaskGroup group;
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) {
    group.spawn(io, "hop", [&]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      ++done;
    });
  }
  int seen_by_waiter = -1;
  // The waiter shares the tasks' only thread: it suspends instead of blocking it.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await group.async_wait(asio::use_awaitable);
        seen_by_waiter = done.load();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(seen_by_waiter, 3);
}

TEST(AsioTaskGroup, CoAwaitAsyncWaitRethrowsTheFirstFailure) {
  asio::io_context io;
  TaskGroup group;
  group.spawn(io, "sleeper", []() -> asio::awaitable<void> { co_await wait_forever(); });
  group.spawn(io, "failing", []() -> asio::awaitable<void> {
    throw std::runtime_error("async boom");
    co_return;
  });
  std::string caught;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await group.async_wait(asio::use_awaitable);
        } catch (const std::runtime_error& e) {
          caught = e.what();
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(caught, "async boom");
  EXPECT_EQ(group.failed_task(), "failing");
}

TEST(AsioTaskGroup, AsyncWaitWithAFutureAndOnAFinishedGroup) {
  asio::io_context io;
  TaskGroup group;
  group.spawn(io, "quick", []() -> asio::awaitable<void> { co_return; });
  std::future<void> first = group.async_wait(asio::use_future);
  auto runner = run_on_thread(io);
  first.get();
  // The group is finished now; a new wait completes at once (posted, not inline).
  std::future<void> second = group.async_wait(asio::use_future);
  second.get();
  EXPECT_THROW(group.spawn(io, "late", []() -> asio::awaitable<void> { co_return; }),
               std::logic_error);
}

TEST(AsioTaskGroup, AsyncWaitKeepsItsOwnContextRunning) {
  asio::io_context tasks_io;
  asio::io_context waiter_io;
  TaskGroup group;
  std::latch started(1);
  group.spawn(tasks_io, "sleeper", [&]() -> asio::awaitable<void> {
    started.count_down();
    co_await wait_forever();
  });
  bool waited = false;
  // A plain callback bound to waiter_io: nothing but the pending wait keeps waiter_io busy.
  group.async_wait(asio::bind_executor(waiter_io, [&](std::exception_ptr error) {
    EXPECT_FALSE(error);
    waited = true;
  }));
  auto tasks_runner = run_on_thread(tasks_io);
  // Without the waiter's work guard waiter_io.run() would return while the wait is pending.
  std::jthread waiter_runner([&] { waiter_io.run(); });
  started.wait();
  group.request_stop();
  waiter_runner.join();
  EXPECT_TRUE(waited);
}

TEST(AsioTaskGroup, AsyncWaitThatLosesToATimerIsCancelledAndTheGroupRunsOn) {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  TaskGroup group;
  group.spawn(io, "sleeper", []() -> asio::awaitable<void> { co_await wait_forever(); });
  std::size_t winner = 99;
  bool stopped_by_the_race = true;
  bool waited_again = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer deadline(co_await asio::this_coro::executor,
                                    asio::steady_timer::clock_type::now());  // already due
        auto first = co_await (group.async_wait(asio::use_awaitable) ||
                               deadline.async_wait(asio::use_awaitable));
        winner = first.index();
        stopped_by_the_race = group.stop_token().stop_requested();
        group.request_stop();
        co_await group.async_wait(asio::use_awaitable);
        waited_again = true;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(winner, 1u) << "the group's wait cannot win: its task never ends by itself";
  EXPECT_FALSE(stopped_by_the_race);
  EXPECT_TRUE(waited_again);
}

TEST(AsioTaskGroup, CancellingAnAsyncWaitCompletesItOnceWithOperationAborted) {
  asio::io_context io;
  TaskGroup group;
  group.spawn(io, "sleeper", []() -> asio::awaitable<void> { co_await wait_forever(); });
  asio::cancellation_signal cancel;
  int calls = 0;
  std::exception_ptr got;
  group.async_wait(asio::bind_cancellation_slot(
      cancel.slot(), asio::bind_executor(io, [&](std::exception_ptr error) {
        ++calls;
        got = error;
      })));
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  while (calls == 0) io.run_one();
  try {
    std::rethrow_exception(got);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_FALSE(cancel.slot().has_handler()) << "a completed wait leaves the slot free";
  cancel.emit(asio::cancellation_type::terminal);  // too late: does nothing
  group.request_stop();
  io.run();
  group.wait();  // the cancelled wait left the group as it was
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(group.failed_task().has_value());
}

TEST(AsioTaskGroup, WaitFromTheExecutorsThreadThrowsLogicError) {
  asio::io_context io;
  TaskGroup group;
  std::string message;
  group.spawn(io, "self-waiter", [&]() -> asio::awaitable<void> {
    try {
      group.wait();
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    co_return;
  });
  auto runner = run_on_thread(io);
  group.wait();
  EXPECT_NE(message.find("self-waiter"), std::string::npos) << message;
}

TEST(AsioTaskGroup, WaitFromAPlainHandlerOfTheTasksContextThrowsLogicError) {
  asio::io_context io;
  TaskGroup group;
  std::latch started(1);
  group.spawn(io, "sleeper", [&]() -> asio::awaitable<void> {
    started.count_down();
    co_await wait_forever();
  });
  std::promise<bool> threw;
  auto runner = run_on_thread(io);
  started.wait();
  asio::post(io, [&] {
    try {
      group.wait();
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  EXPECT_TRUE(threw.get_future().get());
  group.request_stop();
  group.wait();
}

// Blocks in wait() from a plain handler of `io` while a task spawned on `executor` (an executor
// of `io` in some form) is suspended; returns whether wait() threw std::logic_error.
template <class Executor>
bool wait_from_the_context_throws(asio::io_context& io, const Executor& executor) {
  TaskGroup group;
  std::latch started(1);
  group.spawn(executor, "sleeper", [&]() -> asio::awaitable<void> {
    started.count_down();
    co_await wait_forever();
  });
  std::promise<bool> threw;
  auto runner = run_on_thread(io);
  started.wait();
  asio::post(io, [&] {
    try {
      group.wait();
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  const bool result = threw.get_future().get();
  group.request_stop();
  group.wait();
  return result;
}

TEST(AsioTaskGroup, WaitOnTheContextsThreadIsDetectedThroughStrandsAndTypeErasure) {
  asio::io_context through_strand;
  EXPECT_TRUE(wait_from_the_context_throws(through_strand, asio::make_strand(through_strand)));
  asio::io_context through_any;
  EXPECT_TRUE(
      wait_from_the_context_throws(through_any, asio::any_io_executor(through_any.get_executor())));
}

TEST(AsioTaskGroup, TasksMaySpawnTasksWhileWaitIsWaiting) {
  asio::io_context io;
  TaskGroup group;
  std::atomic<int> leaves{0};
  std::promise<void> waiting;
  std::shared_future<void> wait_started = waiting.get_future().share();
  group.spawn(io, "parent", [&]() -> asio::awaitable<void> {
    // Runs on the io thread; the main thread is inside wait() (or about to be).
    wait_started.wait();
    for (int i = 0; i < 4; ++i) {
      group.spawn(io, "child", [&]() -> asio::awaitable<void> {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        ++leaves;
      });
    }
    co_return;
  });
  auto runner = run_on_thread(io);
  std::jthread releaser([&] { waiting.set_value(); });
  group.wait();
  EXPECT_EQ(leaves.load(), 4);
}

// --- executors that go away ---------------------------------------------------------------------

TEST(AsioTaskGroup, ADestroyedIoContextAbandonsItsTasksAndWaitReturns) {
  TaskGroup group;
  std::atomic<int> frames_destroyed{0};
  struct on_destroy {
    std::atomic<int>* count;
    ~on_destroy() { ++*count; }
  };
  {
    asio::io_context io;
    std::latch started(2);
    for (int i = 0; i < 2; ++i) {
      group.spawn(io, "orphan", [&]() -> asio::awaitable<void> {
        on_destroy guard{&frames_destroyed};
        started.count_down();
        co_await wait_forever();
      });
    }
    // Run until both tasks are suspended, then leave them there.
    while (started.try_wait() == false) io.run_one();
    io.stop();
  }  // ~io_context destroys the suspended frames
  EXPECT_EQ(frames_destroyed.load(), 2);
  EXPECT_THROW(group.wait(), custody::asio::task_abandoned);
  EXPECT_EQ(group.failed_task(), "orphan");
}

TEST(AsioTaskGroup, StoppedIoContextKeepsTasksPendingUntilItRunsAgain) {
  asio::io_context io;
  TaskGroup group;
  std::latch started(1);
  std::error_code ended_with;
  group.spawn(io, "sleeper", [&]() -> asio::awaitable<void> {
    started.count_down();
    ended_with = co_await wait_forever();
  });
  while (started.try_wait() == false) io.run_one();
  io.stop();
  group.request_stop();  // the cancellation is queued on the stopped context
  std::future<void> waited = group.async_wait(asio::use_future);
  EXPECT_EQ(waited.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  io.restart();
  io.run();
  waited.get();
  EXPECT_EQ(ended_with, asio::error::operation_aborted);
}

// --- the README's example ------------------------------------------------------------------

TEST(AsioTaskGroup, ReadmeExample) {
  using namespace std::chrono_literals;
  constexpr auto period = 1ms;
  int ticks = 0;
  auto tick = [&](const std::stop_token& stop) {
    if (++ticks == 3) {
      // Ctrl-C, then wait until the signal thread has requested the stop: a 4th tick cannot
      // start before it lands.
      std::binary_semaphore stopped(0);
      std::stop_callback on_stop(stop, [&] { stopped.release(); });
      ASSERT_EQ(::raise(SIGINT), 0);
      stopped.acquire();
    }
  };
  {
    // From here to the closing brace: the README's example, as written there.
    asio::io_context io;
    custody::asio::TaskGroup tasks;
    custody::SignalStop on_signal(tasks.stop_source());  // Ctrl-C / SIGTERM stop every task
    tasks.spawn(io, "ticker", [&](std::stop_token stop) -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      while (!stop.stop_requested()) {
        timer.expires_after(period);
        co_await timer.async_wait(asio::use_awaitable);  // a stop cancels it: operation_aborted
        tick(stop);
      }
    });
    std::jthread runner([&] { io.run(); });
    tasks.wait();  // or, inside a coroutine: co_await tasks.async_wait(asio::use_awaitable);
  }
  EXPECT_EQ(ticks, 3);
}

}  // namespace asio_task_group_test
}  // namespace
