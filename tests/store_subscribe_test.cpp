// subscribe(): per-subscriber policies, lag counts, no missed update, unsubscribe, close.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>
#include <custody/store.hpp>

namespace {
namespace store_subscribe_test {

using namespace std::chrono_literals;

using custody::make_store;
using custody::policy;
using custody::status;
using custody::Subscription;

using value_t = std::int64_t;

// Receives until closed; returns everything received.
std::vector<value_t> drain(Subscription<value_t>& sub) {
  std::vector<value_t> got;
  for (value_t v : sub) got.push_back(v);
  return got;
}

TEST(StoreSubscribe, LatestKeepsOnlyTheNewestAndCountsTheRest) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::latest());
  for (value_t i = 1; i <= 100; ++i) ASSERT_EQ(owner.publish(i), status::ok);
  auto r = sub.try_recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 100);
  EXPECT_EQ(sub.take_missed(), 99u);
  EXPECT_EQ(sub.missed(), 0u);
  EXPECT_EQ(sub.try_recv().status(), status::would_block);
}

TEST(StoreSubscribe, BufferLagCountsAreExact) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::buffer(4));
  for (value_t i = 1; i <= 10; ++i) owner.publish(i);
  std::vector<std::pair<value_t, std::uint64_t>> got;  // value, missed right before it
  for (int k = 0; k < 4; ++k) {
    auto r = sub.try_recv();
    ASSERT_TRUE(r);
    got.emplace_back(*r, sub.take_missed());
  }
  EXPECT_EQ(got, (std::vector<std::pair<value_t, std::uint64_t>>{{7, 6}, {8, 0}, {9, 0}, {10, 0}}));
  // Partly read, then overrun again: the loss is charged to the value after the gap.
  for (value_t i = 11; i <= 13; ++i) owner.publish(i);
  ASSERT_EQ(*sub.try_recv(), 11);
  EXPECT_EQ(sub.take_missed(), 0u);
  for (value_t i = 14; i <= 20; ++i) owner.publish(i);
  ASSERT_EQ(*sub.try_recv(), 17);
  EXPECT_EQ(sub.take_missed(), 5u);  // 12..16
}

TEST(StoreSubscribe, BufferLagCountsAreExactWhileRacingTheOwner) {
  constexpr value_t n = 200'000;
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::buffer(8));
  std::jthread publisher([&owner] {
    for (value_t i = 1; i <= n; ++i) owner.publish(i);
    owner.close();
  });
  value_t previous = 0;
  std::uint64_t received = 0, missed_total = 0;
  bool exact = true;
  for (value_t v : sub) {
    const std::uint64_t missed = sub.take_missed();
    exact = exact && static_cast<std::uint64_t>(v - previous - 1) == missed;
    previous = v;
    ++received;
    missed_total += missed;
  }
  EXPECT_TRUE(exact);
  EXPECT_EQ(previous, n);
  EXPECT_EQ(received + missed_total, static_cast<std::uint64_t>(n));
}

TEST(StoreSubscribe, BlockLosesNothing) {
  constexpr value_t n = 100'000;
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::vector<Subscription<value_t>> subs;
  subs.push_back(store.subscribe(policy::block()));
  subs.push_back(store.subscribe(policy::block(1)));  // lockstep
  subs.push_back(store.subscribe(policy::block(3)));  // grows its storage to a non-power of 2
  std::vector<std::vector<value_t>> got(subs.size());
  {
    std::vector<std::jthread> readers;
    for (std::size_t k = 0; k < subs.size(); ++k) {
      readers.emplace_back([&, k] { got[k] = drain(subs[k]); });
    }
    for (value_t i = 1; i <= n; ++i) ASSERT_EQ(owner.publish(i), status::ok);
    owner.close();
  }
  for (const auto& g : got) {
    ASSERT_EQ(g.size(), static_cast<std::size_t>(n));
    for (value_t i = 0; i < n; ++i) ASSERT_EQ(g[static_cast<std::size_t>(i)], i + 1);
  }
  EXPECT_EQ(subs[0].missed(), 0u);
}

// One thread, so every step is known: the ring grows (1, 4, then 6 slots), fills, is partly
// read, and then wraps around its end as it refills. Values come out in order, none missed,
// held inline (an int64) as well as through a shared copy (a string).
template <class T, class Make>
void expect_order_through_wrap_around(Make make) {
  auto made = make_store<T>(make(0));
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::block(6));
  value_t next_in = 1, next_out = 1;
  const auto publish = [&](int n) {
    for (int k = 0; k < n; ++k) ASSERT_EQ(owner.publish(make(next_in++)), status::ok);
  };
  const auto receive = [&](int n) {
    for (int k = 0; k < n; ++k) {
      auto r = sub.try_recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(*r, make(next_out++));
    }
  };
  publish(6);  // full: every slot it may have
  EXPECT_EQ(sub.size(), 6u);
  receive(4);
  publish(4);  // slots 0..3 again, after 4 and 5
  EXPECT_EQ(sub.size(), 6u);
  receive(5);
  publish(3);
  receive(4);
  EXPECT_EQ(sub.try_recv().status(), status::would_block);
  EXPECT_EQ(sub.missed(), 0u);
  EXPECT_EQ(next_out, 14);
}

TEST(StoreSubscribe, ALosslessRingKeepsOrderAsItWrapsAround) {
  expect_order_through_wrap_around<value_t>([](value_t i) { return i; });
  expect_order_through_wrap_around<std::string>(
      [](value_t i) { return "value number " + std::to_string(i) + ", not a short string"; });
}

TEST(StoreSubscribe, CurrentValueFirst) {
  auto made = make_store<value_t>(5);
  auto& owner = made.owner;
  auto& store = made.store;
  auto with = store.subscribe(policy::block(4).with_current());
  EXPECT_EQ(with.policy(), policy::block(4).with_current());
  auto without = store.subscribe(policy::block(4));
  owner.publish(6);
  EXPECT_EQ(*with.try_recv(), 5);
  EXPECT_EQ(*with.try_recv(), 6);
  EXPECT_EQ(*without.try_recv(), 6);
  EXPECT_EQ(without.try_recv().status(), status::would_block);
}

// Subscribers race an owner that publishes 1..n. Whatever a subscriber read with get() after
// subscribe() returned was published before that get; every later value was published after
// subscribe() returned, so a lossless subscriber must receive all of them, in order.
TEST(StoreSubscribe, NoUpdateAfterSubscribeReturnsIsMissed) {
  constexpr value_t n = 20'000;
  constexpr int subscribers = 4;
  for (int round = 0; round < 5; ++round) {
    auto made = make_store<value_t>(0);
    auto& owner = made.owner;
    auto& store = made.store;
    std::latch ready(subscribers + 1);
    std::atomic<int> failures{0};
    std::vector<std::jthread> threads;
    for (int k = 0; k < subscribers; ++k) {
      threads.emplace_back([&, k, subscriber = custody::GetSubscriber<value_t>(store)] {
        ready.arrive_and_wait();
        // Spread the subscribe calls over the publishing run.
        for (int spin = 0; spin < k * 2000; ++spin) std::this_thread::yield();
        const bool current = k % 2 == 0;
        auto sub =
            subscriber.subscribe(current ? policy::block(64).with_current() : policy::block(64));
        const value_t seen = subscriber.get();
        std::vector<value_t> got = drain(sub);
        // Contiguous and increasing from its first value...
        for (std::size_t i = 1; i < got.size(); ++i) {
          if (got[i] != got[i - 1] + 1) ++failures;
        }
        // ...which is no later than the first value published after subscribe() returned,
        // and no earlier than the value current at subscribe (when asked for).
        if (got.empty()) {
          if (seen != n) ++failures;
        } else {
          if (got.front() > seen + 1) ++failures;
          if (got.back() != n) ++failures;
        }
      });
    }
    ready.arrive_and_wait();
    for (value_t i = 1; i <= n; ++i) owner.publish(i);
    owner.close();
    threads.clear();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
  }
}

TEST(StoreSubscribe, ASlowSubscriberDoesNotDelayALatestOne) {
  constexpr value_t n = 10'000;
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto never_read_latest = store.subscribe(policy::latest());
  auto never_read_buffer = store.subscribe(policy::buffer(16));
  auto active = store.subscribe(policy::latest());
  std::jthread reader([&] {
    value_t last = 0;
    for (value_t v : active) {
      EXPECT_GT(v, last);
      last = v;
    }
    EXPECT_EQ(last, n);
  });
  // Neither idle subscriber can hold the owner back: every publish returns at once.
  for (value_t i = 1; i <= n; ++i) ASSERT_EQ(owner.publish(i), status::ok);
  owner.close();
  reader.join();
  EXPECT_EQ(*never_read_latest.try_recv(), n);
  EXPECT_EQ(never_read_latest.take_missed(), static_cast<std::uint64_t>(n - 1));
}

TEST(StoreSubscribe, AFullBlockSubscriberHoldsTheOwnerUntilStopped) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto stuck = store.subscribe(policy::block(1));
  auto fine = store.subscribe(policy::latest());
  std::stop_source stop;
  owner.set_stop_token(stop.get_token());
  ASSERT_EQ(owner.publish(1), status::ok);  // fills the block subscriber's slot
  std::jthread publisher([&owner] { EXPECT_EQ(owner.publish(2), status::stopped); });
  // The value is stored, and the subscribers with room got it, before the owner waits.
  auto r = fine.recv();
  while (r && *r != 2) r = fine.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(store.get(), 2);
  stop.request_stop();
  publisher.join();
  EXPECT_EQ(*stuck.try_recv(), 1);
  EXPECT_EQ(stuck.try_recv().status(), status::would_block);  // it missed 2: shutdown
  // publish with a token or a deadline of its own.
  EXPECT_EQ(owner.publish(3, std::stop_token{}), status::ok);  // room again
  EXPECT_EQ(owner.publish_for(4, 10ms), status::timeout);
}

// A publish that gives up on a full block subscriber (deadline or stop) stores the value;
// the subscriber learns what it missed from missed(), as a lossy one does.
TEST(StoreSubscribe, AFullBlockSubscriberCountsWhatAPublishThatGaveUpMissed) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto stuck = made.store.subscribe(policy::block(1));
  ASSERT_EQ(owner.publish(1), status::ok);
  EXPECT_EQ(owner.publish_for(2, 1ms), status::timeout);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(owner.publish(3, stop.get_token()), status::stopped);
  EXPECT_EQ(made.store.get(), 3);
  EXPECT_EQ(*stuck.try_recv(), 1);
  EXPECT_EQ(stuck.missed(), 0u);
  ASSERT_EQ(owner.publish(4), status::ok);
  EXPECT_EQ(*stuck.try_recv(), 4);
  EXPECT_EQ(stuck.missed(), 2u);  // 2 and 3
}

TEST(StoreSubscribe, AnOwnerTaskWithAStuckBlockSubscriberStillShutsDown) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto stuck = store.subscribe(policy::block(2));  // never read
  std::atomic<value_t> published{0};
  {
    std::jthread task([&owner = owner, &published](std::stop_token st) {
      owner.set_stop_token(st);
      for (value_t i = 1; !st.stop_requested(); ++i) {
        if (owner.update([i](value_t& v) { v = i; }) == status::ok) published = i;
      }
    });
    while (published.load() < 2) std::this_thread::yield();
    // The task is now stuck in update(), waiting for room; its jthread destructor requests
    // stop, which must get it out.
  }
  EXPECT_EQ(store.get(), 3);  // the third value was stored; the subscriber missed it
  EXPECT_EQ(*stuck.try_recv(), 1);
  EXPECT_EQ(*stuck.try_recv(), 2);
}

TEST(StoreSubscribe, AJointChangeWaitingForAStuckSubscriberStops) {
  auto a_made = make_store<value_t>(0);
  auto& a_owner = a_made.owner;
  auto& a = a_made.store;
  auto b_made = make_store<value_t>(0);
  auto& b_owner = b_made.owner;
  auto& b = b_made.store;
  auto stuck = b.subscribe(policy::block(1));
  auto fine = a.subscribe(policy::block(8));
  std::stop_source stop;
  auto both = custody::joint(a_owner, b_owner);
  both.set_stop_token(stop.get_token());
  ASSERT_EQ(both.publish(1, 1), status::ok);
  std::jthread publisher([&] { EXPECT_EQ(both.publish(2, 2), status::stopped); });
  // a's subscriber got its part before the owner started waiting for b's.
  EXPECT_EQ(*fine.recv(), 1);
  EXPECT_EQ(*fine.recv(), 2);
  stop.request_stop();
  publisher.join();
  EXPECT_EQ(custody::snapshot(a, b), std::make_tuple(value_t{2}, value_t{2}));
}

TEST(StoreSubscribe, DroppingTheReceiverUnsubscribesAndReleasesABlockedOwner) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::block(1));
  custody::Receiver<value_t> copy = sub;  // a copy keeps the subscription alive
  EXPECT_EQ(owner.subscriber_count(), 1u);
  ASSERT_EQ(owner.publish(1), status::ok);
  std::latch publishing(1);
  std::jthread publisher([&] {
    publishing.count_down();
    EXPECT_EQ(owner.publish(2), status::ok);  // waits for room, until the subscriber goes
    EXPECT_EQ(owner.publish(3), status::ok);
  });
  publishing.wait();
  sub = Subscription<value_t>();
  copy = custody::Receiver<value_t>();
  publisher.join();
  EXPECT_EQ(owner.subscriber_count(), 0u);
}

TEST(StoreSubscribe, WithoutSubscribersPublishingNeverBlocks) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  { auto gone = store.subscribe(policy::block(1)); }
  for (value_t i = 0; i < 100'000; ++i) ASSERT_EQ(owner.publish(i), status::ok);
  EXPECT_EQ(owner.subscriber_count(), 0u);
}

TEST(StoreSubscribe, OwnerGoneSubscribersDrainThenSeeClosed) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::buffer(8));
  for (value_t i = 1; i <= 3; ++i) owner.publish(i);
  std::jthread waiting([&] {
    auto late = store.subscribe(policy::latest());
    EXPECT_EQ(late.recv().status(), status::closed);  // woken by the close
  });
  while (owner.subscriber_count() < 2) std::this_thread::yield();
  owner.close();
  waiting.join();
  EXPECT_EQ(drain(sub), (std::vector<value_t>{1, 2, 3}));
  EXPECT_EQ(sub.recv().status(), status::closed);
  EXPECT_TRUE(sub.is_closed());
  // Subscribing after the owner is gone: the last value if asked for, then closed.
  auto after = store.subscribe(policy::latest().with_current());
  EXPECT_EQ(*after.try_recv(), 3);
  EXPECT_EQ(after.try_recv().status(), status::closed);
  auto empty = store.subscribe(policy::latest());
  EXPECT_EQ(empty.recv().status(), status::closed);
}

TEST(StoreSubscribe, SubscriptionsWorkInSelect) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  auto a = store.subscribe(policy::latest());
  auto b = store.subscribe(policy::buffer(4));
  std::jthread publisher([&owner] {
    for (value_t i = 1; i <= 1000; ++i) owner.publish(i);
    owner.close();
  });
  bool a_open = true, b_open = true;
  value_t last_a = 0, last_b = 0;
  while (a_open || b_open) {
    custody::select(custody::on_recv(
                        a, [&](value_t v) { last_a = v; }, [&] { a_open = false; })
                        .when(a_open),
                    custody::on_recv(
                        b, [&](value_t v) { last_b = v; }, [&] { b_open = false; })
                        .when(b_open));
  }
  EXPECT_EQ(last_a, 1000);
  EXPECT_EQ(last_b, 1000);
}

TEST(StoreSubscribe, ManySubscribersComeAndGoWhileTheOwnerPublishes) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::atomic<bool> done{false};
  std::jthread publisher([&] {
    for (value_t i = 1; !done.load(); ++i) owner.publish(i);
  });
  std::vector<std::jthread> churn;
  for (int t = 0; t < 2; ++t) {
    churn.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto sub = store.subscribe(i % 3 == 0   ? policy::block(2)
                                   : i % 3 == 1 ? policy::latest()
                                                : policy::buffer(4).with_current());
        if ((i + t) % 2 == 0) (void)sub.recv();
      }
    });
  }
  churn.clear();
  done = true;
  publisher.join();
  EXPECT_EQ(owner.subscriber_count(), 0u);
}

}  // namespace store_subscribe_test
}  // namespace
