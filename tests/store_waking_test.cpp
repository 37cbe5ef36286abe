// How an owner waits for full policy::block subscribers: it leaves the update with each of them
// and sleeps once; each subscriber's receiver moves the update into its ring itself as it makes
// room, and the last one wakes the owner.
//
// CUSTODY_COUNT_WAKEUPS (defined before any custody header, as waking_test's build does) makes
// detail/futex.hpp count the threads asleep and the sleeps a wake ended, so the tests know
// when the owner waits and how often it was woken.
//
// This binary also replaces the global operator new with one that counts the calling thread's
// allocations, to show what an update costs the allocator.
#define CUSTODY_COUNT_WAKEUPS 1

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stop_token>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <custody/detail/futex.hpp>
#include <custody/store.hpp>

namespace {
thread_local std::uint64_t allocations = 0;  // by this thread, through operator new
}  // namespace

// The array and nothrow forms call these; aligned allocations are not counted.
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// The replacement operator new above allocates with malloc, so free is the matching release.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;
using custody::make_store;
using custody::policy;
using custody::status;
using counters = custody::detail::wakeup_counters;
using value_t = std::int64_t;

/// Blocks until `n` threads sleep in the kernel.
void await_sleepers(std::uint64_t n) {
  for (std::uint64_t now = counters::sleeping.load(); now < n; now = counters::sleeping.load()) {
    counters::sleeping.wait(now);
  }
}

// Only keeps a broken hand-over from hanging the test: a working one answers at once.
constexpr auto stuck = 10s;

TEST(StoreWaking, AFullSubscriberTakesTheOwnersUpdateInItselfAndTheLastOneWakesTheOwner) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto a = made.store.subscribe(policy::block(1));
  auto b = made.store.subscribe(policy::block(1));
  ASSERT_EQ(owner.publish(1), status::ok);  // both full
  const std::uint64_t asleep = counters::sleeping.load();
  std::atomic<bool> published{false};
  std::jthread publisher([&] {
    EXPECT_EQ(owner.publish_for(2, stuck), status::ok);
    published = true;
  });
  await_sleepers(asleep + 1);  // the owner waits for room
  const std::uint64_t woken = counters::woken.load();

  // The owner sleeps, yet a's next update is there as soon as a has taken the one before.
  EXPECT_EQ(*a.try_recv(), 1);
  auto next = a.try_recv();
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 2);
  EXPECT_FALSE(published.load());  // b is still full

  EXPECT_EQ(*b.try_recv(), 1);
  publisher.join();
  EXPECT_TRUE(published.load());
  EXPECT_EQ(*b.try_recv(), 2);
  // One wake for both subscriptions (none if the owner saw it before sleeping again).
  EXPECT_LE(counters::woken.load() - woken, 1u);
  EXPECT_EQ(a.missed() + b.missed(), 0u);
}

TEST(StoreWaking, AnOwnerThatGivesUpTakesItsUpdateBackOnlyFromTheSubscribersStillFull) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto a = made.store.subscribe(policy::block(1));
  auto b = made.store.subscribe(policy::block(1));
  ASSERT_EQ(owner.publish(1), status::ok);  // both full
  const std::uint64_t asleep = counters::sleeping.load();
  std::stop_source stop;
  std::jthread publisher([&] { EXPECT_EQ(owner.publish(2, stop.get_token()), status::stopped); });
  await_sleepers(asleep + 1);   // the owner waits for room
  EXPECT_EQ(*a.try_recv(), 1);  // a takes 2 in
  stop.request_stop();
  publisher.join();

  EXPECT_EQ(*a.try_recv(), 2);
  EXPECT_EQ(*b.try_recv(), 1);
  EXPECT_EQ(b.try_recv().status(), status::would_block);  // 2 was taken back from b
  ASSERT_EQ(owner.publish(3), status::ok);
  EXPECT_EQ(*a.try_recv(), 3);
  EXPECT_EQ(a.missed(), 0u);
  EXPECT_EQ(*b.try_recv(), 3);
  EXPECT_EQ(b.missed(), 1u);  // 2
}

TEST(StoreWaking, AnUnsubscribingSubscriberNoLongerHoldsTheOwner) {
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto a = made.store.subscribe(policy::block(1));
  auto b = made.store.subscribe(policy::block(1));
  ASSERT_EQ(owner.publish(1), status::ok);  // both full
  const std::uint64_t asleep = counters::sleeping.load();
  std::jthread publisher([&] { EXPECT_EQ(owner.publish_for(2, stuck), status::ok); });
  await_sleepers(asleep + 1);  // the owner waits for room
  EXPECT_EQ(*a.try_recv(), 1);
  b = custody::Subscription<value_t>();  // b goes away: the owner has nobody left to wait for
  publisher.join();
  EXPECT_EQ(*a.try_recv(), 2);
  EXPECT_EQ(owner.subscriber_count(), 1u);
}

// A small trivially copyable value is held in the rings by value: once a subscription's ring
// has grown, publishing and receiving allocate nothing. Any other value is copied once per
// update into memory the rings share.
TEST(StoreWaking, ASmallTriviallyCopyableUpdateCostsNoAllocation) {
  static_assert(custody::detail::held_inline<value_t>);
  static_assert(!custody::detail::held_inline<std::string>);
  constexpr value_t capacity = 8;
  auto made = make_store<value_t>(0);
  auto& owner = made.owner;
  auto a = made.store.subscribe(policy::block(capacity));
  auto b = made.store.subscribe(policy::block(capacity));
  value_t next = 1;
  const auto publish_and_drain = [&] {
    for (value_t k = 0; k < capacity; ++k) ASSERT_EQ(owner.publish(next + k), status::ok);
    for (value_t k = 0; k < capacity; ++k) {
      EXPECT_EQ(*a.try_recv(), next + k);
      EXPECT_EQ(*b.try_recv(), next + k);
    }
    next += capacity;
  };
  publish_and_drain();  // the rings grow to their capacity
  const std::uint64_t before = allocations;
  publish_and_drain();
  EXPECT_EQ(allocations - before, 0u);

  // The same steps with a string allocate for every update.
  auto strings = make_store<std::string>("");
  auto s = strings.store.subscribe(policy::block(capacity));
  ASSERT_EQ(strings.owner.publish("a"), status::ok);
  EXPECT_EQ(*s.try_recv(), "a");
  const std::uint64_t before_strings = allocations;
  ASSERT_EQ(strings.owner.publish("b"), status::ok);
  EXPECT_EQ(*s.try_recv(), "b");
  EXPECT_GE(allocations - before_strings, 1u);
}

}  // namespace
