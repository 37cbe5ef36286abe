// The store's asynchronous set (custody/asio/store.hpp): coroutines and callbacks asking an
// owner for changes, owners that are threads or coroutines, and every way a set ends.

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using namespace std::chrono_literals;
using custody::set_result;
using custody::set_status;
using custody::SetRequest;
using custody::status;

namespace {
namespace asio_store_set_test {

// Stores are kept as a named pair, not structured bindings, which clang 14's lambdas cannot
// capture.

template <class Awaitable>
void spawn(asio::io_context& ctx, Awaitable coroutine) {
  asio::co_spawn(ctx, std::move(coroutine), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

// Only a view with the set capability sets, as with the blocking set().
template <class View>
concept can_async_set = requires(const View& v) {
  custody::async_set(v, 1, asio::use_awaitable);
};
static_assert(can_async_set<custody::Setter<int>>);
static_assert(can_async_set<custody::Store<int>>);
static_assert(!can_async_set<custody::Getter<int>>);
static_assert(!can_async_set<custody::Subscriber<int>>);

// Even requests are accepted (halved), odd ones rejected.
void answer(custody::Owner<int>& owner, SetRequest<int> r) {
  if (r.value() % 2 == 0) {
    owner.accept(std::move(r), r.value() / 2);
  } else {
    std::move(r).reject(std::errc::invalid_argument, "odd");
  }
}

void expect_answer(int asked, const set_result<int>& r) {
  if (asked % 2 == 0) {
    ASSERT_EQ(r.status(), set_status::accepted);
    EXPECT_EQ(r.value(), asked / 2);
    EXPECT_GT(r.version(), 0u);
  } else {
    ASSERT_EQ(r.status(), set_status::rejected);
    EXPECT_EQ(r.error(), std::errc::invalid_argument);
    EXPECT_EQ(r.message(), "odd");
  }
}

class AsyncSet : public testing::TestWithParam<std::size_t> {};

TEST_P(AsyncSet, CoroutineSetsAnsweredByAnOwnerThread) {
  constexpr int sets = 200;
  auto made = custody::make_store<int>(0, {GetParam()});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  std::jthread owner_thread([&owner = owner] {
    auto requests = owner.requests();
    for (int i = 0; i < sets; ++i) {
      auto r = requests.recv();
      ASSERT_TRUE(r);
      answer(owner, std::move(*r));
    }
  });
  asio::io_context ctx(1);
  int done = 0;
  spawn(ctx, [&, setter = custody::Setter<int>(store)]() -> asio::awaitable<void> {
    for (int i = 0; i < sets; ++i) {
      expect_answer(i, co_await custody::async_set(setter, i, asio::use_awaitable));
      ++done;
    }
  });
  ctx.run();
  EXPECT_EQ(done, sets);
  EXPECT_EQ(store.get(), (sets - 2) / 2);
}

TEST_P(AsyncSet, ThreadSetsAnsweredByAnOwnerCoroutine) {
  constexpr int threads = 3;
  constexpr int per_thread = 100;
  auto made = custody::make_store<int>(0, {GetParam()});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  asio::io_context ctx(1);
  int answered = 0;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    auto requests = owner.requests();
    for (int i = 0; i < threads * per_thread; ++i) {
      auto r = co_await custody::async_recv(requests, asio::use_awaitable);
      if (!r) co_return;
      answer(owner, std::move(*r));
      ++answered;
    }
  });
  std::vector<std::jthread> setters;
  for (int t = 0; t < threads; ++t) {
    setters.emplace_back([setter = custody::Setter<int>(store)] {
      for (int i = 0; i < per_thread; ++i) expect_answer(i, setter.set(i));
    });
  }
  ctx.run();
  EXPECT_EQ(answered, threads * per_thread);
}

TEST_P(AsyncSet, CoroutineSetsAnsweredByAnOwnerCoroutineOnOneThread) {
  constexpr int sets = 100;
  auto made = custody::make_store<int>(0, {GetParam()});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  asio::io_context ctx(1);
  spawn(ctx, [&]() -> asio::awaitable<void> {
    auto requests = owner.requests();
    for (int i = 0; i < sets; ++i) {
      auto r = co_await custody::async_recv(requests, asio::use_awaitable);
      answer(owner, std::move(*r));
    }
  });
  int done = 0;
  spawn(ctx, [&, setter = custody::Setter<int>(store)]() -> asio::awaitable<void> {
    for (int i = 0; i < sets; ++i) {
      expect_answer(i, co_await custody::async_set(setter, i, asio::use_awaitable));
      ++done;
    }
  });
  ctx.run();
  EXPECT_EQ(done, sets);
}

// Coroutine setters on a 2-thread pool and thread setters at once, an owner coroutine on the
// same pool: every set is answered once, to its own caller. Runs repeat (a bounded number of
// times) until the owner took a request while sets of both kinds were under way, which no
// single run promises.
TEST_P(AsyncSet, ThreadAndCoroutineSettersAtOnceGetTheirOwnAnswers) {
  constexpr int setters_of_each_kind = 2;
  constexpr int per_setter = 200;
  bool overlapped = false;
  for (int run = 0; run < 50 && !overlapped; ++run) {
    auto made = custody::make_store<int>(0, {GetParam()});
    custody::Owner<int>& owner = made.owner;
    custody::Store<int>& store = made.store;
    asio::io_context ctx(2);
    std::atomic<int> answered{0}, wrong{0}, both_under_way{0};
    std::atomic<int> coroutine_sets{0}, thread_sets{0};  // under way
    std::atomic<std::int64_t> asked_sum{0}, answered_sum{0};
    spawn(ctx, [&]() -> asio::awaitable<void> {
      auto requests = owner.requests();
      for (int i = 0; i < 2 * setters_of_each_kind * per_setter; ++i) {
        auto r = co_await custody::async_recv(requests, asio::use_awaitable);
        if (coroutine_sets.load() > 0 && thread_sets.load() > 0) ++both_under_way;
        owner.accept(std::move(*r), r->value() + 1);  // the setter must get its own back
      }
    });
    auto check = [&](int asked, const set_result<int>& r) {
      if (!r || r.value() != asked + 1) ++wrong;
      asked_sum += asked;
      answered_sum += r ? r.value() - 1 : 0;
      ++answered;
    };
    for (int c = 0; c < setters_of_each_kind; ++c) {
      spawn(ctx, [&, c]() -> asio::awaitable<void> {
        for (int i = 0; i < per_setter; ++i) {
          const int asked = c * per_setter + i;
          ++coroutine_sets;
          check(asked, co_await custody::async_set(store, asked, asio::use_awaitable));
          --coroutine_sets;
        }
      });
    }
    std::vector<std::jthread> threads;
    for (int t = 0; t < setters_of_each_kind; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < per_setter; ++i) {
          const int asked = 1'000'000 + t * per_setter + i;
          ++thread_sets;
          check(asked, store.set(asked));
          --thread_sets;
        }
      });
    }
    threads.emplace_back([&] { ctx.run(); });
    ctx.run();
    threads.clear();
    ASSERT_EQ(wrong.load(), 0);
    ASSERT_EQ(answered.load(), 2 * setters_of_each_kind * per_setter);
    ASSERT_EQ(answered_sum.load(), asked_sum.load());
    overlapped = both_under_way.load() > 0;
  }
  EXPECT_TRUE(overlapped);
}

INSTANTIATE_TEST_SUITE_P(RequestCapacities, AsyncSet, testing::Values(0, 4));

TEST(AsyncSetEnds, DroppedRequestAnswersDropped) {
  auto made = custody::make_store<int>(0);
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  std::future<set_result<int>> result = custody::async_set(store, 1, asio::use_future);
  { auto r = owner.requests().recv(); }  // let go of it unanswered
  EXPECT_EQ(result.get().status(), set_status::dropped);
}

TEST(AsyncSetEnds, OwnerGoneCompletesPendingSetsAtOnce) {
  for (std::size_t capacity : {0, 4}) {
    auto made = custody::make_store<int>(0, {capacity});
    custody::Owner<int>& owner = made.owner;
    custody::Store<int>& store = made.store;
    asio::io_context ctx(1);
    std::optional<set_result<int>> in_channel, held;
    auto keep = [](std::optional<set_result<int>>& into) {
      return [&into](std::exception_ptr, set_result<int> r) { into.emplace(std::move(r)); };
    };
    // One request the owner holds, then (capacity 0) one still waiting to be sent, or
    // (capacity 4) one waiting in the channel.
    custody::async_set(store, 1, asio::bind_executor(ctx, keep(held)));
    ctx.poll();
    // Waiting to be sent (capacity 0) or in the channel: either way a receive takes it.
    SetRequest<int> taken = owner.requests().recv().value();
    custody::async_set(store, 2, asio::bind_executor(ctx, keep(in_channel)));
    ctx.poll();
    ASSERT_FALSE(held);
    ASSERT_FALSE(in_channel);
    owner.close();
    ctx.run();
    ASSERT_TRUE(held && in_channel);
    EXPECT_EQ(held->status(), set_status::owner_gone);
    EXPECT_EQ(in_channel->status(), set_status::owner_gone);
  }
}

TEST(AsyncSetEnds, AResultKnownAtOnceCompletesThroughAPost) {
  auto made = custody::make_store<int>(0);
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  owner.close();
  asio::io_context ctx(1);
  std::optional<set_result<int>> got;
  custody::async_set(store, 1, asio::bind_executor(ctx, [&](std::exception_ptr, set_result<int> r) {
                       got.emplace(std::move(r));
                     }));
  EXPECT_FALSE(got);  // never inside the initiating call
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), set_status::owner_gone);
}

TEST(AsyncSetEnds, StopTokenAndDeadline) {
  for (std::size_t capacity : {0, 1}) {
    auto made = custody::make_store<int>(0, {capacity});
    custody::Owner<int>& owner = made.owner;
    custody::Store<int>& store = made.store;
    asio::io_context ctx(1);
    std::stop_source stop;
    auto already = std::stop_source();
    already.request_stop();
    std::vector<set_status> got;
    spawn(ctx, [&]() -> asio::awaitable<void> {
      // Already stopped, and a deadline already past: told at once.
      got.push_back(
          (co_await custody::async_set(store, 1, already.get_token(), asio::use_awaitable))
              .status());
      got.push_back((co_await custody::async_set_until(store, 1, std::chrono::steady_clock::now(),
                                                       asio::use_awaitable))
                        .status());
      // Nobody takes requests: the deadline ends the send (capacity 0) or the wait for the
      // answer (capacity 1).
      got.push_back((co_await custody::async_set_for(store, 2, 1ms, asio::use_awaitable)).status());
      // The stop token ends a pending set.
      asio::post(ctx, [&] { stop.request_stop(); });
      got.push_back(
          (co_await custody::async_set(store, 3, stop.get_token(), asio::use_awaitable)).status());
    });
    ctx.run();
    EXPECT_EQ(got, (std::vector<set_status>{set_status::stopped, set_status::timeout,
                                            set_status::timeout, set_status::stopped}));
    // The sets that gave up left nothing for the owner.
    auto requests = owner.requests();
    EXPECT_EQ(requests.try_recv().status(), status::would_block);
  }
}

TEST(AsyncSetEnds, NilViewThrowsFromTheInitiatingCall) {
  custody::Setter<int> nil;
  EXPECT_THROW(custody::async_set(nil, 1, asio::use_future), std::logic_error);
}

TEST(AsyncSetEnds, ForwardedRequestsAreAnswered) {
  auto made = custody::make_store<int>(0);
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  owner.forward_requests([](SetRequest<int>&& r) { std::move(r).accept(r.value() + 1); });
  std::future<set_result<int>> result = custody::async_set(store, 41, asio::use_future);
  EXPECT_EQ(result.get().value(), 42);
}

TEST(AsyncSetCancel, CancellationEndsAPendingSetAndNeverAnAnsweredOne) {
  auto made = custody::make_store<int>(0, {0});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  asio::io_context ctx(1);
  asio::cancellation_signal signal;
  std::optional<set_result<int>> got;
  auto handler = asio::bind_cancellation_slot(
      signal.slot(), asio::bind_executor(ctx, [&](std::exception_ptr, set_result<int> r) {
        got.emplace(std::move(r));
      }));
  auto requests = owner.requests();

  // The owner holds the request: the cancellation ends the set, and the answer is discarded.
  custody::async_set(store, 1, handler);
  ctx.poll();
  SetRequest<int> held = requests.recv().value();
  ctx.poll();  // the set goes on to wait for the answer
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), set_status::stopped);
  EXPECT_TRUE(held.abandoned());
  EXPECT_FALSE(std::move(held).accept(1));

  // Answered before the cancellation arrived: the set completes with the answer.
  got.reset();
  ctx.restart();
  custody::async_set(store, 2, handler);
  ctx.poll();
  EXPECT_TRUE(requests.recv().value().accept(2));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), set_status::accepted);
  EXPECT_EQ(got->value(), 2);

  // Cancelled after the owner took the request, before the set went on to wait for the
  // answer: the cancellation is not lost between the two steps.
  got.reset();
  ctx.restart();
  custody::async_set(store, 3, handler);
  ctx.poll();
  held = requests.recv().value();
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), set_status::stopped);
  EXPECT_TRUE(held.abandoned());
}

// The `||` operator cancels the loser: a set the owner holds unanswered loses to a timer and
// gives its request up.
TEST(AsyncSetCancel, OrOperatorCancelsAnUnansweredSet) {
  using namespace asio::experimental::awaitable_operators;
  auto made = custody::make_store<int>(0);
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  asio::io_context ctx(1);
  std::optional<SetRequest<int>> held;
  std::optional<std::size_t> winner;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    held = (co_await custody::async_recv(owner.requests(), asio::use_awaitable)).value();
  });
  spawn(ctx, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(ctx, 1ms);
    auto either = co_await (custody::async_set(store, 1, asio::use_awaitable) ||
                            timer.async_wait(asio::use_awaitable));
    winner = either.index();
  });
  ctx.run();
  EXPECT_EQ(winner, 1u);
  ASSERT_TRUE(held);
  EXPECT_TRUE(held->abandoned());
}

// A cancellation racing the owner's answer: an answer that was delivered (the owner's accept()
// returned true) is the result of the set; one that was not is a set that ended stopped.
// Rounds repeat (a bounded number of times) until both happened, which no single round
// promises.
TEST(AsyncSetCancel, CancellationNeverLosesAnAnswer) {
  auto made = custody::make_store<int>(0, {0});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;
  asio::io_context ctx(1);
  asio::cancellation_signal signal;
  std::atomic<int> delivered{0};
  int accepted = 0, stopped = 0, rounds = 0;
  std::jthread owner_thread([&, requests = owner.requests()]() mutable {
    for (;;) {
      auto r = requests.recv();
      if (!r) return;
      // Cancels the set from its own executor while this thread answers it.
      asio::post(ctx, [&] { signal.emit(asio::cancellation_type::terminal); });
      // Varies how long the answer takes, so that it lands before and after the cancellation.
      std::atomic<int> spin{(delivered.load() * 7919) % 3000};
      while (spin.fetch_sub(1, std::memory_order_relaxed) > 0) {
      }
      if (std::move(*r).accept(1)) ++delivered;
    }
  });
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (; rounds < 20000 && (accepted < 10 || stopped < 10); ++rounds) {
      auto r = co_await custody::async_set(
          store, 1, asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
      EXPECT_TRUE(r.status() == set_status::accepted || r.status() == set_status::stopped);
      ++(r.status() == set_status::accepted ? accepted : stopped);
    }
    owner.close();
  });
  ctx.run();
  owner_thread.join();
  EXPECT_EQ(delivered.load(), accepted);
  EXPECT_EQ(accepted + stopped, rounds);
  EXPECT_GE(accepted, 10);
  EXPECT_GE(stopped, 10);
}

}  // namespace asio_store_set_test
}  // namespace
