// Fault injection: element types whose move or copy throws, in channels, selects and stores;
// and subscribers that never read. Each fault must leave every object consistent and usable.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>
#include <custody/store.hpp>

namespace {
namespace fault_throw_test {

using namespace std::chrono_literals;
using custody::Channel;
using custody::policy;
using custody::set_status;
using custody::status;

struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};

// Moves throw while `moves_throw` is set.
struct move_bomb {
  static inline std::atomic<bool> moves_throw{false};
  int v;
  explicit move_bomb(int x) : v(x) {}
  move_bomb(move_bomb&& o) noexcept(false) : v(o.v) {
    if (moves_throw) throw boom();
    o.v = -1;
  }
  move_bomb& operator=(move_bomb&& o) noexcept(false) {
    if (moves_throw) throw boom();
    v = o.v;
    o.v = -1;
    return *this;
  }
};

// The copy after `copies_before_throw` more copies throws (once); negative: none throws.
struct copy_bomb {
  static inline std::atomic<int> copies_before_throw{-1};
  int v = 0;
  copy_bomb() = default;
  explicit copy_bomb(int x) : v(x) {}
  copy_bomb(const copy_bomb& o) : v(o.v) { maybe_throw(); }
  copy_bomb& operator=(const copy_bomb& o) {
    maybe_throw();
    v = o.v;
    return *this;
  }
  copy_bomb(copy_bomb&&) noexcept = default;
  copy_bomb& operator=(copy_bomb&&) noexcept = default;
  static void maybe_throw() {
    if (copies_before_throw.load() >= 0 && copies_before_throw.fetch_sub(1) == 0) throw boom();
  }
};

struct reset_bombs {
  ~reset_bombs() {
    move_bomb::moves_throw = false;
    copy_bomb::copies_before_throw = -1;
  }
};

// A select whose send case's move throws commits nothing: not that case, not any other.
TEST(FaultThrow, SelectWithAThrowingSendCaseCommitsNothing) {
  reset_bombs guard;
  Channel<move_bomb> full(1), room(1), empty(1);
  ASSERT_EQ(full.try_send(move_bomb(1)), status::ok);
  move_bomb value(2);
  for (int round = 0; round < 50; ++round) {
    move_bomb::moves_throw = true;
    bool ran = false;
    EXPECT_THROW(custody::select(custody::on_send(room, value, [&] { ran = true; }),
                                 custody::on_recv(empty, [&](move_bomb&&) { ran = true; }),
                                 custody::on_send(full, value, [&] { ran = true; })),
                 boom);
    move_bomb::moves_throw = false;
    EXPECT_FALSE(ran);
    EXPECT_EQ(value.v, 2);
    EXPECT_EQ(full.size(), 1u);
    EXPECT_EQ(room.size(), 0u);
  }
  EXPECT_EQ(custody::select(custody::on_send(room, value)).status, status::ok);
  EXPECT_EQ(room.recv()->v, 2);
  EXPECT_EQ(full.recv()->v, 1);
}

// A receiver in a select and a sender whose value's move throws: whichever side moves the
// value gets the exception, the sender keeps the value, and the retry goes through.
TEST(FaultThrow, ThrowingHandOverToABlockedSelect) {
  reset_bombs guard;
  Channel<move_bomb> ch;  // unbuffered: the value moves straight into the receiver
  Channel<int> other;
  std::atomic<int> got{0};
  std::jthread receiver([&] {
    // The side that moves the value gets the exception: here the receiver, when it finds the
    // sender waiting. Either way the value stays with the sender, who offers it again.
    for (;;) {
      try {
        auto sel = custody::select(custody::on_recv(ch, [&](move_bomb&& b) { got = b.v; }),
                                   custody::on_recv(other, [](int) {}));
        EXPECT_EQ(sel.index, 0u);
        return;
      } catch (const boom&) {
      }
    }
  });
  move_bomb value(5);
  int thrown = 0;
  for (;;) {
    move_bomb::moves_throw = thrown < 3;
    try {
      if (ch.send_for(std::move(value), 5ms) == status::ok) break;
    } catch (const boom&) {
      ++thrown;
      EXPECT_EQ(value.v, 5);
    }
  }
  move_bomb::moves_throw = false;
  receiver.join();
  EXPECT_EQ(got, 5);
}

TEST(FaultThrow, StoreGetAndSubscribeWithThrowingCopies) {
  reset_bombs guard;
  auto made = custody::make_store<copy_bomb>(copy_bomb(1));
  custody::Owner<copy_bomb> owner = std::move(made.owner);
  custody::Store<copy_bomb> store = made.store;
  copy_bomb::copies_before_throw = 0;
  EXPECT_THROW((void)store.get(), boom);
  EXPECT_EQ(store.get().v, 1);
  // subscribe() with the current value first copies it: a throw leaves no subscription behind.
  copy_bomb::copies_before_throw = 0;
  EXPECT_THROW((void)store.subscribe(policy::latest().with_current()), boom);
  EXPECT_EQ(owner.subscriber_count(), 0u);
  auto sub = store.subscribe(policy::latest().with_current());
  EXPECT_EQ(sub.try_recv()->v, 1);
  EXPECT_EQ(owner.subscriber_count(), 1u);
}

// A copy throws while publishing, at every point in turn: if the value was stored, the
// subscriptions that got it have it and the rest miss it; if not, none has it. Either way the
// next publish reaches everyone.
TEST(FaultThrow, PublishWithACopyThatThrowsAtEveryPoint) {
  reset_bombs guard;
  auto made = custody::make_store<copy_bomb>(copy_bomb(0));
  custody::Owner<copy_bomb> owner = std::move(made.owner);
  std::vector<custody::Subscription<copy_bomb>> subs;
  for (policy p : {policy::latest(), policy::buffer(4), policy::block(4), policy::latest()}) {
    subs.push_back(made.store.subscribe(p));
  }
  int last = 0;
  for (int k = 0;; ++k) {
    ASSERT_LT(k, 100) << "publish never ran through";
    const int next = 1000 + k;
    copy_bomb::copies_before_throw = k;
    bool threw = false;
    try {
      EXPECT_EQ(owner.publish(copy_bomb(next)), status::ok);
    } catch (const boom&) {
      threw = true;
    }
    const bool reached = copy_bomb::copies_before_throw.load() < 0;
    copy_bomb::copies_before_throw = -1;
    const int now = made.store.get().v;
    EXPECT_TRUE(now == next || (threw && now == last)) << "get() returned " << now;
    std::vector<bool> missed_stored(subs.size());
    for (std::size_t i = 0; i < subs.size(); ++i) {
      auto r = subs[i].try_recv();
      if (r) {
        EXPECT_EQ(r->v, next);
        EXPECT_EQ(now, next) << "a subscription got a value that was not stored";
      } else {
        EXPECT_TRUE(threw) << "a subscription missed an update that did not throw";
        missed_stored[i] = now == next;
      }
    }
    ASSERT_EQ(owner.publish(copy_bomb(2000 + k)), status::ok);
    for (std::size_t i = 0; i < subs.size(); ++i) {
      auto r = subs[i].try_recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->v, 2000 + k);
      // A stored update a subscription did not get is counted where it can see it.
      EXPECT_EQ(subs[i].take_missed(), missed_stored[i] ? 1u : 0u) << "subscription " << i;
    }
    last = 2000 + k;
    if (!threw) {
      EXPECT_FALSE(reached);
      break;
    }
  }
  EXPECT_EQ(owner.subscriber_count(), 4u);
}

// Answering a request whose value cannot be copied, whichever copy throws: the caller is
// answered exactly once, and hears accepted exactly when the value was stored.
TEST(FaultThrow, AcceptWithAThrowingCopyStillAnswersTheCaller) {
  reset_bombs guard;
  auto made = custody::make_store<copy_bomb>(copy_bomb(0));
  custody::Owner<copy_bomb> owner = std::move(made.owner);
  for (int k = 0;; ++k) {
    ASSERT_LT(k, 100) << "accept never ran through";
    const int asked = 100 + k;
    std::optional<custody::set_result<copy_bomb>> res;
    std::jthread caller([&] { res.emplace(made.store.set(copy_bomb(asked))); });
    auto q = owner.requests().recv();
    ASSERT_TRUE(q);
    copy_bomb::copies_before_throw = k;
    bool threw = false;
    try {
      EXPECT_EQ(owner.accept(std::move(*q)), status::ok);
    } catch (const boom&) {
      threw = true;
    }
    copy_bomb::copies_before_throw = -1;
    // Still ours to answer (accept took nothing), or already answered: never both, never none.
    if (*q) {
      EXPECT_EQ(owner.accept(std::move(*q)), status::ok);
    }
    caller.join();
    ASSERT_TRUE(res);
    const bool stored = made.store.get().v == asked;
    EXPECT_EQ(res->accepted(), stored) << "copy " << k << ": " << custody::to_string(res->status());
    if (res->accepted()) {
      EXPECT_EQ(res->value().v, asked);
    } else {
      EXPECT_EQ(res->status(), set_status::dropped);
    }
    if (!threw) break;
  }
}

// Subscribers that never read: lossy ones never hold the owner back and count exactly what
// they missed; a lossless one holds it back only until the owner's stop or deadline, or until
// it is dropped, and never keeps the store from closing.
TEST(FaultThrow, SubscribersThatNeverRead) {
  auto made = custody::make_store<std::int64_t>(0);
  custody::Owner<std::int64_t> owner = std::move(made.owner);
  auto latest = made.store.subscribe(policy::latest());
  auto buffer = made.store.subscribe(policy::buffer(8));
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 1; i <= 100'000; ++i) ASSERT_EQ(owner.publish(i), status::ok);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_EQ(latest.size(), 1u);
  EXPECT_EQ(buffer.size(), 8u);
  EXPECT_EQ(*latest.try_recv(), 100'000);
  EXPECT_EQ(latest.take_missed(), 99'999u);
  EXPECT_EQ(*buffer.try_recv(), 100'000 - 7);
  EXPECT_EQ(buffer.take_missed(), 100'000u - 8);

  auto stuck = made.store.subscribe(policy::block(2));
  auto reader = made.store.subscribe(policy::block(2));
  ASSERT_EQ(owner.publish(1), status::ok);
  ASSERT_EQ(owner.publish(2), status::ok);
  EXPECT_EQ(*reader.try_recv(), 1);
  EXPECT_EQ(owner.publish_for(3, 20ms), status::timeout);  // `stuck` is full
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  EXPECT_EQ(owner.publish(4, stop.get_token()), status::stopped);
  // Everyone with room got 3 and 4 all the same.
  EXPECT_EQ(*reader.try_recv(), 2);
  EXPECT_EQ(*reader.try_recv(), 3);
  EXPECT_EQ(*latest.try_recv(), 4);
  // Dropping the stuck subscription releases a publish waiting for it.
  std::jthread dropper([&, s = std::move(stuck)]() mutable {
    std::this_thread::sleep_for(20ms);
    s = custody::Subscription<std::int64_t>();
  });
  EXPECT_EQ(owner.publish(5), status::ok);
  dropper.join();
  // A full, never-read lossless subscription does not keep the store from closing.
  auto stuck2 = made.store.subscribe(policy::block(1));
  ASSERT_EQ(owner.publish(6), status::ok);
  EXPECT_TRUE(owner.close());
  EXPECT_EQ(*stuck2.try_recv(), 6);
  EXPECT_EQ(stuck2.try_recv().status(), status::closed);
}

}  // namespace fault_throw_test
}  // namespace
