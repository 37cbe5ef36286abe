// inspect() while 8 threads send, receive, subscribe, set and close at random: every snapshot is
// taken while the named objects change under it, and the test counts the snapshots that saw
// blocked waiters to show the overlap happened. Meant for the tsan and asan presets as well.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stop_token>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/inspect.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>

namespace {
namespace inspect_race_test {

constexpr int kWorkers = 8;
constexpr int kRounds = 30;
constexpr std::uint64_t kSnapshotsPerRound = 20;

struct snapshot_counts {
  std::atomic<std::uint64_t> taken{0};
  std::atomic<std::uint64_t> saw_blocked_waiter{0};
  std::atomic<std::uint64_t> saw_blocked_task{0};
  std::atomic<std::uint64_t> saw_subscriber{0};
};

void take_snapshots(std::stop_token stop, snapshot_counts& counts) {
  while (!stop.stop_requested()) {
    const custody::inspection now = custody::inspect();
    bool waiter = false, task = false, subscriber = !now.subscribers.empty();
    for (const custody::channel_report& c : now.channels) {
      waiter = waiter || !c.senders.empty() || !c.receivers.empty();
    }
    for (const custody::task_group_report& g : now.task_groups) {
      for (const custody::task_report& t : g.tasks)
        task = task || t.state == custody::task_state::blocked;
    }
    // The renderings read every field: a torn or destroyed object would show here too.
    (void)now.to_json();
    (void)now.to_text();
    if (waiter) counts.saw_blocked_waiter.fetch_add(1);
    if (task) counts.saw_blocked_task.fetch_add(1);
    if (subscriber) counts.saw_subscriber.fetch_add(1);
    counts.taken.fetch_add(1);
    counts.taken.notify_all();
  }
}

// One worker's random operations until it is stopped or finds the channel closed.
void work(int id, std::uint64_t seed, custody::Channel<int> channel, custody::Store<int> store,
          std::stop_token stop) {
  std::mt19937_64 random(seed);
  for (int v = 0;; ++v) {
    if (stop.stop_requested()) return;
    const auto dice = random() % 100;
    if (dice == 0) {
      channel.close();
      return;
    }
    if (dice < 40) {
      if (channel.send(v, stop) != custody::status::ok) return;
    } else if (dice < 80) {
      if (!channel.recv(stop)) return;
    } else if (dice < 90) {
      auto sub = store.subscribe(custody::policy::latest(), "sub-" + std::to_string(id));
      (void)sub.try_recv();
    } else {
      (void)store.set(v, stop);
    }
  }
}

TEST(InspectRace, SnapshotsWhileEightThreadsSendReceiveSubscribeAndClose) {
  snapshot_counts counts;
  std::jthread inspector([&](std::stop_token stop) { take_snapshots(stop, counts); });
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (int round = 0; round < kRounds; ++round) {
    custody::Channel<int> channel(static_cast<std::size_t>(round % 3), "race");
    auto [owner, store] = custody::make_store<int>(0, {.request_capacity = 1, .name = "race"});
    custody::TaskGroup group("race");
    group.spawn("owner", [&owner = owner](std::stop_token stop) {
      while (auto request = owner.requests().recv(stop)) (void)owner.accept(std::move(*request));
    });
    for (int id = 0; id < kWorkers; ++id) {
      group.spawn("worker-" + std::to_string(id), [id, seed, round, channel,
                                                   store = store](std::stop_token stop) {
        work(id, seed + static_cast<std::uint64_t>(round * kWorkers + id), channel, store, stop);
      });
    }
    // The round lasts while the inspector takes its snapshots.
    const std::uint64_t until = counts.taken.load() + kSnapshotsPerRound;
    for (std::uint64_t now = counts.taken.load(); now < until; now = counts.taken.load()) {
      counts.taken.wait(now);
    }
    group.request_stop();
    channel.close();
    group.wait();
  }
  inspector.request_stop();
  inspector.join();
  EXPECT_GE(counts.taken.load(), kRounds * kSnapshotsPerRound);
  // The overlap happened: snapshots met blocked cases and blocked tasks.
  EXPECT_GT(counts.saw_blocked_waiter.load(), 0u);
  EXPECT_GT(counts.saw_blocked_task.load(), 0u);
  RecordProperty("snapshots", std::to_string(counts.taken.load()));
  std::printf(
      "snapshots %llu, with blocked waiters %llu, with blocked tasks %llu, with subscribers %llu\n",
      static_cast<unsigned long long>(counts.taken.load()),
      static_cast<unsigned long long>(counts.saw_blocked_waiter.load()),
      static_cast<unsigned long long>(counts.saw_blocked_task.load()),
      static_cast<unsigned long long>(counts.saw_subscriber.load()));
}

}  // namespace inspect_race_test
}  // namespace
