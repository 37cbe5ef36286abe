// set(): requests answered to their caller alone, owner gone, dropped, timeouts and stops.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>
#include <custody/store.hpp>
#include <custody/timer.hpp>

namespace {
namespace store_set_test {

using namespace std::chrono_literals;

using custody::make_store;
using custody::Owner;
using custody::set_status;
using custody::SetRequest;
using custody::status;

// Answers requests until stopped: odd values are rejected with a message naming them; even
// ones are accepted, adjusted by +1.
void answer_until_stopped(Owner<std::int64_t>& owner, std::stop_token stop) {
  auto requests = owner.requests();
  for (bool running = true; running;) {
    custody::select(custody::on_recv(requests,
                                     [&](SetRequest<std::int64_t> r) {
                                       const std::int64_t v = r.value();
                                       if (v % 2 != 0) {
                                         std::move(r).reject(std::errc::invalid_argument,
                                                             std::to_string(v));
                                       } else {
                                         owner.accept(std::move(r), v + 1);
                                       }
                                     }),
                    custody::on_stop(stop, [&] { running = false; }));
  }
}

TEST(StoreSet, AcceptedAdjustedAndRejected) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread task([&owner](std::stop_token st) { answer_until_stopped(owner, st); });

  auto ok = store.set(10);
  ASSERT_EQ(ok.status(), set_status::accepted);
  EXPECT_TRUE(ok);
  EXPECT_EQ(ok.value(), 11);  // the owner adjusted it
  // An accepted set is visible to get() by the time set() returns.
  EXPECT_EQ(store.get(), 11);

  auto no = store.set(7);
  ASSERT_EQ(no.status(), set_status::rejected);
  EXPECT_FALSE(no);
  EXPECT_EQ(no.error(), std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(no.message(), "7");
  EXPECT_THROW((void)no.value(), std::logic_error);
  EXPECT_EQ(store.get(), 11);
}

TEST(StoreSet, EveryCallerGetsTheAnswerToItsOwnRequest) {
  constexpr int threads = 4;
  constexpr int sets_each = 400;
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread task([&owner](std::stop_token st) { answer_until_stopped(owner, st); });

  std::atomic<int> wrong{0};
  std::latch start(threads);
  {
    std::vector<std::jthread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&, t, setter = custody::Setter<std::int64_t>(store)] {
        start.arrive_and_wait();
        for (int i = 0; i < sets_each; ++i) {
          const std::int64_t v = std::int64_t{t} * 1'000'000 + i;
          auto r = setter.set(v);
          const bool right =
              v % 2 == 0 ? r.accepted() && r.value() == v + 1
                         : r.status() == set_status::rejected && r.message() == std::to_string(v);
          if (!right) ++wrong;
        }
      });
    }
  }
  EXPECT_EQ(wrong.load(), 0);
}

TEST(StoreSet, RequestDroppedUnansweredIsAnsweredDropped) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread task([&owner] {
    auto r = owner.requests().recv();
    ASSERT_TRUE(r);
    // Goes out of scope unanswered.
  });
  EXPECT_EQ(store.set(5).status(), set_status::dropped);
  EXPECT_EQ(store.get(), 0);
}

TEST(StoreSet, RequestsWaitingWhenTheOwnerGoesAreToldAtOnce) {
  constexpr int callers_n = 6;  // more than the channel holds: some wait to send
  auto made = make_store<std::int64_t>(0, custody::store_options{.request_capacity = 2});
  auto owner = std::move(made.owner);
  auto store = made.store;

  std::vector<std::jthread> callers;
  std::atomic<int> gone{0};
  std::latch started(callers_n);
  for (int i = 0; i < callers_n; ++i) {
    callers.emplace_back([&, i] {
      started.count_down();
      if (store.set(i).status() == set_status::owner_gone) ++gone;
    });
  }
  started.wait();
  // Let the channel fill, so that the close meets queued requests as well as blocked senders.
  auto requests = owner.requests();
  while (requests.size() < 2) std::this_thread::yield();
  owner = Owner<std::int64_t>();  // destroys the owner: closes the store
  for (auto& c : callers) c.join();
  EXPECT_EQ(gone.load(), callers_n);
  EXPECT_TRUE(store.owner_gone());
  EXPECT_EQ(store.get(), 0);
  // Later requests are answered at once too.
  EXPECT_EQ(store.set(1).status(), set_status::owner_gone);
}

TEST(StoreSet, RequestHeldByTheOwnerWhenItGoesIsAnsweredOwnerGone) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread caller([&] { EXPECT_EQ(store.set(3).status(), set_status::owner_gone); });
  auto r = owner.requests().recv();
  ASSERT_TRUE(r);
  SetRequest<std::int64_t> request = std::move(*r);
  owner.close();
  caller.join();  // returns although the request is still held, unanswered
  EXPECT_FALSE(std::move(request).accept(3));  // the answer is already given
}

TEST(StoreSet, TimeoutAndStopWhileTheOwnerHoldsTheRequest) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::stop_source stop;
  std::jthread caller([&] {
    auto t = store.set_for(1, 20ms);
    EXPECT_EQ(t.status(), set_status::timeout);
    auto s = store.set(2, stop.get_token());
    EXPECT_EQ(s.status(), set_status::stopped);
  });
  auto first = owner.requests().recv();
  ASSERT_TRUE(first);
  auto second = owner.requests().recv();  // arrives only after the first set() timed out
  ASSERT_TRUE(second);
  EXPECT_TRUE(first->abandoned());
  EXPECT_FALSE(second->abandoned());
  stop.request_stop();
  caller.join();
  EXPECT_TRUE(second->abandoned());
  // Answers to callers that gave up are discarded, and say so.
  EXPECT_FALSE(std::move(*first).reject(std::errc::timed_out, "late"));
  EXPECT_EQ(owner.accept(std::move(*second)), status::ok);  // the owner may still apply it
  EXPECT_EQ(store.get(), 2);
}

// A caller that gave up while its request still waited in the channel was told timeout or
// stopped: the owner never sees that request, so it cannot carry it out behind the caller.
TEST(StoreSet, ARequestWhoseCallerGaveUpWhileQueuedNeverReachesTheOwner) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::stop_source stop;
  std::latch gave_up(2);
  std::jthread timed_out([&] {
    EXPECT_EQ(store.set_for(1, 1ms).status(), set_status::timeout);
    gave_up.count_down();
  });
  std::jthread stopped([&] {
    EXPECT_EQ(store.set(2, stop.get_token()).status(), set_status::stopped);
    gave_up.count_down();
  });
  auto requests = owner.requests();
  while (requests.size() < 2) std::this_thread::yield();  // both wait in the channel
  stop.request_stop();
  gave_up.wait();
  std::jthread patient([&] { EXPECT_EQ(store.set(3).status(), set_status::accepted); });
  auto r = requests.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), 3);
  EXPECT_EQ(owner.accept(std::move(*r)), status::ok);
  patient.join();
  EXPECT_EQ(requests.try_recv().status(), status::would_block);
  EXPECT_EQ(store.get(), 3);
}

// The public pieces an owner elsewhere (custody::nats) is built from: forwarding requests,
// answering with a bare status, and the version an accepted value was stored at.
TEST(StoreSet, ForwardedRequestsAnsweredWithAStatusAndVersionsOfAcceptedValues) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread caller([&] {
    const auto r = store.set(5);
    ASSERT_TRUE(r.accepted());
    EXPECT_EQ(r.version(), 2u);  // the first change after the initial value
  });
  auto q = owner.requests().recv();
  ASSERT_TRUE(q);
  EXPECT_EQ(owner.accept(std::move(*q)), status::ok);
  caller.join();
  EXPECT_EQ(store.get_versioned(), (std::pair<std::int64_t, std::uint64_t>(5, 2)));

  owner.forward_requests([&](custody::SetRequest<std::int64_t>&& r) {
    EXPECT_THROW((void)std::move(r).answer(set_status::accepted), std::invalid_argument);
    EXPECT_TRUE(std::move(r).answer(set_status::disconnected));
  });
  EXPECT_EQ(store.set(6).status(), set_status::disconnected);
  EXPECT_EQ(store.get(), 5);
}

TEST(StoreSet, TimeoutWhileTheRequestChannelIsFull) {
  auto made = make_store<std::int64_t>(0, custody::store_options{.request_capacity = 0});
  auto deadline = std::chrono::steady_clock::now() + 20ms;
  EXPECT_EQ(made.store.set_until(1, deadline).status(), set_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(made.store.set(1, stopped.get_token()).status(), set_status::stopped);
}

TEST(StoreSet, OwnerLoopSelectsOverRequestsTickerAndStop) {
  // The seed's owner shape: one loop selecting on requests, a ticker and the stop token.
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::atomic<int> ticks{0};
  std::jthread task([&owner, &ticks](std::stop_token st) {
    owner.set_stop_token(st);
    custody::Ticker ticker(1ms);
    auto tick = ticker.receiver();
    auto requests = owner.requests();
    for (bool running = true; running;) {
      custody::select(
          custody::on_recv(requests,
                           [&](SetRequest<std::int64_t> r) { owner.accept(std::move(r)); }),
          custody::on_recv(tick,
                           [&](auto) {
                             ++ticks;
                             owner.update([](std::int64_t& v) { v += 1000; });
                           }),
          custody::on_stop(st, [&] { running = false; }));
    }
  });
  for (int i = 0; i < 50; ++i) {
    auto r = store.set(i);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value(), i);
  }
  task.request_stop();
  task.join();
}

TEST(StoreSet, AcceptAfterCloseAnswersOwnerGone) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::jthread caller([&] { EXPECT_EQ(store.set(4).status(), set_status::owner_gone); });
  auto r = owner.requests().recv();
  ASSERT_TRUE(r);
  owner.close();
  EXPECT_EQ(owner.accept(std::move(*r)), status::closed);
  caller.join();
  EXPECT_EQ(store.get(), 0);
}

}  // namespace store_set_test
}  // namespace
