// Random stops: a store pipeline (an owner task answering set requests and publishing on a
// ticker, setters, a reader, subscribers of every policy, a fanout into channels and their
// consumers), all in one custody::TaskGroup, stopped at a random moment, over and over in one
// process. Every time:
// - every task has joined within 100 ms of the stop request;
// - every set() that was called has returned, with an answer that fits the moment;
// - (under the asan preset) LeakSanitizer finds nothing at exit.
//
// Nothing in the pipeline waits for a timer once stopped, so a lost wake-up shows as a join
// that takes far longer than any scheduling delay. On a machine shared with other work a thread
// may wait for a core for tens of milliseconds, though: so a join over 100 ms fails the test
// only with CUSTODY_STRESS_STRICT=1 (for idle machines); otherwise at most 1% of the stops may
// exceed 100 ms and none may exceed 1 s. The count of stops over 100 ms is printed either way.
//
//   CUSTODY_STRESS_STOPS=<n>   stops to run (default 1000)
//   CUSTODY_STRESS_STRICT=1    every stop must join within 100 ms

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

#include "stress_support.hpp"

using namespace std::chrono_literals;
using custody::policy;
using custody::set_status;
using custody::status;
using stress::rng;

namespace {

struct counts {
  std::atomic<std::uint64_t> sets_called{0}, sets_returned{0}, sets_bad{0};
  std::atomic<std::uint64_t> published{0}, received{0}, piped{0};
};

// One pipeline, stopped after `stop_after`. Returns how long the tasks took to join after the
// stop request.
std::chrono::microseconds run_once(rng& r, std::chrono::microseconds stop_after, counts& c) {
  auto made = custody::make_store<std::int64_t>(
      0, custody::store_options{r.pick(std::initializer_list<std::size_t>{0, 1, 16})});
  custody::Store<std::int64_t> store = made.store;
  custody::TaskGroup group;

  // The owner: answers requests, publishes on every tick, ends on stop (closing the store).
  group.spawn("owner", [owner = std::move(made.owner), &c,
                        tick = std::chrono::microseconds(r.between(20, 500))](
                           std::stop_token stop) mutable {
    owner.set_stop_token(stop);
    auto requests = owner.requests();
    custody::Ticker ticker(tick);
    auto ticks = ticker.receiver();
    std::int64_t n = 0;
    for (bool running = true; running;) {
      custody::select(custody::on_recv(requests,
                                       [&](custody::SetRequest<std::int64_t> q) {
                                         if (q.value() % 5 == 0) {
                                           std::move(q).reject(std::errc::invalid_argument, "no");
                                         } else {
                                           owner.accept(std::move(q));
                                         }
                                       }),
                      custody::on_recv(ticks,
                                       [&](auto) {
                                         owner.publish(++n);
                                         ++c.published;
                                       }),
                      custody::on_stop(stop, [&] { running = false; }));
    }
  });

  // Setters: every call returns, with an answer that fits.
  for (int i = 0; i < 2; ++i) {
    group.spawn("setter", [store, &c, i, slow = r.one_in(2)](std::stop_token stop) {
      for (std::int64_t k = 1; !stop.stop_requested(); ++k) {
        ++c.sets_called;
        const auto res = slow ? store.set_for(k * 2 + i, 50ms, stop) : store.set(k * 2 + i, stop);
        ++c.sets_returned;
        switch (res.status()) {
          case set_status::accepted:
          case set_status::rejected:
          case set_status::stopped:
          case set_status::owner_gone:
            break;
          case set_status::timeout:
            if (!slow) ++c.sets_bad;
            break;
          default:  // nobody drops requests here
            ++c.sets_bad;
            std::printf("[stress] unexpected set() answer: %s\n",
                        std::string(custody::to_string(res.status())).c_str());
        }
        if (res.status() == set_status::owner_gone) return;
      }
    });
  }

  // A reader.
  group.spawn("reader", [store](std::stop_token stop) {
    std::int64_t last = 0;
    while (!stop.stop_requested()) {
      last = std::max(last, store.get());
      std::this_thread::sleep_for(20us);
    }
  });

  // Subscribers of every policy, receiving until stopped or closed.
  for (policy p : {policy::block(4), policy::latest().with_current(), policy::buffer(8)}) {
    group.spawn("subscriber", [sub = store.subscribe(p), &c](std::stop_token stop) mutable {
      for (;;) {
        auto got = sub.recv(stop);
        if (!got) return;
        ++c.received;
      }
    });
  }

  // A fanout from a subscription into two channels, and their consumers.
  custody::Channel<std::int64_t> a(4), b;
  group.spawn("fanout",
              [in = custody::Receiver<std::int64_t>(store.subscribe(policy::block(2))),
               outs = std::vector<custody::Sender<std::int64_t>>{a, b}](std::stop_token stop) {
                custody::fanout(stop, in, outs, custody::fanout_mode::lossless);
              });
  for (custody::Receiver<std::int64_t> rx : {a.receiver(), b.receiver()}) {
    group.spawn("consumer", [rx, &c](std::stop_token stop) mutable {
      while (rx.recv(stop)) ++c.piped;
    });
  }

  std::this_thread::sleep_for(stop_after);
  const auto stop_at = std::chrono::steady_clock::now();
  group.request_stop();
  group.wait();
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               stop_at);
}

}  // namespace

TEST(RandomStop, StorePipeline) {
  const std::uint64_t stops = stress::env_u64("CUSTODY_STRESS_STOPS", 1000);
  std::printf(
      "[stress] RandomStop.StorePipeline: seed %llu, %llu stops (replay: "
      "CUSTODY_STRESS_SEED=%llu)\n",
      static_cast<unsigned long long>(stress::base_seed()), static_cast<unsigned long long>(stops),
      static_cast<unsigned long long>(stress::base_seed()));
  counts c;
  stress::stop_joins joins(stops);
  for (std::uint64_t i = 0; i < stops; ++i) {
    rng r(stress::mix(stress::base_seed() ^ stress::mix(0x5707 + i)));
    const auto after = std::chrono::microseconds(r.below(3000));
    const auto join = run_once(r, after, c);
    ASSERT_TRUE(joins.add(i, join, after))
        << "stop " << i << ": the tasks took " << join.count() << " us to join";
    ASSERT_EQ(c.sets_called.load(), c.sets_returned.load()) << "a set() never returned";
    ASSERT_EQ(c.sets_bad.load(), 0u);
  }
  joins.report("RandomStop.StorePipeline");
  std::printf(
      "[stress] %llu set() calls, all answered; %llu publishes, %llu values received, "
      "%llu through the fanout\n",
      static_cast<unsigned long long>(c.sets_called.load()),
      static_cast<unsigned long long>(c.published.load()),
      static_cast<unsigned long long>(c.received.load()),
      static_cast<unsigned long long>(c.piped.load()));
}
