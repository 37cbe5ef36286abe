// custody::asio::Task (custody/asio/task.hpp): custody's own coroutine task on Asio executors,
// its channel operations (the token use_task), Asio operations awaited with use_task, and the
// end of tasks whose io_context goes away.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using namespace std::chrono_literals;
using custody::Channel;
using custody::received;
using custody::status;
using custody::asio::spawn;
using custody::asio::Task;
using custody::asio::use_task;

namespace {
namespace asio_task_test {

// A use_task operation suspends only a custody::asio::Task (the compile-fail test
// asio_task_op_in_awaitable shows asio::awaitable refusing it): any other coroutine's promise
// is refused by the trait as well.
struct foreign_promise {};
template <class Awaiter, class Promise>
concept suspends = requires(Awaiter& a, std::coroutine_handle<Promise> h) {
  a.await_suspend(h);
};
using recv_op = decltype(custody::async_recv(std::declval<Channel<int>&>(), use_task));
using send_op = decltype(custody::async_send(std::declval<Channel<int>&>(), 1, use_task));
using stop_recv_op =
    decltype(custody::async_recv(std::declval<Channel<int>&>(), std::stop_token(), use_task));
static_assert(suspends<recv_op, custody::detail::task_promise<void>>);
static_assert(suspends<send_op, custody::detail::task_promise<int>>);
static_assert(suspends<stop_recv_op, custody::detail::task_promise<void>>);
static_assert(!suspends<recv_op, foreign_promise>);
static_assert(!suspends<send_op, foreign_promise>);
static_assert(!suspends<stop_recv_op, foreign_promise>);
// A Task is moved, never copied.
static_assert(!std::is_copy_constructible_v<Task<int>>);
static_assert(std::is_nothrow_move_constructible_v<Task<int>>);

// Where a spawned task's completion lands.
template <class T>
struct outcome {
  std::optional<T> value;
  std::exception_ptr error;
  int calls = 0;
};

template <class T>
auto into(outcome<T>& out) {
  return [&out](std::exception_ptr e, T v) {
    ++out.calls;
    out.error = e;
    out.value = std::move(v);
  };
}
auto into(outcome<bool>& out) {
  return [&out](std::exception_ptr e) {
    ++out.calls;
    out.error = e;
    out.value = true;
  };
}

Task<std::int64_t> ping(Channel<int> out, Channel<int> in, int n) {
  std::int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    if (co_await custody::async_send(out, i, use_task) != status::ok) {
      throw std::runtime_error("send failed");
    }
    received<int> r = co_await custody::async_recv(in, use_task);
    if (!r) throw std::runtime_error("receive failed");
    sum += *r;
  }
  co_return sum;
}

Task<void> doubler(Channel<int> in, Channel<int> out) {
  for (;;) {
    received<int> r = co_await custody::async_recv(in, use_task);
    if (!r) co_return;
    if (co_await custody::async_send(out, *r * 2, use_task) != status::ok) co_return;
  }
}

std::int64_t doubled_sum(int n) { return std::int64_t{n} * (n - 1); }

TEST(AsioTask, TwoTasksHandValuesBackAndForthOnOneThread) {
  asio::io_context io(1);
  Channel<int> a, b;
  outcome<std::int64_t> pinged;
  outcome<bool> doubled;
  constexpr int n = 10'000;
  spawn(io.get_executor(), ping(a, b, n), [&](std::exception_ptr e, std::int64_t sum) {
    into(pinged)(e, sum);
    a.close();
  });
  spawn(io.get_executor(), doubler(a, b), into(doubled));
  io.run();
  ASSERT_EQ(pinged.calls, 1);
  EXPECT_FALSE(pinged.error);
  EXPECT_EQ(pinged.value, doubled_sum(n));
  EXPECT_EQ(doubled.calls, 1);
  EXPECT_FALSE(doubled.error);
}

TEST(AsioTask, BufferedChannelsAndTwoThreadsRunningTheContext) {
  asio::io_context io(2);
  constexpr int pairs = 4;
  constexpr int n = 5'000;
  std::vector<Channel<int>> ins, outs;
  std::vector<outcome<std::int64_t>> pinged(pairs);
  std::atomic<int> left{pairs};
  for (int p = 0; p < pairs; ++p) {
    ins.emplace_back(p % 2 == 0 ? 0 : 1);
    outs.emplace_back(p % 2 == 0 ? 0 : 3);
  }
  for (int p = 0; p < pairs; ++p) {
    spawn(io.get_executor(), ping(ins[p], outs[p], n),
          [&, p](std::exception_ptr e, std::int64_t sum) {
            into(pinged[p])(e, sum);
            ins[p].close();
            --left;
          });
    spawn(io.get_executor(), doubler(ins[p], outs[p]), [](std::exception_ptr) {});
  }
  std::jthread second([&] { io.run(); });
  io.run();
  second.join();
  EXPECT_EQ(left.load(), 0);
  for (const auto& p : pinged) {
    EXPECT_FALSE(p.error);
    EXPECT_EQ(p.value, doubled_sum(n));
  }
}

TEST(AsioTask, ThreadsAndTasksMeetOnOneChannel) {
  asio::io_context io(1);
  Channel<int> to_tasks, to_threads;
  constexpr int per_thread = 2'000;
  constexpr int tasks = 3;
  std::atomic<std::int64_t> task_sum{0};
  std::atomic<std::int64_t> thread_sum{0};
  std::atomic<int> tasks_left{tasks};
  for (int t = 0; t < tasks; ++t) {
    spawn(
        io.get_executor(),
        [](Channel<int> in, Channel<int> out, std::atomic<std::int64_t>& sum) -> Task<void> {
          for (;;) {
            received<int> r = co_await custody::async_recv(in, use_task);
            if (!r) co_return;
            sum += *r;
            // Hands each value on to a thread blocked in recv().
            if (co_await custody::async_send(out, *r, use_task) != status::ok) co_return;
          }
        }(to_tasks, to_threads, task_sum),
        [&](std::exception_ptr) {
          if (--tasks_left == 0) to_threads.close();
        });
  }
  std::jthread runner([&] { io.run(); });
  std::vector<std::jthread> senders, receivers;
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < per_thread; ++i) ASSERT_EQ(to_tasks.send(s * per_thread + i), status::ok);
    });
  }
  for (int r = 0; r < 2; ++r) {
    receivers.emplace_back([&] {
      for (;;) {
        received<int> v = to_threads.recv();
        if (!v) return;
        thread_sum += *v;
      }
    });
  }
  for (auto& s : senders) s.join();
  to_tasks.close();
  for (auto& r : receivers) r.join();
  runner.join();
  const std::int64_t total = std::int64_t{2 * per_thread} * (2 * per_thread - 1) / 2;
  EXPECT_EQ(task_sum.load(), total);
  EXPECT_EQ(thread_sum.load(), total);
}

Task<int> after_a_timer(asio::io_context& io, std::chrono::milliseconds d) {
  asio::steady_timer timer(io, d);
  co_await timer.async_wait(use_task);
  co_return 7;
}

Task<int> nested(asio::io_context& io) {
  const int inner = co_await after_a_timer(io, 1ms);
  co_return inner + 1;
}

Task<int> throws_after_a_step(Channel<int> ch) {
  (void)co_await custody::async_recv(ch, use_task);
  throw std::runtime_error("from the inner task");
}

Task<int> catches(Channel<int> ch) {
  try {
    co_return co_await throws_after_a_step(ch);
  } catch (const std::runtime_error&) {
    co_return -1;
  }
}

TEST(AsioTask, AwaitsAsioOperationsAndOtherTasks) {
  asio::io_context io(1);
  outcome<int> got;
  spawn(io.get_executor(), nested(io), into(got));
  io.run();
  EXPECT_FALSE(got.error);
  EXPECT_EQ(got.value, 8);
}

TEST(AsioTask, AnExceptionReachesTheAwaitingTaskAndTheHandler) {
  asio::io_context io(1);
  Channel<int> ch(1);
  ASSERT_EQ(ch.send(1), status::ok);
  outcome<int> caught;
  spawn(io.get_executor(), catches(ch), into(caught));
  io.run();
  EXPECT_FALSE(caught.error);
  EXPECT_EQ(caught.value, -1);

  io.restart();
  ASSERT_EQ(ch.send(2), status::ok);
  outcome<int> thrown;
  spawn(io.get_executor(), throws_after_a_step(ch), into(thrown));
  io.run();
  ASSERT_TRUE(thrown.error);
  EXPECT_THROW(std::rethrow_exception(thrown.error), std::runtime_error);
}

TEST(AsioTask, AnAsioErrorIsThrownInsideTheTask) {
  asio::io_context io(1);
  outcome<bool> ended;
  std::optional<asio::steady_timer> timer(std::in_place, io, 1h);
  spawn(
      io.get_executor(),
      [](asio::steady_timer& t) -> Task<bool> {
        try {
          co_await t.async_wait(use_task);
        } catch (const std::system_error& e) {
          co_return e.code() == asio::error::operation_aborted;
        }
        co_return false;
      }(*timer),
      [&](std::exception_ptr e, bool aborted) {
        ++ended.calls;
        ended.error = e;
        ended.value = aborted;
      });
  asio::post(io, [&] { timer->cancel(); });
  io.run();
  EXPECT_EQ(ended.calls, 1);
  EXPECT_EQ(ended.value, true);
}

TEST(AsioTask, AnAwaitableCoroutineAwaitsATask) {
  asio::io_context io(1);
  int got = 0;
  bool threw = false;
  Channel<int> ch(1);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        got = co_await spawn(io.get_executor(), nested(io), asio::use_awaitable);
        try {
          EXPECT_EQ(ch.send(3), status::ok);
          co_await spawn(io.get_executor(), throws_after_a_step(ch), asio::use_awaitable);
        } catch (const std::runtime_error&) {
          threw = true;
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(got, 8);
  EXPECT_TRUE(threw);
}

TEST(AsioTask, CloseStopAndDeadlineEndPendingOperations) {
  asio::io_context io(1);
  Channel<int> to_receive, to_send;
  Channel<int> full(1);
  ASSERT_EQ(full.send(0), status::ok);
  std::stop_source stop;
  outcome<status> recv_closed, send_closed, stopped, timed_out;
  auto status_of = [](Task<received<int>> t) -> Task<status> {
    co_return (co_await std::move(t)).status();
  };
  spawn(io.get_executor(), status_of([](Channel<int> c) -> Task<received<int>> {
          co_return co_await custody::async_recv(c, use_task);
        }(to_receive)),
        into(recv_closed));
  spawn(
      io.get_executor(),
      [](Channel<int> c) -> Task<status> {
        co_return co_await custody::async_send(c, 1, use_task);
      }(to_send),
      into(send_closed));
  spawn(
      io.get_executor(),
      [](Channel<int> c, std::stop_token st) -> Task<status> {
        co_return co_await custody::async_send(c, 1, st, use_task);
      }(full, stop.get_token()),
      into(stopped));
  spawn(io.get_executor(), status_of([](Channel<int> c) -> Task<received<int>> {
          co_return co_await custody::async_recv_for(c, 5ms, use_task);
        }(Channel<int>())),
        into(timed_out));
  // The deadline ends the last task; the three before it have started and wait.
  while (timed_out.calls == 0) io.run_one();
  EXPECT_EQ(timed_out.value, status::timeout);
  EXPECT_EQ(recv_closed.calls + send_closed.calls + stopped.calls, 0);
  to_receive.close();
  to_send.close();
  stop.request_stop();
  io.run();
  EXPECT_EQ(recv_closed.value, status::closed);
  EXPECT_EQ(send_closed.value, status::closed);
  EXPECT_EQ(stopped.value, status::stopped);
  EXPECT_EQ(full.size(), 1u) << "the stopped send left the channel as it was";
}

TEST(AsioTask, AStopRacingAHandOverLosesNothing) {
  // Rounds until each side has won often enough; the stopper's delay moves towards the point
  // where they meet: shorter after a hand-over, longer after a stop.
  constexpr int wanted = 20;
  constexpr int max_rounds = 5'000;
  int handed_over = 0;
  int stopped_first = 0;
  int delay = 0;
  for (int round = 0; round < max_rounds && (handed_over < wanted || stopped_first < wanted);
       ++round) {
    asio::io_context io(1);
    Channel<int> ch;
    std::stop_source stop, stop_sender;
    outcome<received<int>> got;
    spawn(
        io.get_executor(),
        [](Channel<int> c, std::stop_token st) -> Task<received<int>> {
          co_return co_await custody::async_recv(c, st, use_task);
        }(ch, stop.get_token()),
        into(got));
    // The task's first step: it starts and waits in the receive.
    ASSERT_EQ(io.run_one(), 1u);
    ASSERT_EQ(got.calls, 0);
    // Both threads spin on one flag, so neither starts a kernel wake-up behind the other.
    std::atomic<bool> go{false};
    status sent = status::would_block;
    std::jthread sender([&] {
      while (!go.load()) {
      }
      sent = ch.send(round, stop_sender.get_token());
    });
    std::jthread stopper([&, delay] {
      while (!go.load()) {
      }
      std::atomic<int> spin{0};
      while (spin.fetch_add(1, std::memory_order_relaxed) < delay) {
      }
      stop.request_stop();
    });
    go = true;
    io.run();
    // The receive has ended: a sender still waiting has nobody left to take its value.
    stop_sender.request_stop();
    sender.join();
    stopper.join();
    ASSERT_TRUE(got.value);
    const bool received_it = got.value->status() == status::ok;
    // Conservation: the value was received exactly when the send reports ok.
    EXPECT_EQ(received_it, sent == status::ok) << "round " << round;
    if (received_it) {
      EXPECT_EQ(**got.value, round);
      ++handed_over;
      delay /= 2;
    } else {
      EXPECT_EQ(got.value->status(), status::stopped);
      ++stopped_first;
      delay = delay * 2 + 1;
    }
  }
  // Both orders happened, often: the race was exercised.
  EXPECT_GE(handed_over, wanted);
  EXPECT_GE(stopped_first, wanted);
}

// Notes when its frame goes away.
struct frame_probe {
  std::atomic<int>* destroyed;
  ~frame_probe() { ++*destroyed; }
};

TEST(AsioTask, DestroyingTheContextEndsSuspendedTasksUnrun) {
  std::atomic<int> destroyed{0};
  Channel<int> ch;
  Channel<int> buffered(4);
  int completions = 0;
  {
    asio::io_context io(1);
    for (int i = 0; i < 3; ++i) {
      spawn(
          io.get_executor(),
          [](Channel<int> c, std::atomic<int>& d) -> Task<void> {
            frame_probe probe{&d};
            (void)co_await custody::async_recv(c, use_task);
          }(ch, destroyed),
          [&](std::exception_ptr) { ++completions; });
    }
    spawn(
        io.get_executor(),
        [](asio::io_context& ctx, std::atomic<int>& d) -> Task<void> {
          frame_probe probe{&d};
          asio::steady_timer never(ctx, 1h);
          co_await never.async_wait(use_task);
        }(io, destroyed),
        [&](std::exception_ptr) { ++completions; });
    io.poll();
    // A task that never started (in its context's inbox, with the drain that would run it).
    spawn(
        io.get_executor(),
        [](std::atomic<int>& d) -> Task<void> {
          frame_probe probe{&d};
          co_return;
        }(destroyed),
        [&](std::exception_ptr) { ++completions; });
  }
  EXPECT_EQ(completions, 0) << "handlers are destroyed, not called";
  EXPECT_EQ(destroyed.load(), 4) << "every started frame was destroyed";
  // The receivers left the channel: a send finds nobody and times out.
  EXPECT_EQ(ch.send_for(1, 1ms), status::timeout);
  EXPECT_EQ(buffered.send(1), status::ok);
}

TEST(AsioTask, HandOversDoNotStarveTheContextsOtherHandlers) {
  asio::io_context io(1);
  Channel<int> a, b;
  std::atomic<bool> other_ran{false};
  std::int64_t round_trips_before = -1;
  spawn(
      io.get_executor(),
      [](Channel<int> out, Channel<int> in, std::atomic<bool>& flag,
         std::int64_t& before) -> Task<void> {
        // Bounded, so that a starved handler fails the test rather than hangs it.
        for (std::int64_t i = 0; i < 100'000; ++i) {
          if (flag.load()) {
            before = i;
            break;
          }
          (void)co_await custody::async_send(out, 1, use_task);
          (void)co_await custody::async_recv(in, use_task);
        }
        out.close();
      }(a, b, other_ran, round_trips_before),
      [](std::exception_ptr) {});
  spawn(io.get_executor(), doubler(a, b), [](std::exception_ptr) {});
  asio::post(io, [&] { other_ran = true; });
  io.run();
  EXPECT_GE(round_trips_before, 0);
  // Each loop runs at most ready_budget steps before it yields the thread.
  EXPECT_LE(round_trips_before, custody::detail::task_root::ready_budget);
}

// The seed's owner loop as a Task: a select over the set requests and the stop, answering each;
// setters and a subscriber are Tasks too. Every custody operation takes use_task.
Task<int> owner_loop(custody::Owner<int>& owner, std::stop_token stop) {
  int answered = 0;
  auto requests = owner.requests();
  for (;;) {
    custody::selected s = co_await custody::async_select(
        custody::on_recv(requests,
                         [&](custody::SetRequest<int> r) {
                           owner.accept(std::move(r), r.value() * 10);
                           ++answered;
                         }),
        custody::on_stop(stop), use_task);
    if (s.status != status::ok) co_return answered;
  }
}

Task<int> setter(custody::Setter<int> view, int from, int n) {
  int accepted = 0;
  for (int i = from; i < from + n; ++i) {
    custody::set_result<int> r = co_await custody::async_set(view, i, use_task);
    if (r.status() == custody::set_status::accepted && r.value() == i * 10) ++accepted;
  }
  co_return accepted;
}

Task<int> last_seen(custody::Subscription<int> sub) {
  int last = -1;
  for (;;) {
    received<int> r = co_await custody::async_recv(sub, use_task);
    if (!r) co_return last;
    last = *r;
  }
}

TEST(AsioTask, TheSeedsStoreWithEveryPartATask) {
  asio::io_context io(1);
  auto made = custody::make_store<int>(0);
  std::stop_source stop;
  outcome<int> answered, first, second, seen;
  spawn(io.get_executor(), owner_loop(made.owner, stop.get_token()),
        [&](std::exception_ptr e, int n) {
          into(answered)(e, n);
          made.owner.close();
        });
  spawn(io.get_executor(), last_seen(made.store.subscribe(custody::policy::latest())), into(seen));
  std::atomic<int> setters_left{2};
  auto done_setting = [&](outcome<int>& out) {
    return [&](std::exception_ptr e, int n) {
      into(out)(e, n);
      if (--setters_left == 0) stop.request_stop();
    };
  };
  spawn(io.get_executor(), setter(made.store, 0, 50), done_setting(first));
  spawn(io.get_executor(), setter(made.store, 100, 50), done_setting(second));
  io.run();
  EXPECT_FALSE(answered.error);
  EXPECT_EQ(answered.value, 100);
  EXPECT_EQ(first.value, 50);
  EXPECT_EQ(second.value, 50);
  EXPECT_FALSE(seen.error);
  // The subscriber ends on the store's last value, whichever setter was answered last.
  EXPECT_EQ(seen.value, made.store.get());
}

TEST(AsioTask, PublishesWithUseTask) {
  asio::io_context io(1);
  auto made = custody::make_store<int>(0);
  auto sub = made.store.subscribe(custody::policy::block(1));
  outcome<status> published;
  spawn(
      io.get_executor(),
      [](custody::Owner<int>& owner) -> Task<status> {
        co_return co_await custody::async_publish(owner, 5, use_task);
      }(made.owner),
      into(published));
  io.run();
  EXPECT_EQ(published.value, status::ok);
  EXPECT_EQ(made.store.get(), 5);
  EXPECT_EQ(sub.try_recv().value(), 5);
}

// README.md, "custody's own task", as written there.
namespace readme {
using custody::asio::Task;
using custody::asio::use_task;

Task<long> ping(custody::Channel<int> out, custody::Channel<int> in, int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) {
    co_await custody::async_send(out, i, use_task);  // a custody::status
    custody::received<int> r = co_await custody::async_recv(in, use_task);
    sum += *r;
  }
  co_return sum;
}
Task<void> echo(custody::Channel<int> in, custody::Channel<int> out) {
  while (auto r = co_await custody::async_recv(in, use_task)) {
    co_await custody::async_send(out, *r, use_task);
  }
}
}  // namespace readme

TEST(AsioTask, ReadmeExample) {
  asio::io_context io;
  custody::Channel<int> a, b;
  long total = -1;
  custody::asio::spawn(io.get_executor(), readme::echo(a, b), [](std::exception_ptr) {});
  custody::asio::spawn(io.get_executor(), readme::ping(a, b, 1000),
                       [&](std::exception_ptr, long sum) {
                         total = sum;
                         a.close();
                       });
  io.run();
  EXPECT_EQ(total, 999L * 1000 / 2);
}

TEST(AsioTask, RunsOnAStrandToo) {
  asio::io_context io(2);
  auto strand = asio::make_strand(io);
  Channel<int> a, b;
  outcome<std::int64_t> pinged;
  spawn(strand, ping(a, b, 1'000), [&](std::exception_ptr e, std::int64_t sum) {
    into(pinged)(e, sum);
    a.close();
  });
  spawn(strand, doubler(a, b), [](std::exception_ptr) {});
  std::jthread second([&] { io.run(); });
  io.run();
  second.join();
  EXPECT_FALSE(pinged.error);
  EXPECT_EQ(pinged.value, doubled_sum(1'000));
}

}  // namespace asio_task_test
}  // namespace
