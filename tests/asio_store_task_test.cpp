// The store's asynchronous operations and async_select inside a custody::asio::Task (the token
// use_task): their state sits in the task's frame (custody/asio/task_operation.hpp), and tasks
// on one io_context thread hand over to each other without a post. Also a waiter told to try
// again (a buffered channel's notification whose value another took first) waits on correctly.

#include <asio/io_context.hpp>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using custody::status;
using custody::asio::spawn;
using custody::asio::Task;
using custody::asio::use_task;

namespace {
namespace asio_store_task_test {

// Inside a Task, select, set and publish are awaited in the task's frame: no completion handler,
// so nothing Asio's async_result machinery would allocate.
using select_op = decltype(custody::async_select(
    custody::on_recv(std::declval<custody::Channel<int>&>(), [](int) {}),
    custody::on_stop(std::stop_token()), use_task));
using set_op = decltype(custody::async_set(std::declval<custody::Setter<int>&>(), 1, use_task));
using publish_op =
    decltype(custody::async_publish(std::declval<custody::Owner<int>&>(), 1, use_task));
template <class Awaiter>
concept suspends_a_task = requires(Awaiter& a,
                                   std::coroutine_handle<custody::detail::task_promise<void>> h) {
  { a.await_suspend(h) } -> std::same_as<bool>;
};
static_assert(suspends_a_task<select_op>);
static_assert(suspends_a_task<set_op>);
static_assert(suspends_a_task<publish_op>);
static_assert(
    std::is_same_v<decltype(std::declval<set_op&>().await_resume()), custody::set_result<int>>);
static_assert(std::is_same_v<decltype(std::declval<publish_op&>().await_resume()), status>);
static_assert(
    std::is_same_v<decltype(std::declval<select_op&>().await_resume()), custody::selected>);

template <class T>
struct outcome {
  std::optional<T> value;
  std::exception_ptr error;
};

template <class T>
auto into(outcome<T>& out) {
  return [&out](std::exception_ptr e, T v) {
    out.error = e;
    out.value = std::move(v);
  };
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// The seed's owner loop: accepts every request until stopped; yields how many it accepted.
Task<int> owner_loop(custody::Owner<std::int64_t>& owner, std::stop_token stop) {
  auto requests = owner.requests();
  int accepted = 0;
  for (bool running = true; running;) {
    co_await custody::async_select(custody::on_recv(requests,
                                                    [&](custody::SetRequest<std::int64_t> r) {
                                                      owner.accept(std::move(r));
                                                      ++accepted;
                                                    }),
                                   custody::on_stop(stop, [&] { running = false; }), use_task);
  }
  co_return accepted;
}

// Sets 0..n-1 and yields the sum of the accepted values; stops the owner when done.
Task<std::int64_t> set_all(custody::Setter<std::int64_t> setter, std::int64_t n,
                           std::stop_source& stop) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    custody::set_result<std::int64_t> r = co_await custody::async_set(setter, i, use_task);
    if (!r || r.value() != i) throw std::runtime_error("a set was not accepted with its value");
    sum += r.value();
  }
  stop.request_stop();
  co_return sum;
}

constexpr std::int64_t sum_below(std::int64_t n) { return n * (n - 1) / 2; }

TEST(AsioStoreTask, SetsAnsweredByAnOwnerTaskOnTheSameThreadNeedNoPosts) {
  constexpr std::int64_t n = 2'000;
  auto made = custody::make_store<std::int64_t>(-1, custody::store_options{0});
  asio::io_context io(1);
  std::stop_source stop;
  outcome<int> accepted;
  outcome<std::int64_t> sum;
  spawn(io.get_executor(), owner_loop(made.owner, stop.get_token()), into(accepted));
  spawn(io.get_executor(), set_all(made.store, n, stop), into(sum));
  const std::size_t handlers = io.run();
  EXPECT_FALSE(accepted.error);
  EXPECT_FALSE(sum.error);
  EXPECT_EQ(accepted.value, n);
  EXPECT_EQ(sum.value, sum_below(n));
  EXPECT_EQ(made.store.get(), n - 1);
  // Each set is four hand-overs; a post each would run 4n handlers. Without them, only the
  // spawns, the completions and the posts that end each run of `ready_budget` in a row remain.
  EXPECT_LT(handlers, static_cast<std::size_t>(n / 4));
}

TEST(AsioStoreTask, TwoThreadsRunningTheContextLoseNoSet) {
  constexpr std::int64_t n = 2'000;
  auto made = custody::make_store<std::int64_t>(-1, custody::store_options{0});
  asio::io_context io(2);
  std::stop_source stop;
  outcome<int> accepted;
  outcome<std::int64_t> sum;
  spawn(io.get_executor(), owner_loop(made.owner, stop.get_token()), into(accepted));
  spawn(io.get_executor(), set_all(made.store, n, stop), into(sum));
  {
    std::jthread helper([&] { io.run(); });
    io.run();
  }
  EXPECT_FALSE(accepted.error);
  EXPECT_EQ(accepted.value, n);
  EXPECT_EQ(sum.value, sum_below(n));
}

TEST(AsioStoreTask, ASetEndsStoppedOrOwnerGoneWithoutAnAnswer) {
  auto made = custody::make_store<int>(0, custody::store_options{0});
  asio::io_context io(1);
  std::stop_source stop;
  outcome<custody::set_status> waited;
  // Nobody receives the requests: the set waits in its send until stopped.
  spawn(
      io.get_executor(),
      [](custody::Setter<int> s, std::stop_token st) -> Task<custody::set_status> {
        co_return (co_await custody::async_set(s, 5, st, use_task)).status();
      }(made.store, stop.get_token()),
      into(waited));
  io.poll();
  EXPECT_FALSE(waited.value);
  stop.request_stop();
  io.run();
  EXPECT_EQ(waited.value, custody::set_status::stopped);
  EXPECT_EQ(made.store.get(), 0);

  made.owner.close();
  io.restart();
  outcome<custody::set_status> gone;
  spawn(
      io.get_executor(),
      [](custody::Setter<int> s) -> Task<custody::set_status> {
        co_return (co_await custody::async_set(s, 6, use_task)).status();
      }(made.store),
      into(gone));
  io.run();
  EXPECT_EQ(gone.value, custody::set_status::owner_gone);
}

// The setter first: its request waits in the unbuffered channel (and then for the answer)
// until the owner's task runs.
TEST(AsioStoreTask, ASetWaitsForTheOwnerToReceiveAndAnswer) {
  constexpr std::int64_t n = 3;
  auto made = custody::make_store<std::int64_t>(-1, custody::store_options{0});
  asio::io_context io(1);
  std::stop_source stop;
  outcome<std::int64_t> sum;
  outcome<int> accepted;
  spawn(io.get_executor(), set_all(made.store, n, stop), into(sum));
  io.poll();
  EXPECT_FALSE(sum.value);
  EXPECT_EQ(made.store.get(), -1);
  spawn(io.get_executor(), owner_loop(made.owner, stop.get_token()), into(accepted));
  io.run();
  EXPECT_FALSE(sum.error);
  EXPECT_EQ(sum.value, sum_below(n));
  EXPECT_EQ(accepted.value, n);
  EXPECT_EQ(made.store.get(), n - 1);
}

Task<void> publish_all(custody::Owner<std::int64_t>& owner, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (co_await custody::async_publish(owner, i, use_task) != status::ok) {
      throw std::runtime_error("publish failed");
    }
  }
  owner.close();
  if (co_await custody::async_publish(owner, n, use_task) != status::closed) {
    throw std::runtime_error("a publish after close() did not end closed");
  }
}

Task<std::int64_t> sum_all(custody::Subscription<std::int64_t>& sub) {
  std::int64_t sum = 0;
  while (auto r = co_await custody::async_recv(sub, use_task)) sum += *r;
  co_return sum;
}

TEST(AsioStoreTask, PublishesToFullSubscribersLoseNothingAndNeedNoPosts) {
  constexpr std::int64_t n = 2'000;
  auto made = custody::make_store<std::int64_t>(-1);
  custody::Subscription<std::int64_t> subs[2] = {made.store.subscribe(custody::policy::block(1)),
                                                 made.store.subscribe(custody::policy::block(1))};
  asio::io_context io(1);
  outcome<std::int64_t> sums[2];
  spawn(io.get_executor(), publish_all(made.owner, n), rethrow);
  for (int k = 0; k < 2; ++k) spawn(io.get_executor(), sum_all(subs[k]), into(sums[k]));
  const std::size_t handlers = io.run();
  for (const auto& s : sums) {
    EXPECT_FALSE(s.error);
    EXPECT_EQ(s.value, sum_below(n));
  }
  // One slot each: the owner waits for room at nearly every publish.
  EXPECT_LT(handlers, static_cast<std::size_t>(n / 4));
}

TEST(AsioStoreTask, SelectThrowsWhatTheCommittedCaseThrows) {
  asio::io_context io(1);
  custody::Channel<int> ch(1);
  ASSERT_EQ(ch.send(3), status::ok);
  outcome<bool> ended;
  spawn(
      io.get_executor(),
      [](custody::Channel<int> c) -> Task<bool> {
        try {
          co_await custody::async_select(
              custody::on_recv(c, [](int) { throw std::runtime_error("case"); }), use_task);
        } catch (const std::runtime_error&) {
          co_return true;
        }
        co_return false;
      }(ch),
      into(ended));
  io.run();
  EXPECT_FALSE(ended.error);
  EXPECT_EQ(ended.value, true);
}

// A task waiting on an empty buffered channel is handed the next value directly: nobody else can
// take it first, and the ring stays empty (detail/chan_core.hpp, buffered_core).
TEST(AsioStoreTask, AWaitingReceiveIsHandedTheValueDirectly) {
  asio::io_context io(1);
  custody::Channel<int> ch(1);
  outcome<custody::received<int>> plain;
  spawn(
      io.get_executor(),
      [](custody::Channel<int> c) -> Task<custody::received<int>> {
        co_return co_await custody::async_recv(c, use_task);
      }(ch),
      into(plain));
  io.poll();                          // waiting on the empty channel
  ASSERT_EQ(ch.send(1), status::ok);  // handed to it: it is posted
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.try_recv().status(), status::would_block);  // nothing left to take
  ASSERT_EQ(ch.send(2), status::ok);                       // into the ring: nobody waits
  io.run();
  ASSERT_TRUE(plain.value);
  EXPECT_EQ(plain.value->status(), status::ok);
  EXPECT_EQ(**plain.value, 1);
  ASSERT_EQ(ch.try_recv().value(), 2);

  io.restart();
  int got = 0;
  outcome<status> selected;
  spawn(
      io.get_executor(),
      [](custody::Channel<int> c, int& into_got) -> Task<status> {
        custody::selected s = co_await custody::async_select(
            custody::on_recv(c, [&](int v) { into_got = v; }), use_task);
        co_return s.status;
      }(ch, got),
      into(selected));
  io.poll();
  ASSERT_EQ(ch.send(3), status::ok);
  EXPECT_EQ(ch.try_recv().status(), status::would_block);
  ASSERT_EQ(ch.send(4), status::ok);
  io.run();
  EXPECT_EQ(selected.value, status::ok);
  EXPECT_EQ(got, 3);
  ASSERT_EQ(ch.try_recv().value(), 4);

  // The stop-token form, run by the select engine in the frame (task_channel.hpp).
  io.restart();
  std::stop_source stop;
  outcome<custody::received<int>> stoppable;
  spawn(
      io.get_executor(),
      [](custody::Channel<int> c, std::stop_token st) -> Task<custody::received<int>> {
        co_return co_await custody::async_recv(c, st, use_task);
      }(ch, stop.get_token()),
      into(stoppable));
  io.poll();
  ASSERT_EQ(ch.send(5), status::ok);
  EXPECT_EQ(ch.try_recv().status(), status::would_block);
  ASSERT_EQ(ch.send(6), status::ok);
  io.run();
  ASSERT_TRUE(stoppable.value);
  EXPECT_EQ(stoppable.value->status(), status::ok);
  EXPECT_EQ(**stoppable.value, 5);
  ASSERT_EQ(ch.try_recv().value(), 6);
}

}  // namespace asio_store_task_test
}  // namespace
