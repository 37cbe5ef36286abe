// The inbox of an io_context's tasks (custody/asio/task_inbox.hpp, task_root.hpp): tasks woken
// from outside the context's loops are pushed there and run by posted drains. Every wake reaches
// its task once, one waker's wakes run in order, the context's threads share a large batch, and
// the context's destruction and stop() lose no task. A test that loses a task hangs in its
// io_context's run(), which the test main's watchdog turns into a failure.

#include <asio/io_context.hpp>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using custody::Channel;
using custody::received;
using custody::status;
using custody::asio::spawn;
using custody::asio::Task;
using custody::asio::use_task;
using custody::detail::task_root;

namespace {
namespace asio_task_inbox_test {

// Notes when its frame goes away.
struct frame_probe {
  std::atomic<int>* destroyed;
  ~frame_probe() { destroyed->fetch_add(1); }
};

// n tasks of one io_context, task i suspended in a receive on its own unbuffered channel i and
// expecting the value i. `on_received(i)` runs inside task i once it has it.
struct receivers {
  receivers(asio::io_context& io, int n, std::function<void(int)> on_received = {})
      : count(n),
        channels(static_cast<std::size_t>(n)),
        hits(static_cast<std::size_t>(n)),
        on_received(std::move(on_received)) {
    for (int i = 0; i < n; ++i) {
      spawn(io.get_executor(), receive_one(*this, i), [this](std::exception_ptr e) {
        if (e) failed.fetch_add(1);
        completions.fetch_add(1);
      });
    }
    // Runs every task up to its receive: nothing is ready after that.
    io.poll();
  }

  static Task<void> receive_one(receivers& r, int i) {
    frame_probe probe{&r.destroyed};
    r.waiting.fetch_add(1);
    received<int> v =
        co_await custody::async_recv(r.channels[static_cast<std::size_t>(i)], use_task);
    if (v && *v == i) r.hits[static_cast<std::size_t>(i)].fetch_add(1);
    if (r.on_received) r.on_received(i);
    r.done.fetch_add(1);
  }

  /// Wakes task i from this thread (it is suspended: the send hands the value over at once).
  void wake(int i) {
    ASSERT_EQ(channels[static_cast<std::size_t>(i)].send(i), status::ok) << "task " << i;
  }

  /// Every task received its own value exactly once.
  void expect_each_once() const {
    int wrong = 0;
    for (const std::atomic<int>& h : hits) wrong += h.load() != 1;
    EXPECT_EQ(wrong, 0) << "tasks not woken exactly once";
    EXPECT_EQ(done.load(), count);
  }

  const int count;
  std::vector<Channel<int>> channels;
  std::vector<std::atomic<int>> hits;
  std::function<void(int)> on_received;
  std::atomic<int> waiting{0};
  std::atomic<int> done{0};
  std::atomic<int> completions{0};
  std::atomic<int> failed{0};
  std::atomic<int> destroyed{0};
};

constexpr int budget = task_root::ready_budget;

// The inbox alone, without tasks: pushers in tight loops meet far more often than wakes do.
// Each link is taken exactly once, each pusher's links in its order, and the inbox is owned by
// one drain at a time (pushes that found it idle alternate with takes that found it empty).
TEST(TaskInbox, PushesFromSeveralThreadsAreEachTakenOnceInTheirOrder) {
  using custody::detail::task_inbox;
  using custody::detail::task_link;
  constexpr int pushers = 4;
  constexpr int per_pusher = 50'000;
  task_inbox inbox;
  std::vector<task_link> links(pushers * per_pusher);
  std::vector<int> taken(links.size());
  std::atomic<int> opened{0};  // pushes that found the inbox idle: drains owed
  std::atomic<int> active{0};
  std::atomic<int> overlaps{0};
  int drains = 0;
  int out_of_order = 0;
  std::jthread drainer([&] {
    std::vector<std::ptrdiff_t> last(pushers, -1);
    for (std::size_t got = 0; got < links.size();) {
      opened.wait(drains);  // until a push owes a drain
      ++drains;
      // The drain: takes until it finds the inbox empty, which gives the ownership up.
      for (custody::detail::task_batch b = inbox.take(); !b.empty(); b = inbox.take()) {
        while (task_link* t = b.pop_front()) {
          const std::ptrdiff_t i = t - links.data();
          ++taken[static_cast<std::size_t>(i)];
          const std::size_t pusher = static_cast<std::size_t>(i / per_pusher);
          out_of_order += i <= last[pusher];
          last[pusher] = i;
          ++got;
        }
      }
    }
  });
  std::latch start(pushers);
  {
    std::vector<std::jthread> threads;
    for (int p = 0; p < pushers; ++p) {
      threads.emplace_back([&, p] {
        // Counted in before all start: the first push overlaps the others' loops.
        active.fetch_add(1);
        start.arrive_and_wait();
        for (int i = p * per_pusher; i < (p + 1) * per_pusher; ++i) {
          if (active.load(std::memory_order_relaxed) > 1) overlaps.fetch_add(1);
          if (inbox.push(links[static_cast<std::size_t>(i)])) {
            opened.fetch_add(1);
            opened.notify_one();
          }
        }
        active.fetch_sub(1);
      });
    }
  }
  drainer.join();
  int wrong = 0;
  for (int n : taken) wrong += n != 1;
  EXPECT_EQ(wrong, 0) << "links not taken exactly once";
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(opened.load(), drains) << "one drain per push that found the inbox idle";
  EXPECT_GT(overlaps.load(), 0);
}

TEST(AsioTaskInbox, WakesFromSeveralThreadsReachEveryTaskOnce) {
  constexpr int wakers = 4;
  constexpr int per_waker = 5'000;
  asio::io_context io(2);
  receivers r(io, wakers * per_waker);
  ASSERT_EQ(r.waiting.load(), r.count);
  // Runs until every task has finished (each counts as work while it lives).
  std::vector<std::jthread> runners;
  for (int t = 0; t < 2; ++t) runners.emplace_back([&] { io.run(); });
  // In rounds that all wakers start together, so that their pushes meet in every round (a wake
  // overlaps when another waker is inside the same round).
  constexpr int rounds = 20;
  std::atomic<int> active{0};
  std::atomic<int> overlaps{0};
  std::barrier round_start(wakers);
  {
    std::vector<std::jthread> threads;
    for (int w = 0; w < wakers; ++w) {
      threads.emplace_back([&, w] {
        for (int round = 0; round < rounds; ++round) {
          // Counted in before the round starts: the first wake of a round overlaps the others'.
          active.fetch_add(1);
          round_start.arrive_and_wait();
          const int first = w * per_waker + round * (per_waker / rounds);
          for (int i = first; i < first + per_waker / rounds; ++i) {
            if (active.load() > 1) overlaps.fetch_add(1);
            r.wake(i);
          }
          active.fetch_sub(1);
        }
      });
    }
  }
  runners.clear();
  r.expect_each_once();
  EXPECT_EQ(r.completions.load(), r.count);
  EXPECT_EQ(r.failed.load(), 0);
  // Wakers pushed while others did: the race happened.
  EXPECT_GT(overlaps.load(), 0);
}

TEST(AsioTaskInbox, OneWakersWakesRunInTheirOrder) {
  constexpr int n = 10 * budget;
  constexpr int before_running = 5 * budget;
  asio::io_context io(1);
  std::vector<int> order;  // only the context's one thread appends
  receivers r(io, n, [&](int i) { order.push_back(i); });
  ASSERT_EQ(r.waiting.load(), n);
  // One batch larger than a drain's budget, pushed while nothing runs the context; then the
  // rest while its thread drains.
  for (int i = 0; i < before_running; ++i) r.wake(i);
  std::jthread runner([&] { io.run(); });
  for (int i = before_running; i < n; ++i) r.wake(i);
  runner.join();
  r.expect_each_once();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  int out_of_order = 0;
  for (int i = 0; i < n; ++i) out_of_order += order[static_cast<std::size_t>(i)] != i;
  EXPECT_EQ(out_of_order, 0);
}

TEST(AsioTaskInbox, TheContextsTwoThreadsShareALargeBatch) {
  constexpr int n = 20 * budget;
  asio::io_context io(2);
  std::mutex lock;
  std::condition_variable ran_elsewhere;
  std::vector<std::thread::id> ran_on(static_cast<std::size_t>(n));
  // Task 0, the first of the batch, holds its thread until a task of the same batch has run on
  // another thread: only the rest of the batch, handed on before task 0 ran, can get there.
  receivers r(io, n, [&](int i) {
    std::unique_lock guard(lock);
    ran_on[static_cast<std::size_t>(i)] = std::this_thread::get_id();
    ran_elsewhere.notify_all();
    if (i != 0) return;
    ran_elsewhere.wait(guard, [&] {
      for (const std::thread::id& id : ran_on) {
        if (id != std::thread::id() && id != std::this_thread::get_id()) return true;
      }
      return false;
    });
  });
  ASSERT_EQ(r.waiting.load(), n);
  // One batch: every wake lands before a thread runs the context.
  for (int i = 0; i < n; ++i) r.wake(i);
  std::vector<std::jthread> runners;
  for (int t = 0; t < 2; ++t) runners.emplace_back([&] { io.run(); });
  runners.clear();
  r.expect_each_once();
  int on_first = 0;
  for (const std::thread::id& id : ran_on) on_first += id == ran_on[0];
  EXPECT_GT(on_first, 0);
  EXPECT_LT(on_first, n) << "one thread ran the whole batch";
}

// Destroys an io_context whose n woken tasks wait in its inbox, after running `handlers_run` of
// its handlers, and one task that never started pushed last.
void destroy_with_woken_tasks(int handlers_run) {
  constexpr int n = 3 * budget;
  std::optional<asio::io_context> io(std::in_place, 1);
  receivers r(*io, n);
  ASSERT_EQ(r.waiting.load(), n);
  // All in the inbox, with one drain posted.
  for (int i = 0; i < n; ++i) r.wake(i);
  for (int h = 0; h < handlers_run; ++h) ASSERT_EQ(io->run_one(), 1u);
  // Its frame holds a copy of `held` from the start (coroutine arguments are copied into it).
  auto held = std::make_shared<int>(0);
  int its_completions = 0;
  spawn(
      io->get_executor(), [](std::shared_ptr<int>) -> Task<void> { co_return; }(held),
      [&](std::exception_ptr) { ++its_completions; });
  ASSERT_EQ(held.use_count(), 2);
  io.reset();
  EXPECT_EQ(r.done.load(), handlers_run * budget) << "tasks that ran";
  EXPECT_EQ(r.completions.load() + its_completions, 0) << "handlers are destroyed, not called";
  EXPECT_EQ(r.destroyed.load(), n) << "every frame was destroyed";
  EXPECT_EQ(held.use_count(), 1) << "the task that never started was destroyed";
}

TEST(AsioTaskInbox, DestroyingTheContextAbandonsTheInboxWithItsDrainPosted) {
  destroy_with_woken_tasks(0);
}

TEST(AsioTaskInbox, DestroyingTheContextAbandonsADrainsBatch) {
  // The first drain runs its part and hands the rest on to a drain that never runs.
  destroy_with_woken_tasks(1);
}

TEST(AsioTaskInbox, StopWhileWakesRaceLosesNoTask) {
  constexpr int wakers = 4;
  constexpr int per_waker = 1'000;
  asio::io_context io(2);
  receivers r(io, wakers * per_waker);
  ASSERT_EQ(r.waiting.load(), r.count);
  std::vector<std::jthread> runners;
  for (int t = 0; t < 2; ++t) runners.emplace_back([&] { io.run(); });
  // Each waker wakes a quarter of its tasks, then a quarter while the context is being stopped,
  // then the rest once it has been.
  std::latch quarter_woken(wakers);
  std::latch stopped(1);
  {
    std::vector<std::jthread> threads;
    for (int w = 0; w < wakers; ++w) {
      threads.emplace_back([&, w] {
        const int first = w * per_waker;
        for (int i = first; i < first + per_waker / 4; ++i) r.wake(i);
        quarter_woken.count_down();
        for (int i = first + per_waker / 4; i < first + per_waker / 2; ++i) r.wake(i);
        stopped.wait();
        for (int i = first + per_waker / 2; i < first + per_waker; ++i) r.wake(i);
      });
    }
    quarter_woken.wait();
    io.stop();
    stopped.count_down();
  }
  runners.clear();
  const int before_restart = r.done.load();
  ASSERT_TRUE(io.stopped());
  io.restart();
  io.run();
  // Tasks were woken while the context stood stopped (its threads end at most one drain each
  // after stop()), and none was lost over the stop.
  EXPECT_LT(before_restart, r.count - 2 * budget);
  r.expect_each_once();
  EXPECT_EQ(r.completions.load(), r.count);
}

}  // namespace asio_task_inbox_test
}  // namespace
