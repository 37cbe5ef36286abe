// What a named channel counts about its use (channel_report's last_sender, last_receiver,
// sends, receives, blocked_ms_total) and which channels a blocked task waits on
// (task_report::waits_on).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/inspect.hpp>
#include <custody/select.hpp>
#include <custody/task_group.hpp>

#include "support/inspection.hpp"

namespace {
namespace channel_use_test {

using custody_test::find;
using custody_test::inspect_until;

TEST(ChannelUse, FieldsHaveTheNamesTheMetricsUse) {
  static_assert(std::is_same_v<decltype(custody::channel_report::sends), std::uint64_t>);
  static_assert(std::is_same_v<decltype(custody::channel_report::receives), std::uint64_t>);
  static_assert(std::is_same_v<decltype(custody::channel_report::blocked_ms_total), std::int64_t>);
  static_assert(std::is_same_v<decltype(custody::channel_report::last_sender), std::string>);
  static_assert(std::is_same_v<decltype(custody::channel_report::last_receiver), std::string>);
}

// Each capacity takes other paths: 0 the lone slot and the locked hand-over, 4 the ring.
class ChannelUseByCapacity : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ChannelUseByCapacity, CountsCompletionsAndNamesTheLastTaskAtEachEnd) {
  custody::Channel<int> jobs(GetParam(), "jobs");
  {
    custody::TaskGroup group;
    group.spawn("producer", [jobs]() mutable {
      for (int i = 0; i < 3; ++i) ASSERT_EQ(jobs.send(i), custody::status::ok);
    });
    group.spawn("consumer", [jobs]() mutable {
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(jobs.recv());
    });
    group.wait();
  }
  const custody::inspection done = custody::inspect();
  const custody::channel_report* c = find(done.channels, "jobs");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sends, 3u);
  EXPECT_EQ(c->receives, 3u);
  EXPECT_EQ(c->last_sender, "producer");
  EXPECT_EQ(c->last_receiver, "consumer");
  // Outside a task the end is used by nobody with a name; a buffered try counts as well.
  if (GetParam() > 0) {
    ASSERT_EQ(jobs.try_send(9), custody::status::ok);
    const custody::inspection later = custody::inspect();
    const custody::channel_report* after = find(later.channels, "jobs");
    EXPECT_EQ(after->sends, 4u);
    EXPECT_EQ(after->last_sender, "");
    EXPECT_EQ(after->last_receiver, "consumer");
  }
}

INSTANTIATE_TEST_SUITE_P(Capacities, ChannelUseByCapacity, ::testing::Values(0u, 4u));

// A value whose move may throw goes through the locked ring instead of the lock-free one.
struct throwing_move {
  int value = 0;
  throwing_move() = default;
  explicit throwing_move(int v) : value(v) {}
  throwing_move(throwing_move&& other) noexcept(false) : value(other.value) {}
  throwing_move& operator=(throwing_move&& other) noexcept(false) {
    value = other.value;
    return *this;
  }
};

// A buffered channel reads its counts off its ring's positions: they must hold across many
// laps of the ring, with values left in it, for both kinds of ring.
template <class T>
void counts_across_laps(const std::string& name) {
  custody::Channel<T> ring(3, name);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(ring.send(T(i)), custody::status::ok);
    if (i % 2 == 0) {
      ASSERT_EQ(ring.send(T(-i)), custody::status::ok);
      ASSERT_TRUE(ring.recv());
    }
    ASSERT_TRUE(ring.recv());
  }
  ASSERT_EQ(ring.send(T(1)), custody::status::ok);
  ASSERT_EQ(ring.send(T(2)), custody::status::ok);
  const custody::inspection now = custody::inspect();  // kept: `c` points into it
  const custody::channel_report* c = find(now.channels, name);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sends, 152u);
  EXPECT_EQ(c->receives, 150u);
  EXPECT_EQ(c->length, 2u);
}

TEST(ChannelUse, ABufferedChannelCountsAcrossTheLapsOfItsRing) {
  static_assert(std::is_nothrow_move_constructible_v<int>);
  counts_across_laps<int>("laps-lockfree");
  static_assert(!std::is_nothrow_move_constructible_v<throwing_move>);
  counts_across_laps<throwing_move>("laps-locked");
}

TEST(ChannelUse, SelectCasesCountOnTheirChannel) {
  custody::Channel<int> a(0, "select-a");
  custody::Channel<int> b(0, "select-b");
  custody::TaskGroup group;
  group.spawn("chooser", [a, b]() mutable {
    (void)custody::select(custody::on_recv(a, [](int) {}), custody::on_recv(b, [](int) {}));
  });
  inspect_until([](const custody::inspection& i) {
    const custody::channel_report* c = find(i.channels, "select-b");
    return c && c->receivers.size() == 1;
  });
  ASSERT_EQ(b.send(1), custody::status::ok);
  group.wait();
  const custody::inspection now = custody::inspect();
  EXPECT_EQ(find(now.channels, "select-b")->receives, 1u);
  EXPECT_EQ(find(now.channels, "select-b")->last_receiver, "chooser");
  EXPECT_EQ(find(now.channels, "select-a")->receives, 0u);
}

TEST(ChannelUse, BlockedTimeAddsUpOnceTheWaiterWakes) {
  for (const std::size_t capacity : {0u, 2u}) {
    custody::Channel<int> slow(capacity, "slow");
    custody::TaskGroup group;
    group.spawn("waiter", [slow]() mutable { ASSERT_TRUE(slow.recv()); });
    // Watched until it has slept a while, so the total has something to add.
    const custody::inspection waited = inspect_until([](const custody::inspection& i) {
      const custody::channel_report* c = find(i.channels, "slow");
      return c && c->receivers.size() == 1 && c->receivers[0].blocked_ms >= 5;
    });
    const std::int64_t seen = find(waited.channels, "slow")->receivers[0].blocked_ms;
    EXPECT_EQ(find(waited.channels, "slow")->blocked_ms_total, 0);
    ASSERT_EQ(slow.send(1), custody::status::ok);
    group.wait();
    EXPECT_GE(find(custody::inspect().channels, "slow")->blocked_ms_total, seen)
        << "capacity " << capacity;
  }
}

TEST(ChannelUse, BlockedSelectListsEveryChannelItWaitsOn) {
  custody::Channel<int> in(0, "in");
  custody::Channel<int> out(1, "out");
  ASSERT_EQ(out.try_send(0), custody::status::ok);  // full: the send case waits
  custody::Channel<int> unnamed(0);
  custody::TaskGroup group("waiting");
  group.spawn("both", [in, out, unnamed]() mutable {
    int value = 1;
    (void)custody::select(custody::on_recv(in, [](int) {}), custody::on_send(out, value, [] {}),
                          custody::on_recv(unnamed, [](int) {}));
  });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "waiting");
    return g && g->tasks[0].state == custody::task_state::blocked;
  });
  const custody::task_report& t = find(now.task_groups, "waiting")->tasks[0];
  ASSERT_EQ(t.waits_on.size(), 3u);
  EXPECT_EQ(t.waits_on[0].channel, "in");
  EXPECT_FALSE(t.waits_on[0].sending);
  EXPECT_EQ(t.waits_on[1].channel, "out");
  EXPECT_TRUE(t.waits_on[1].sending);
  EXPECT_EQ(t.waits_on[2].channel, "");
  ASSERT_EQ(in.send(1), custody::status::ok);
  group.wait();
}

TEST(ChannelUse, PlainReceiveWaitsOnItsOneChannel) {
  custody::Channel<int> jobs(0, "plain");
  custody::TaskGroup group("plain-waiters");
  group.spawn("worker", [jobs](std::stop_token stop) mutable { (void)jobs.recv(stop); });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "plain-waiters");
    return g && g->tasks[0].state == custody::task_state::blocked;
  });
  const custody::task_report& t = find(now.task_groups, "plain-waiters")->tasks[0];
  ASSERT_EQ(t.waits_on.size(), 1u);
  EXPECT_EQ(t.waits_on[0].channel, "plain");
  EXPECT_FALSE(t.waits_on[0].sending);
  EXPECT_NE(now.to_json().find("\"waits_on\":[{\"channel\":\"plain\",\"sending\":false}]"),
            std::string::npos)
      << now.to_json();
  group.request_stop();
  group.wait();
}

TEST(ChannelUse, TextAndJsonCarryTheNewFields) {
  custody::Channel<int> c(1, "rendered");
  ASSERT_EQ(c.try_send(1), custody::status::ok);
  const custody::inspection now = custody::inspect();
  EXPECT_NE(now.to_text().find("sends 1, receives 0, blocked 0 ms in total, last sender none"),
            std::string::npos);
  const std::string json = now.to_json();
  EXPECT_NE(json.find("\"last_sender\":\"\",\"last_receiver\":\"\",\"sends\":1,\"receives\":0,"
                      "\"blocked_ms_total\":0"),
            std::string::npos);
}

}  // namespace channel_use_test
}  // namespace
