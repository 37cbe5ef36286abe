// A buffered channel tells one waiter that a value (or room) appeared. The first waiter in line
// may already be settled by something else (another case of its select, its stop, its deadline)
// and not yet have left the line: the notification must then go on to the next waiter, or that
// one sleeps beside a value it could take.
//
// The tests hold the first waiter in exactly that state: a peer of its other case, an
// unbuffered channel, has claimed it and is moving a value whose move constructor waits for
// the test. The waiter can neither be notified nor leave the line until the move ends.
//
// CUSTODY_COUNT_WAKEUPS (defined before any custody header, as waking_test's build does) makes
// detail/futex.hpp count the threads asleep, so the test knows when each waiter is in line.
#define CUSTODY_COUNT_WAKEUPS 1

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/detail/futex.hpp>
#include <custody/select.hpp>

namespace {

using namespace std::chrono_literals;
using custody::Channel;
using custody::status;
using counters = custody::detail::wakeup_counters;

/// Blocks until `n` threads sleep in the kernel: each has registered everywhere it waits.
void await_sleepers(std::uint64_t n) {
  for (std::uint64_t now = counters::sleeping.load(); now < n; now = counters::sleeping.load()) {
    counters::sleeping.wait(now);
  }
}

/// Holds the thread that moves a `held` once it is armed, until released.
struct gate {
  std::atomic<bool> armed{false};
  std::latch moving{1};
  std::latch release{1};
};

/// A value whose first move after arming waits at its gate. Its move may throw (as far as the
/// type says), so an unbuffered channel hands it over through the waiter's slot, not the
/// channel's lone slot.
struct held {
  gate* g = nullptr;
  explicit held(gate* to) noexcept : g(to) {}
  held(held&& other) : g(other.g) {  // NOLINT(performance-noexcept-move-constructor)
    if (g->armed.exchange(false)) {
      g->moving.count_down();
      g->release.wait();
    }
  }
  held& operator=(held&&) = default;
};

// Only keeps a lost notification from hanging the test: a working channel answers at once.
constexpr auto lost = 10s;

TEST(Notify, AValueReachesTheNextReceiverWhenTheFirstIsSettledElsewhere) {
  Channel<int> values(1);
  Channel<held> other(0);
  gate g;
  const std::uint64_t asleep = counters::sleeping.load();

  bool first_took_other = false;
  std::jthread first([&] {
    custody::select(custody::on_recv(values, [](int) {}),
                    custody::on_recv(other, [&](held&&) { first_took_other = true; }));
  });
  await_sleepers(asleep + 1);  // first in the line of values' receivers
  status second_got = status::closed;
  int second_value = 0;
  std::jthread second([&] {
    auto r = values.recv_for(lost);
    second_got = r.status();
    if (r) second_value = *r;
  });
  await_sleepers(asleep + 2);  // second in line

  g.armed = true;
  std::jthread peer([&] { EXPECT_EQ(other.send(held(&g)), status::ok); });
  g.moving.wait();  // `first` is claimed by `peer` and still in values' line
  ASSERT_EQ(values.send(7), status::ok);
  g.release.count_down();

  first.join();
  peer.join();
  second.join();
  EXPECT_TRUE(first_took_other);
  EXPECT_EQ(second_got, status::ok);
  EXPECT_EQ(second_value, 7);
}

TEST(Notify, RoomReachesTheNextSenderWhenTheFirstIsSettledElsewhere) {
  Channel<int> values(1);
  ASSERT_EQ(values.send(1), status::ok);  // full
  Channel<held> other(0);
  gate g;
  const std::uint64_t asleep = counters::sleeping.load();

  bool first_took_other = false;
  int two = 2;
  std::jthread first([&] {
    custody::select(custody::on_send(custody::Sender<int>(values), two, [] {}),
                    custody::on_recv(other, [&](held&&) { first_took_other = true; }));
  });
  await_sleepers(asleep + 1);  // first in the line of values' senders
  status second_sent = status::closed;
  std::jthread second([&] { second_sent = values.send_for(3, lost); });
  await_sleepers(asleep + 2);  // second in line

  g.armed = true;
  std::jthread peer([&] { EXPECT_EQ(other.send(held(&g)), status::ok); });
  g.moving.wait();  // `first` is claimed by `peer` and still in values' line
  auto one = values.recv();
  ASSERT_TRUE(one);
  EXPECT_EQ(*one, 1);
  g.release.count_down();

  first.join();
  peer.join();
  second.join();
  EXPECT_TRUE(first_took_other);
  EXPECT_EQ(second_sent, status::ok);
  auto three = values.try_recv();
  ASSERT_TRUE(three);
  EXPECT_EQ(*three, 3);
}

}  // namespace
