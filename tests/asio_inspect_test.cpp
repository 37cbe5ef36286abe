// custody::inspect() sees the coroutine tasks of a named custody::asio::TaskGroup: each task
// blocked in the custody operation it is suspended in (use_awaitable, and use_task inside a
// custody::asio::Task), running once resumed, finished once done; and a blocked coroutine's
// name in the channel's own list of blocked cases, beside a blocked thread's.
//
// Synchronisation without sleeps: every task runs on one io_context thread, and a task posts a
// count-down to that io_context just before it awaits. A post never runs inside the handler that
// makes it, so the count-down runs only after the task's step has suspended it and started its
// operation: once the latch opens, each task is blocked in its operation (or its operation
// completed, which the checks would show).

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cstddef>
#include <latch>
#include <optional>
#include <semaphore>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>
#include <custody/inspect.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>

#include "support/inspection.hpp"

namespace {
namespace asio_inspect_test {

using custody_test::find;
using custody_test::inspect_until;

using asio::use_awaitable;
using custody::task_state;

// The named task of the named group in `snapshot`, or null.
const custody::task_report* task_in(const custody::inspection& snapshot, const std::string& group,
                                    const std::string& task) {
  const custody::task_group_report* g = find(snapshot.task_groups, group);
  return g ? find(g->tasks, task) : nullptr;
}

// The task names in a list of blocked cases.
std::vector<std::string> names_of(const std::vector<custody::blocked_report>& blocked) {
  std::vector<std::string> names;
  names.reserve(blocked.size());
  for (const auto& b : blocked) names.push_back(b.task);
  std::sort(names.begin(), names.end());
  return names;
}

// Counts `ready` down once the calling task's current step is over, i.e. once it has suspended
// in the operation it awaits next (see the top of this file).
void count_down_after_this_step(asio::io_context& io, std::latch& ready) {
  asio::post(io, [&ready] { ready.count_down(); });
}

// Suspends in a non-custody operation until the group's stop cancels it.
asio::awaitable<void> park_in_a_timer() {
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  co_await timer.async_wait(use_awaitable);
}

TEST(AsioInspect, NamingIsAnExtraConstructorArgument) {
  static_assert(std::is_constructible_v<custody::asio::TaskGroup, std::string>);
  static_assert(!std::is_convertible_v<std::string, custody::asio::TaskGroup>);
  static_assert(std::is_default_constructible_v<custody::asio::TaskGroup>);
  const std::size_t before = custody::inspect().task_groups.size();
  {
    custody::asio::TaskGroup unnamed;
    custody::asio::TaskGroup empty_name("");
    EXPECT_EQ(custody::inspect().task_groups.size(), before);
    custody::asio::TaskGroup named("short-lived coroutines");
    EXPECT_NE(find(custody::inspect().task_groups, "short-lived coroutines"), nullptr);
  }
  EXPECT_EQ(find(custody::inspect().task_groups, "short-lived coroutines"), nullptr);
}

TEST(AsioInspect, EachCoroutineIsBlockedInItsOperationThenRunningThenFinished) {
  asio::io_context io;
  custody::Channel<int> a(0, "a");
  custody::Channel<int> b(0, "b");
  custody::Channel<int> c(0, "c");
  custody::Channel<int> d(1, "d");
  custody::Channel<int> e(0, "e");
  custody::Channel<int> f(0, "f");
  std::latch blocked(4);
  std::latch resumed(4);
  custody::asio::TaskGroup group("coroutines");
  std::atomic<int> got_a{0};
  std::atomic<int> got_c{0};
  group.spawn(io, "receiver", [&]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    const custody::received<int> r = co_await custody::async_recv(a, use_awaitable);
    got_a = *r;
    count_down_after_this_step(io, resumed);
    // Resumed by a custody operation's completion: its next one is its own again.
    co_await custody::async_recv(e, use_awaitable);
    co_await park_in_a_timer();
  });
  group.spawn(io, "sender", [&]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    EXPECT_EQ(co_await custody::async_send(b, 7, use_awaitable), custody::status::ok);
    // Resumed by an Asio timer's completion, which runs on the task's executor too.
    asio::steady_timer now(co_await asio::this_coro::executor,
                           asio::steady_timer::clock_type::now());
    co_await now.async_wait(use_awaitable);
    count_down_after_this_step(io, resumed);
    co_await custody::async_recv(f, use_awaitable);
    co_await park_in_a_timer();
  });
  group.spawn(io, "selector", [&]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    co_await custody::async_select(custody::on_recv(c, [&](int v) { got_c = v; }),
                                   custody::on_recv(d, [](int) {}), use_awaitable);
    count_down_after_this_step(io, resumed);
    co_await park_in_a_timer();
  });
  group.spawn(io, "stoppable receiver", [&](std::stop_token stop) -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    // A stop-token form ends the same way when the value comes.
    co_await custody::async_recv(d, stop, use_awaitable);
    count_down_after_this_step(io, resumed);
  });
  std::jthread runner([&] { io.run(); });

  blocked.wait();
  const custody::inspection waiting = custody::inspect();
  const custody::task_group_report* reported = find(waiting.task_groups, "coroutines");
  ASSERT_NE(reported, nullptr);
  ASSERT_EQ(reported->tasks.size(), 4u);
  EXPECT_EQ(reported->tasks[0].name, "receiver");  // in spawn order
  EXPECT_EQ(reported->tasks[3].name, "stoppable receiver");
  const custody::task_report* receiver = task_in(waiting, "coroutines", "receiver");
  EXPECT_EQ(receiver->state, task_state::blocked);
  EXPECT_EQ(receiver->operation, "recv on \"a\"");
  EXPECT_GE(receiver->blocked_ms, 0);
  const custody::task_report* sender = task_in(waiting, "coroutines", "sender");
  EXPECT_EQ(sender->state, task_state::blocked);
  EXPECT_EQ(sender->operation, "send on \"b\"");
  const custody::task_report* selector = task_in(waiting, "coroutines", "selector");
  EXPECT_EQ(selector->state, task_state::blocked);
  EXPECT_EQ(selector->operation, "select of 2 cases");
  const custody::task_report* stoppable = task_in(waiting, "coroutines", "stoppable receiver");
  EXPECT_EQ(stoppable->state, task_state::blocked);
  EXPECT_EQ(stoppable->operation, "recv on \"d\"");
  // The channels list the blocked coroutines by task name, as they list blocked threads.
  EXPECT_EQ(names_of(find(waiting.channels, "a")->receivers), std::vector<std::string>{"receiver"});
  EXPECT_EQ(names_of(find(waiting.channels, "b")->senders), std::vector<std::string>{"sender"});
  const custody::channel_report* c_report = find(waiting.channels, "c");
  ASSERT_EQ(c_report->receivers.size(), 1u);
  EXPECT_EQ(c_report->receivers[0].task, "selector");
  EXPECT_EQ(c_report->receivers[0].cases, 2u);
  EXPECT_EQ(names_of(find(waiting.channels, "d")->receivers),
            (std::vector<std::string>{"selector", "stoppable receiver"}));

  // A thread hands each its value. The receiver and the sender then block in a second operation;
  // the selector parks in a timer (not a custody operation: it shows as running); the stoppable
  // receiver ends.
  ASSERT_EQ(a.send(1), custody::status::ok);
  EXPECT_EQ(b.recv().value(), 7);
  ASSERT_EQ(c.send(3), custody::status::ok);
  ASSERT_EQ(d.send(4), custody::status::ok);
  resumed.wait();
  EXPECT_EQ(got_a, 1);
  EXPECT_EQ(got_c, 3);
  const custody::inspection running = custody::inspect();
  EXPECT_EQ(task_in(running, "coroutines", "receiver")->operation, "recv on \"e\"");
  EXPECT_EQ(task_in(running, "coroutines", "sender")->operation, "recv on \"f\"");
  EXPECT_EQ(task_in(running, "coroutines", "sender")->state, task_state::blocked);
  EXPECT_EQ(names_of(find(running.channels, "e")->receivers), std::vector<std::string>{"receiver"});
  EXPECT_EQ(names_of(find(running.channels, "f")->receivers), std::vector<std::string>{"sender"});
  const custody::task_report* selector_now = task_in(running, "coroutines", "selector");
  EXPECT_EQ(selector_now->state, task_state::running);
  EXPECT_EQ(selector_now->operation, "");
  EXPECT_EQ(selector_now->blocked_ms, 0);
  EXPECT_TRUE(find(running.channels, "a")->receivers.empty());
  // Its last step may still be running: what the group records once it ended is checked below.

  group.request_stop();
  group.wait();
  const custody::inspection done = custody::inspect();
  for (const custody::task_report& task : find(done.task_groups, "coroutines")->tasks) {
    EXPECT_EQ(task.state, task_state::finished) << task.name;
  }
}

// Where a Task waits in something that is not a custody operation (an Asio timer, with
// use_task) until the test opens it from outside.
struct Gate {
  std::optional<asio::steady_timer> timer;
  std::latch reached{1};

  custody::asio::Task<void> wait(asio::any_io_executor ex, asio::io_context& io) {
    timer.emplace(ex, asio::steady_timer::time_point::max());
    count_down_after_this_step(io, reached);
    try {
      co_await timer->async_wait(custody::asio::use_task);
    } catch (const std::system_error&) {  // opened: the wait was cancelled
    }
  }
  // From outside the io_context: cancels the wait on the timer's own executor.
  void open() {
    reached.wait();
    asio::post(timer->get_executor(), [this] { timer->cancel(); });
  }
};

// A custody::asio::Task awaited by a group's task, on that task's executor, waits with use_task;
// the group's task is shown blocked in the Task's operations, both kinds (a plain receive, and a
// deadline form run by the select engine), and running in between, when the Task waits at a
// gate.
custody::asio::Task<int> receive_in_a_task(asio::any_io_executor ex, asio::io_context& io,
                                           custody::Channel<int> plain, custody::Channel<int> timed,
                                           std::latch& first_blocked, std::latch& second_blocked,
                                           Gate& after_first, Gate& after_second) {
  using custody::asio::use_task;
  count_down_after_this_step(io, first_blocked);
  const custody::received<int> first = co_await custody::async_recv(plain, use_task);
  co_await after_first.wait(ex, io);
  count_down_after_this_step(io, second_blocked);
  const custody::received<int> second =
      co_await custody::async_recv_for(timed, std::chrono::hours(1), use_task);
  co_await after_second.wait(ex, io);
  co_return *first + *second;
}

TEST(AsioInspect, TaskAwaitedWithUseTaskIsShownBlockedInItsOperation) {
  asio::io_context io;
  custody::Channel<int> plain(0, "plain");
  custody::Channel<int> timed(0, "timed");
  std::latch first_blocked(1);
  std::latch second_blocked(1);
  Gate after_first;
  Gate after_second;
  std::atomic<int> sum{0};
  custody::asio::TaskGroup group("task owners");
  group.spawn(io, "owner of a task", [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    sum =
        co_await custody::asio::spawn(ex,
                                      receive_in_a_task(ex, io, plain, timed, first_blocked,
                                                        second_blocked, after_first, after_second),
                                      use_awaitable);
  });
  std::jthread runner([&] { io.run(); });
  const auto owner_now = [] {
    const custody::inspection now = custody::inspect();
    const custody::task_report* owner = task_in(now, "task owners", "owner of a task");
    return owner ? *owner : custody::task_report{};
  };

  first_blocked.wait();
  custody::task_report owner = owner_now();
  EXPECT_EQ(owner.state, task_state::blocked);
  EXPECT_EQ(owner.operation, "recv on \"plain\"");
  ASSERT_EQ(plain.send(1), custody::status::ok);
  after_first.reached.wait();
  EXPECT_EQ(owner_now().state, task_state::running);
  after_first.open();

  second_blocked.wait();
  const custody::inspection selecting = custody::inspect();
  owner = *task_in(selecting, "task owners", "owner of a task");
  EXPECT_EQ(owner.state, task_state::blocked);
  EXPECT_EQ(owner.operation, "recv on \"timed\"");
  EXPECT_EQ(names_of(find(selecting.channels, "timed")->receivers),
            std::vector<std::string>{"owner of a task"});
  ASSERT_EQ(timed.send(2), custody::status::ok);
  after_second.reached.wait();
  EXPECT_EQ(owner_now().state, task_state::running);
  after_second.open();

  group.wait();
  EXPECT_EQ(sum, 3);
  EXPECT_EQ(owner_now().state, task_state::finished);
}

// What a named task's identity rides on: an operation completes on the awaiting coroutine's own
// executor, here a strand inside asio::any_io_executor, and not on the io_context beneath it.
TEST(AsioInspect, OperationCompletesOnTheStrandTheCoroutineRunsOn) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  custody::Channel<int> values(0);
  std::atomic<bool> on_strand{false};
  asio::co_spawn(
      strand,
      [&]() -> asio::awaitable<void> {
        co_await custody::async_recv(values, use_awaitable);
        on_strand = strand.running_in_this_thread();
      },
      asio::detached);
  std::jthread runner([&] { io.run(); });
  ASSERT_EQ(values.send(1), custody::status::ok);
  runner.join();
  EXPECT_TRUE(on_strand);
}

bool blocked_in(const custody::inspection& snapshot, const std::string& group,
                const std::string& task) {
  const custody::task_report* t = task_in(snapshot, group, task);
  return t && t->state == task_state::blocked;
}

TEST(AsioInspect, ThreadAndCoroutineBlockedOnOneChannelAreBothListed) {
  asio::io_context io;
  custody::Channel<int> shared(0, "shared");
  std::latch blocked(1);
  std::atomic<int> sum{0};
  custody::asio::TaskGroup coroutines("mixed coroutines");
  coroutines.spawn(io, "coroutine", [&]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    sum += *(co_await custody::async_recv(shared, use_awaitable));
  });
  custody::TaskGroup threads("mixed threads");
  threads.spawn("thread", [&] { sum += *shared.recv(); });
  std::jthread runner([&] { io.run(); });

  blocked.wait();
  const custody::inspection both = inspect_until(
      [](const custody::inspection& i) { return blocked_in(i, "mixed threads", "thread"); });
  EXPECT_EQ(names_of(find(both.channels, "shared")->receivers),
            (std::vector<std::string>{"coroutine", "thread"}));
  const custody::task_report* coroutine = task_in(both, "mixed coroutines", "coroutine");
  const custody::task_report* thread = task_in(both, "mixed threads", "thread");
  EXPECT_EQ(coroutine->state, task_state::blocked);
  EXPECT_EQ(coroutine->operation, "recv on \"shared\"");
  EXPECT_EQ(coroutine->operation, thread->operation);

  ASSERT_EQ(shared.send(1), custody::status::ok);
  ASSERT_EQ(shared.send(2), custody::status::ok);
  threads.wait();
  coroutines.wait();
  EXPECT_EQ(sum, 3);
  const custody::inspection done = custody::inspect();
  EXPECT_EQ(task_in(done, "mixed coroutines", "coroutine")->state, task_state::finished);
  EXPECT_EQ(task_in(done, "mixed threads", "thread")->state, task_state::finished);
}

// A set waiting for an owner that does not answer, and a receive on a subscription, read as they
// read for a thread blocked in the same calls.
TEST(AsioInspect, StoreSetAndSubscriptionReceiveReadAsForAThread) {
  asio::io_context io;
  auto [owner, store] = custody::make_store<int>(0, {.name = "quiet owner"});
  auto coroutine_subscription = store.subscribe(custody::policy::latest(), "coroutine view");
  auto thread_subscription = store.subscribe(custody::policy::latest(), "thread view");
  (void)coroutine_subscription.try_recv();  // the initial value: the next receive waits
  (void)thread_subscription.try_recv();
  std::latch blocked(2);
  custody::asio::TaskGroup coroutines("store coroutines");
  coroutines.spawn(io, "setter", [&, view = store]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    co_await custody::async_set(view, 5, use_awaitable);
  });
  coroutines.spawn(io, "watcher", [&]() -> asio::awaitable<void> {
    count_down_after_this_step(io, blocked);
    co_await custody::async_recv(coroutine_subscription, use_awaitable);
  });
  custody::TaskGroup threads("store threads");
  threads.spawn("setter", [view = store] { (void)view.set(6); });
  threads.spawn("watcher", [&] { (void)thread_subscription.recv(); });
  std::jthread runner([&] { io.run(); });

  blocked.wait();
  const custody::inspection waiting = inspect_until([](const custody::inspection& i) {
    return blocked_in(i, "store threads", "setter") && blocked_in(i, "store threads", "watcher");
  });
  const custody::task_report* coroutine_setter = task_in(waiting, "store coroutines", "setter");
  EXPECT_EQ(coroutine_setter->state, task_state::blocked);
  EXPECT_FALSE(coroutine_setter->operation.empty());
  EXPECT_EQ(coroutine_setter->operation, task_in(waiting, "store threads", "setter")->operation);
  const custody::task_report* coroutine_watcher = task_in(waiting, "store coroutines", "watcher");
  EXPECT_EQ(coroutine_watcher->state, task_state::blocked);
  EXPECT_EQ(coroutine_watcher->operation, "recv on \"coroutine view\"");
  EXPECT_EQ(task_in(waiting, "store threads", "watcher")->operation, "recv on \"thread view\"");

  owner.close();  // answers the sets (owner gone) and ends the receives
  threads.wait();
  coroutines.wait();
  for (const char* name : {"setter", "watcher"}) {
    EXPECT_EQ(task_in(custody::inspect(), "store coroutines", name)->state, task_state::finished);
  }
}

// An owner coroutine whose publish waits for a full policy::block subscriber.
TEST(AsioInspect, PublishWaitingForAFullSubscriberIsNamedAsSuch) {
  asio::io_context io;
  auto [owner, store] = custody::make_store<int>(0, {.name = "publishing"});
  auto slow = store.subscribe(custody::policy::block(1), "slow reader");
  std::latch blocked(1);
  custody::asio::TaskGroup group("owners");
  group.spawn(io, "owner", [&, &owner = owner]() -> asio::awaitable<void> {
    co_await custody::async_publish(owner, 1, use_awaitable);  // fills the subscriber
    count_down_after_this_step(io, blocked);
    co_await custody::async_publish(owner, 2, use_awaitable);
  });
  std::jthread runner([&] { io.run(); });

  blocked.wait();
  const custody::inspection snapshot = custody::inspect();
  const custody::task_report* waiting = task_in(snapshot, "owners", "owner");
  ASSERT_NE(waiting, nullptr);
  EXPECT_EQ(waiting->state, task_state::blocked);
  EXPECT_EQ(waiting->operation, "publish waiting for full subscribers");
  EXPECT_EQ(*slow.recv(), 1);  // room: the second publish completes
  group.wait();
  EXPECT_EQ(*slow.recv(), 2);
  EXPECT_EQ(task_in(custody::inspect(), "owners", "owner")->state, task_state::finished);
}

// Snapshots taken while coroutines block and resume: the records are written on the io_context
// thread and read on the inspecting ones (ThreadSanitizer checks the two agree on a lock).
TEST(AsioInspect, SnapshotsWhileCoroutinesBlockAndResume) {
  constexpr int rounds = 50;
  constexpr int pairs = 4;
  asio::io_context io;
  custody::Channel<int> go(0, "go");
  std::vector<custody::Channel<int>> pings;
  pings.reserve(pairs);
  for (int i = 0; i < pairs; ++i) pings.emplace_back(0, "ping " + std::to_string(i));
  // The handshake task posts `released` once per round, after its step, so each handshake
  // snapshot is taken while it waits on `go`.
  std::counting_semaphore<rounds> released(0);
  custody::asio::TaskGroup group("churning coroutines");
  group.spawn(io, "handshake", [&]() -> asio::awaitable<void> {
    for (int i = 0; i < rounds; ++i) {
      asio::post(io, [&] { released.release(); });
      co_await custody::async_recv(go, use_awaitable);
    }
  });
  // Pairs hand values back and forth meanwhile, blocking and resuming all the time.
  for (int i = 0; i < pairs; ++i) {
    group.spawn(io, "ping " + std::to_string(i),
                [&, i](std::stop_token stop) -> asio::awaitable<void> {
                  while ((co_await custody::async_send(pings[i], i, stop, use_awaitable)) ==
                         custody::status::ok) {
                  }
                });
    group.spawn(io, "pong " + std::to_string(i),
                [&, i](std::stop_token stop) -> asio::awaitable<void> {
                  while (co_await custody::async_recv(pings[i], stop, use_awaitable)) {
                  }
                });
  }
  std::atomic<bool> handshakes_done{false};
  std::atomic<int> free_snapshots{0};
  std::atomic<int> free_saw_blocked{0};
  // A second inspector, unsynchronised with the tasks: it runs until the handshakes are over
  // and it has seen a ping or pong blocked (one of each pair is, whenever the other runs), or
  // has taken a great many snapshots without seeing one, which fails below.
  std::jthread free_inspector([&] {
    do {
      const custody::inspection i = custody::inspect();
      ++free_snapshots;
      const custody::task_group_report* g = find(i.task_groups, "churning coroutines");
      if (g && std::any_of(g->tasks.begin(), g->tasks.end(), [](const custody::task_report& t) {
            return t.state == task_state::blocked && t.name != "handshake";
          })) {
        ++free_saw_blocked;
      }
      // Lets the handshakes' snapshots have the registry's mutex too.
      std::this_thread::yield();
    } while (!handshakes_done || (free_saw_blocked == 0 && free_snapshots < 100000));
  });
  std::jthread runner([&] { io.run(); });

  int saw_handshake_blocked = 0;
  for (int i = 0; i < rounds; ++i) {
    released.acquire();
    const custody::inspection snapshot = custody::inspect();
    const custody::task_report* t = task_in(snapshot, "churning coroutines", "handshake");
    if (t && t->state == task_state::blocked && t->operation == "recv on \"go\"") {
      ++saw_handshake_blocked;
    }
    EXPECT_EQ(go.send(i), custody::status::ok);
  }
  handshakes_done = true;
  free_inspector.join();
  group.request_stop();
  group.wait();
  EXPECT_EQ(saw_handshake_blocked, rounds);
  // Snapshots taken beside coroutines that block and resume saw them blocked.
  EXPECT_GT(free_saw_blocked, 0) << "of " << free_snapshots << " snapshots";
  RecordProperty("free_snapshots", free_snapshots.load());
  RecordProperty("free_snapshots_that_saw_a_blocked_ping_or_pong", free_saw_blocked.load());
}

// A named group's tasks on a two-thread pool: their executor (a pool's strand, wrapped) runs
// them as it runs an unnamed group's, and snapshots taken meanwhile see their records change.
TEST(AsioInspect, NamedGroupOnAThreadPool) {
  constexpr int values = 2000;
  asio::thread_pool pool(2);
  custody::Channel<int> hand(0, "pool hand-over");
  custody::asio::TaskGroup group("pool coroutines");
  std::atomic<long> sum{0};
  group.spawn(pool, "pool sender", [&]() -> asio::awaitable<void> {
    for (int i = 1; i <= values; ++i) co_await custody::async_send(hand, i, use_awaitable);
    hand.close();
  });
  group.spawn(pool, "pool receiver", [&]() -> asio::awaitable<void> {
    for (;;) {
      const custody::received<int> r = co_await custody::async_recv(hand, use_awaitable);
      if (!r) co_return;
      sum += *r;
    }
  });
  std::atomic<bool> done{false};
  std::atomic<int> saw_blocked{0};
  std::jthread inspector([&] {
    while (!done) {
      const custody::inspection i = custody::inspect();
      if (blocked_in(i, "pool coroutines", "pool sender") ||
          blocked_in(i, "pool coroutines", "pool receiver")) {
        ++saw_blocked;
      }
      std::this_thread::yield();
    }
  });
  group.wait();
  done = true;
  inspector.join();
  EXPECT_EQ(sum, static_cast<long>(values) * (values + 1) / 2);
  const custody::inspection after = custody::inspect();
  EXPECT_EQ(task_in(after, "pool coroutines", "pool sender")->state, task_state::finished);
  EXPECT_EQ(task_in(after, "pool coroutines", "pool receiver")->state, task_state::finished);
  RecordProperty("snapshots_that_saw_a_pool_task_blocked", saw_blocked.load());
}

}  // namespace asio_inspect_test
}  // namespace
