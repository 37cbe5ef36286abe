#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/task_group.hpp>

#include "support/stop_signal.hpp"

namespace {
namespace task_group_test {

using namespace std::chrono_literals;

// Generous bound for "this should have happened by now"; only reached when a test fails.
constexpr auto kTimeout = 30s;

// Blocks until stop is requested on `st`, without polling. Bounded so that a broken group fails
// the test instead of hanging it.
void wait_for_stop(const std::stop_token& st) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, st, kTimeout, [] { return false; });
  EXPECT_TRUE(st.stop_requested()) << "timed out waiting for stop";
}

using custody_test::StopSignal;

TEST(TaskGroup, SpawnAndWaitRunsEveryTask) {
  custody::TaskGroup group;
  std::atomic<int> runs{0};
  group.spawn("with-token", [&](std::stop_token st) {
    EXPECT_FALSE(st.stop_requested());
    ++runs;
  });
  group.spawn("without-token", [&] { ++runs; });
  group.wait();
  EXPECT_EQ(runs.load(), 2);
  EXPECT_FALSE(group.failed_task().has_value());
  EXPECT_FALSE(group.stop_token().stop_requested());
}

TEST(TaskGroup, WaitWithNoTasksReturns) {
  custody::TaskGroup group;
  group.wait();
  group.wait();
}

void plain_function_task() {}

TEST(TaskGroup, AcceptsFunctionsAndMoveOnlyCallables) {
  custody::TaskGroup group;
  group.spawn("function", plain_function_task);
  std::promise<int> promise;
  std::future<int> future = promise.get_future();
  group.spawn("move-only", [p = std::move(promise)]() mutable { p.set_value(7); });
  group.wait();
  EXPECT_EQ(future.get(), 7);
}

TEST(TaskGroup, TasksRunConcurrentlyOnTheirOwnThreads) {
  constexpr int kTasks = 64;
  custody::TaskGroup group;
  // Every task must be running at once for the latch to open.
  std::latch all_started(kTasks);
  std::atomic<int> done{0};
  std::mutex ids_mutex;
  std::vector<std::thread::id> ids;
  for (int i = 0; i < kTasks; ++i) {
    group.spawn("task-" + std::to_string(i), [&] {
      {
        std::lock_guard lock(ids_mutex);
        ids.push_back(std::this_thread::get_id());
      }
      all_started.arrive_and_wait();
      ++done;
    });
  }
  group.wait();
  EXPECT_EQ(done.load(), kTasks);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(std::find(ids.begin(), ids.end(), std::this_thread::get_id()), ids.end());
}

#if defined(__linux__)
// The names of this process's threads, as `top -H` shows them.
std::vector<std::string> own_thread_names() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

// The name is in place once spawn() returns, before the task has run a line (it waits for the
// test), and is cut to the 15 bytes Linux keeps.
TEST(TaskGroup, SpawnNamesTheThreadBeforeReturning) {
  custody::TaskGroup group;
  std::latch checked(1);
  group.spawn("a task with a long name", [&] { checked.wait(); });
  const std::vector<std::string> names = own_thread_names();
  checked.count_down();
  group.wait();
  EXPECT_EQ(std::count(names.begin(), names.end(), "a task with a l"), 1);
}
#endif

TEST(TaskGroup, FirstExceptionIsRethrownAndStopsTheOthers) {
  custody::TaskGroup group;
  std::atomic<bool> sibling_saw_stop{false};
  group.spawn("sibling", [&](std::stop_token st) {
    wait_for_stop(st);
    sibling_saw_stop = true;
  });
  group.spawn("failing", [] { throw std::runtime_error("boom"); });
  try {
    group.wait();
    FAIL() << "wait() should have thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_TRUE(sibling_saw_stop.load());
  EXPECT_TRUE(group.stop_token().stop_requested());
  EXPECT_EQ(group.failed_task(), "failing");
}

TEST(TaskGroup, TheEarliestFailureWins) {
  custody::TaskGroup group;
  // "second" throws only after "first" has failed and stopped the group.
  group.spawn("second", [](std::stop_token st) {
    wait_for_stop(st);
    throw std::logic_error("second");
  });
  group.spawn("first", [] { throw std::runtime_error("first"); });
  EXPECT_THROW(group.wait(), std::runtime_error);
  EXPECT_EQ(group.failed_task(), "first");
}

TEST(TaskGroup, RethrowsTheOriginalExceptionObject) {
  struct Custom {
    int code;
  };
  custody::TaskGroup group;
  group.spawn("custom", [] { throw Custom{42}; });
  try {
    group.wait();
    FAIL() << "wait() should have thrown";
  } catch (const Custom& c) {
    EXPECT_EQ(c.code, 42);
  }
  EXPECT_EQ(group.failed_task(), "custom");
}

TEST(TaskGroup, WaitAgainRethrowsTheSameException) {
  custody::TaskGroup group;
  group.spawn("failing", [] { throw std::runtime_error("once"); });
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      group.wait();
      FAIL() << "wait() #" << attempt << " should have thrown";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "once");
    }
  }
  EXPECT_EQ(group.failed_task(), "failing");
}

TEST(TaskGroup, FailedTaskIsKnownBeforeWaitReturns) {
  custody::TaskGroup group;
  StopSignal stopped(group.stop_token());
  group.spawn("failing", [] { throw std::runtime_error("x"); });
  ASSERT_TRUE(stopped.wait());
  EXPECT_EQ(group.failed_task(), "failing");
  EXPECT_THROW(group.wait(), std::runtime_error);
}

TEST(TaskGroup, DestructorRequestsStopAndJoins) {
  std::atomic<bool> finished{false};
  std::latch started(1);
  {
    custody::TaskGroup group;
    group.spawn("blocker", [&](std::stop_token st) {
      started.count_down();
      wait_for_stop(st);
      finished = true;
    });
    started.wait();
    EXPECT_FALSE(finished.load());
  }
  EXPECT_TRUE(finished.load());
}

TEST(TaskGroup, DestructorDropsUnreportedExceptions) {
  std::latch failed(1);
  {
    custody::TaskGroup group;
    group.spawn("failing", [&] {
      failed.count_down();
      throw std::runtime_error("dropped");
    });
    failed.wait();
  }  // must not throw or terminate
  SUCCEED();
}

TEST(TaskGroup, RequestStopFromInsideATask) {
  custody::TaskGroup group;
  std::atomic<bool> waiter_saw_stop{false};
  group.spawn("waiter", [&](std::stop_token st) {
    wait_for_stop(st);
    waiter_saw_stop = true;
  });
  group.spawn("stopper", [&] { group.request_stop(); });
  group.wait();  // a stop is not a failure
  EXPECT_TRUE(waiter_saw_stop.load());
  EXPECT_FALSE(group.failed_task().has_value());
}

TEST(TaskGroup, RequestStopFromOutside) {
  custody::TaskGroup group;
  std::latch started(3);
  for (int i = 0; i < 3; ++i) {
    group.spawn("worker", [&](std::stop_token st) {
      started.count_down();
      wait_for_stop(st);
    });
  }
  started.wait();
  group.request_stop();
  group.wait();
  EXPECT_TRUE(group.stop_source().stop_requested());
}

TEST(TaskGroup, StopSourceIsShared) {
  custody::TaskGroup group;
  std::stop_source copy = group.stop_source();
  group.spawn("waiter", [](std::stop_token st) { wait_for_stop(st); });
  copy.request_stop();
  group.wait();
  EXPECT_TRUE(group.stop_token().stop_requested());
}

TEST(TaskGroup, SpawnAfterStopStillRunsTheTask) {
  custody::TaskGroup group;
  group.request_stop();
  std::atomic<bool> ran{false};
  std::atomic<bool> saw_stop{false};
  group.spawn("late", [&](std::stop_token st) {
    ran = true;
    saw_stop = st.stop_requested();
  });
  group.wait();
  EXPECT_TRUE(ran.load());
  EXPECT_TRUE(saw_stop.load());
}

TEST(TaskGroup, TasksMaySpawnTasks) {
  custody::TaskGroup group;
  std::atomic<int> leaves{0};
  group.spawn("parent", [&] {
    for (int i = 0; i < 8; ++i) {
      group.spawn("child", [&] { group.spawn("grandchild", [&] { ++leaves; }); });
    }
  });
  group.wait();
  EXPECT_EQ(leaves.load(), 8);
}

TEST(TaskGroup, TaskMaySpawnWhileWaitIsJoining) {
  custody::TaskGroup group;
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();
  std::atomic<bool> child_ran{false};
  group.spawn("parent", [&] {
    go_future.wait();
    group.spawn("child", [&] { child_ran = true; });
  });
  // The parent spawns only after the main thread is already inside wait() (or about to be);
  // either way the child must be joined by that wait().
  std::jthread releaser([&] { go.set_value(); });
  group.wait();
  EXPECT_TRUE(child_ran.load());
}

TEST(TaskGroup, SpawnAfterWaitThrowsLogicError) {
  custody::TaskGroup group;
  group.spawn("only", [] {});
  group.wait();
  try {
    group.spawn("late", [] {});
    FAIL() << "spawn after wait() should throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("late"), std::string::npos) << e.what();
  }
  // Also from another thread.
  std::promise<bool> threw;
  std::jthread other([&] {
    try {
      group.spawn("other", [] {});
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  EXPECT_TRUE(threw.get_future().get());
}

TEST(TaskGroup, WaitFromInsideATaskThrowsLogicError) {
  custody::TaskGroup group;
  std::atomic<bool> threw{false};
  group.spawn("self-waiter", [&] {
    try {
      group.wait();
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  group.wait();
  EXPECT_TRUE(threw.load());
}

TEST(TaskGroup, ConcurrentWaitsAllReturnAfterCompletion) {
  custody::TaskGroup group;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> task_done{false};
  group.spawn("slow", [&] {
    released.wait();
    task_done = true;
  });
  std::atomic<int> waiters_saw_done{0};
  std::latch waiters_started(2);
  {
    std::vector<std::jthread> waiters;
    for (int i = 0; i < 2; ++i) {
      waiters.emplace_back([&] {
        waiters_started.count_down();
        group.wait();
        if (task_done.load()) ++waiters_saw_done;
      });
    }
    waiters_started.wait();
    release.set_value();
  }
  EXPECT_EQ(waiters_saw_done.load(), 2);
}

TEST(TaskGroup, SpawnFromManyThreadsConcurrently) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 8;
  custody::TaskGroup group;
  std::atomic<int> runs{0};
  {
    std::latch start(kThreads);
    std::vector<std::jthread> spawners;
    for (int t = 0; t < kThreads; ++t) {
      spawners.emplace_back([&] {
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) group.spawn("t", [&] { ++runs; });
      });
    }
  }
  group.wait();
  EXPECT_EQ(runs.load(), kThreads * kPerThread);
}

}  // namespace task_group_test
}  // namespace
