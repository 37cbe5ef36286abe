// A store subscription received asynchronously (custody/asio/store.hpp), for every policy,
// with owners that are threads or coroutines.

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

using custody::policy;
using custody::received;
using custody::status;
using custody::Subscription;

namespace {
namespace asio_store_subscription_test {

template <class Awaitable>
void spawn(asio::io_context& ctx, Awaitable coroutine) {
  asio::co_spawn(ctx, std::move(coroutine), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

template <class Handle>
concept can_async_recv = requires(const Handle& h) {
  custody::async_recv(h, asio::use_awaitable);
};
static_assert(can_async_recv<Subscription<int>>);
static_assert(can_async_recv<custody::Receiver<custody::SetRequest<int>>>);

class AsyncSubscription : public testing::TestWithParam<policy> {};

TEST_P(AsyncSubscription, APendingReceiveGetsTheNextPublish) {
  auto [owner, store] = custody::make_store<int>(7);
  Subscription<int> sub = store.subscribe(GetParam().with_current());
  asio::io_context ctx(1);
  std::vector<int> got;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      received<int> r = co_await custody::async_recv(sub, asio::use_awaitable);
      EXPECT_EQ(r.status(), status::ok);
      got.push_back(*r);
    }
  });
  ctx.poll();
  ASSERT_EQ(got, std::vector<int>{7});  // the current value, and then waiting
  ASSERT_EQ(owner.publish(8), status::ok);
  ctx.run();
  EXPECT_EQ(got, (std::vector<int>{7, 8}));
  EXPECT_EQ(sub.missed(), 0u);
}

TEST_P(AsyncSubscription, ClosingTheStoreCompletesAPendingReceiveAfterWhatItHolds) {
  auto [owner, store] = custody::make_store<int>(0);
  Subscription<int> sub = store.subscribe(GetParam());
  asio::io_context ctx(1);
  std::vector<status> got;
  spawn(ctx, [&]() -> asio::awaitable<void> {
    for (;;) {
      received<int> r = co_await custody::async_recv(sub, asio::use_awaitable);
      got.push_back(r.status());
      if (!r) co_return;
    }
  });
  ctx.poll();
  ASSERT_TRUE(got.empty());
  owner.close();
  ctx.run();
  EXPECT_EQ(got, std::vector<status>{status::closed});

  // What the subscription holds comes first.
  auto [owner2, store2] = custody::make_store<int>(0);
  Subscription<int> held = store2.subscribe(GetParam());
  ASSERT_EQ(owner2.publish(1), status::ok);
  owner2.close();
  ctx.restart();
  got.clear();
  spawn(ctx, [&]() -> asio::awaitable<void> {
    received<int> first = co_await custody::async_recv(held, asio::use_awaitable);
    EXPECT_EQ(*first, 1);
    got.push_back(first.status());
    got.push_back((co_await custody::async_recv(held, asio::use_awaitable)).status());
  });
  ctx.run();
  EXPECT_EQ(got, (std::vector<status>{status::ok, status::closed}));
}

// A pending receive holds its subscription; its stop token (or an Asio cancellation) ends it at
// once, and dropping the subscription then unsubscribes.
TEST_P(AsyncSubscription, AStoppedReceiveEndsAtOnceAndLetsTheSubscriptionGo) {
  auto [owner, store] = custody::make_store<int>(0);
  asio::io_context ctx(1);
  std::stop_source stop;
  std::optional<status> got;
  {
    Subscription<int> sub = store.subscribe(GetParam());
    spawn(ctx, [&, sub]() -> asio::awaitable<void> {
      got = (co_await custody::async_recv(sub, stop.get_token(), asio::use_awaitable)).status();
    });
  }
  ctx.poll();
  EXPECT_EQ(owner.subscriber_count(), 1u);
  stop.request_stop();
  ctx.run();
  EXPECT_EQ(got, status::stopped);
  EXPECT_EQ(owner.subscriber_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, AsyncSubscription,
                         testing::Values(policy::latest(), policy::buffer(4), policy::block(1),
                                         policy::block(4)));

// A policy::block subscriber coroutine and a publisher thread that it holds back: every value
// arrives once, in order, none missed. Runs repeat (a bounded number of times) until the
// publisher was found ahead of the subscriber (a value waiting when it came to receive), which
// is when the publisher has to wait for room.
TEST(AsyncSubscriptionBlock, CoroutineSubscriberHoldsBackAPublisherThreadAndLosesNothing) {
  constexpr std::int64_t values = 2000;
  bool publisher_was_ahead = false;
  for (int run = 0; run < 50 && !publisher_was_ahead; ++run) {
    auto [owner, store] = custody::make_store<std::int64_t>(0);
    Subscription<std::int64_t> sub = store.subscribe(policy::block(1));
    asio::io_context ctx(1);
    std::int64_t count = 0, sum = 0, last = 0, ahead = 0;
    spawn(ctx, [&]() -> asio::awaitable<void> {
      for (;;) {
        if (sub.size() > 0) ++ahead;
        received<std::int64_t> r = co_await custody::async_recv(sub, asio::use_awaitable);
        if (!r) co_return;
        EXPECT_GT(*r, last);
        last = *r;
        ++count;
        sum += *r;
      }
    });
    std::jthread publisher([&owner = owner] {
      for (std::int64_t v = 1; v <= values; ++v) ASSERT_EQ(owner.publish(v), status::ok);
      owner.close();
    });
    ctx.run();
    ASSERT_EQ(count, values);
    ASSERT_EQ(sum, values * (values + 1) / 2);
    ASSERT_EQ(sub.missed(), 0u);
    publisher_was_ahead = ahead > 0;
  }
  EXPECT_TRUE(publisher_was_ahead);
}

}  // namespace asio_store_subscription_test
}  // namespace
