// Fault injection: std::bad_alloc at the Nth allocation of an operation (channel creation, send
// and select, subscribe, publish, set), for every N until the operation succeeds. Each failure
// must leave every object consistent and usable, and nothing leaked (the asan preset runs this
// with LeakSanitizer).
//
// This binary replaces the global operator new with one that counts the allocations of the
// calling thread and throws at the one it was told to (other threads are never failed).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>
#include <custody/store.hpp>

namespace {

// Allocations of this thread left before the one that fails; negative: none fails.
thread_local long countdown = -1;
thread_local long injected = 0;

void* allocate(std::size_t n, std::size_t align) {
  if (countdown >= 0 && countdown-- == 0) {
    ++injected;
    throw std::bad_alloc();
  }
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return allocate(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n, alignof(std::max_align_t));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n, alignof(std::max_align_t));
  } catch (...) {
    return nullptr;
  }
}
// The replacement operator new above allocates with malloc, so free is the matching release.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace std::chrono_literals;
using custody::Channel;
using custody::policy;
using custody::set_status;
using custody::status;

namespace {

/// The first blocking wait of the process sets up the table of sleeping places (see
/// FirstBlockingWaitNeverTerminates); the other tests do that before injecting failures.
void warm_up() {
  Channel<int> ch(1);
  (void)ch.recv_for(1ms);
}

/// Runs `op` with the Nth allocation failing, for N = 0, 1, 2, ... until `op` runs through
/// without reaching a failure. After each failure, `check()` must find everything consistent.
/// Returns the number of failures injected.
template <class Op, class Check>
long fail_each_allocation(Op&& op, Check&& check) {
  long failures = 0;
  for (long n = 0; n < 10'000; ++n) {
    countdown = n;
    bool failed = false;
    try {
      op();
    } catch (const std::bad_alloc&) {
      failed = true;
    }
    const bool reached = countdown < 0;
    countdown = -1;
    if (failed) {
      EXPECT_TRUE(reached) << "bad_alloc that was not injected";
      ++failures;
      check();
      if (::testing::Test::HasFatalFailure()) return failures;
    } else {
      EXPECT_FALSE(reached) << "an injected bad_alloc was swallowed at allocation " << n;
      return failures;
    }
  }
  ADD_FAILURE() << "the operation never ran through";
  return failures;
}

// A value whose copy allocates (a long string); its move does not. Made without faults.
std::string big(int i) {
  const long saved = std::exchange(countdown, -1);
  std::string s = std::string(100, 'x') + std::to_string(i);
  countdown = saved;
  return s;
}

}  // namespace

TEST(FaultAlloc, ChannelCreation) {
  warm_up();
  for (std::size_t cap : {0u, 1u, 16u}) {
    std::optional<Channel<std::string>> ch;
    const long failures = fail_each_allocation([&] { ch.emplace(cap); }, [&] { EXPECT_FALSE(ch); });
    EXPECT_GE(failures, 1) << "capacity " << cap;
    ASSERT_TRUE(ch);
    if (cap > 0) {
      EXPECT_EQ(ch->try_send(big(1)), status::ok);
      EXPECT_EQ(*ch->try_recv(), big(1));
    }
  }
}

TEST(FaultAlloc, SendOfACopyThatCannotBeMade) {
  warm_up();
  // send(const T&) copies first: a failing copy sends nothing.
  Channel<std::string> ch(4);
  ASSERT_EQ(ch.send(big(0)), status::ok);
  const std::string v = big(1);
  const long failures = fail_each_allocation([&] { ASSERT_EQ(ch.send(v), status::ok); },
                                             [&] { EXPECT_EQ(ch.size(), 1u); });
  EXPECT_GE(failures, 1);
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(*ch.recv(), big(0));
  EXPECT_EQ(*ch.recv(), big(1));
}

TEST(FaultAlloc, LargeSelectFailsBeforeCommittingAnything) {
  warm_up();
  // More than 8 cases: the select allocates its bookkeeping.
  std::vector<Channel<std::string>> chans;
  for (int i = 0; i < 10; ++i) chans.emplace_back(i % 2 ? 1 : 0);
  ASSERT_EQ(chans[1].try_send(big(7)), status::ok);
  std::string out = big(9);
  std::optional<std::string> got;
  int fired = -1;
  auto run = [&] {
    auto on = [&](int i) { return [&, i](std::string s) { fired = i, got = std::move(s); }; };
    return custody::select(custody::on_recv(chans[0], on(0)), custody::on_recv(chans[1], on(1)),
                           custody::on_recv(chans[2], on(2)), custody::on_recv(chans[4], on(4)),
                           custody::on_recv(chans[5], on(5)), custody::on_recv(chans[6], on(6)),
                           custody::on_recv(chans[7], on(7)), custody::on_recv(chans[8], on(8)),
                           custody::on_send(chans[3], out), custody::on_send(chans[9], out));
  };
  const long failures = fail_each_allocation(
      [&] {
        // chans[1] holds a value and chans[3], chans[9] have room: one of them commits.
        auto sel = run();
        EXPECT_EQ(sel.status, status::ok);
      },
      [&] {
        EXPECT_EQ(fired, -1);
        EXPECT_EQ(out, big(9));
        EXPECT_EQ(chans[1].size(), 1u);
        EXPECT_EQ(chans[3].size() + chans[9].size(), 0u);
      });
  EXPECT_GE(failures, 1);
  EXPECT_TRUE(fired == 1 || ((chans[3].size() + chans[9].size()) == 1 && out.empty()));
}

TEST(FaultAlloc, SubscribeFailsCleanly) {
  warm_up();
  for (policy p : {policy::latest(), policy::buffer(8), policy::block(4).with_current()}) {
    auto made = custody::make_store<std::string>(big(0));
    custody::Owner<std::string> owner = std::move(made.owner);
    std::optional<custody::Subscription<std::string>> sub;
    const long failures = fail_each_allocation([&] { sub = made.store.subscribe(p); },
                                               [&] {
                                                 EXPECT_FALSE(sub);
                                                 EXPECT_EQ(owner.subscriber_count(), 0u);
                                               });
    EXPECT_GE(failures, 1);
    ASSERT_TRUE(sub);
    EXPECT_EQ(owner.publish(big(1)), status::ok);
    if (p.current_first()) {
      EXPECT_EQ(*sub->try_recv(), big(0));
    }
    EXPECT_EQ(*sub->try_recv(), big(1));
    EXPECT_EQ(owner.subscriber_count(), 1u);
  }
}

TEST(FaultAlloc, SetFailsCleanly) {
  warm_up();
  auto made = custody::make_store<std::string>(big(0));
  custody::Owner<std::string> owner = std::move(made.owner);
  std::optional<custody::set_result<std::string>> res;
  const long failures =
      fail_each_allocation([&] { res.emplace(made.store.set_for(big(1), 1ms)); },
                           [&] {
                             EXPECT_FALSE(res);
                             EXPECT_EQ(owner.requests().size(), 0u);  // nothing half-sent
                           });
  EXPECT_GE(failures, 1);
  // The last attempt went through: its request was queued, its caller gave up, so the owner
  // never sees it.
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status(), set_status::timeout);
  EXPECT_EQ(owner.requests().size(), 1u);
  EXPECT_EQ(owner.requests().try_recv().status(), status::would_block);
  EXPECT_EQ(owner.requests().size(), 0u);
  // A waiting caller is still answered.
  std::jthread caller([&] { EXPECT_EQ(made.store.set(big(2)).value(), big(2)); });
  auto q = owner.requests().recv();
  ASSERT_TRUE(q);
  EXPECT_EQ(owner.accept(std::move(*q)), status::ok);
}

// Publishing while copies into subscriptions fail: the value is stored, the subscriptions that
// got it have it, the others miss it, and the next publish reaches all of them.
TEST(FaultAlloc, PublishWhileDeliveringFails) {
  warm_up();
  auto made = custody::make_store<std::string>(big(0));
  custody::Owner<std::string> owner = std::move(made.owner);
  std::vector<custody::Subscription<std::string>> subs;
  for (policy p : {policy::latest(), policy::buffer(4), policy::block(4)}) {
    subs.push_back(made.store.subscribe(p));
  }
  ASSERT_EQ(owner.subscriber_count(), 3u);
  int round = 0;
  const long failures = fail_each_allocation(
      [&] {
        ++round;
        ASSERT_EQ(owner.publish(big(round)), status::ok);
      },
      [&] {
        EXPECT_EQ(made.store.get(), big(round)) << "a failed delivery must still store the value";
        for (auto& s : subs) {
          auto r = s.try_recv();
          if (r) {
            EXPECT_EQ(*r, big(round));
          }
        }
      });
  EXPECT_GE(failures, 1);
  for (auto& s : subs) {
    auto r = s.try_recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, big(round));
  }
  EXPECT_EQ(owner.subscriber_count(), 3u);
}

// Found by this test: subscriptions made since the owner's last publish are adopted into the
// owner's list at its next publish; if growing that list failed, the subscriptions not yet
// adopted were dropped: they never received another update and never saw the store close.
TEST(FaultAlloc, PublishWhileAdoptingNewSubscriptionsFails) {
  warm_up();
  auto made = custody::make_store<std::string>(big(0));
  custody::Owner<std::string> owner = std::move(made.owner);
  std::vector<custody::Subscription<std::string>> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(made.store.subscribe(policy::latest()));
  int round = 0;
  fail_each_allocation([&] { ASSERT_EQ(owner.publish(big(++round)), status::ok); }, [] {});
  ASSERT_EQ(owner.publish(big(++round)), status::ok);
  for (auto& s : subs) {
    auto r = s.try_recv();
    ASSERT_TRUE(r) << "a subscription was lost while the owner failed to adopt it";
    EXPECT_EQ(*r, big(round));
  }
  EXPECT_EQ(owner.subscriber_count(), 3u);
  owner.close();
  for (auto& s : subs) {
    EXPECT_EQ(s.try_recv().status(), status::closed) << "a lost subscription never closes";
  }
}

// Closing the store adopts the subscriptions made since the last publish, and close() is
// noexcept: a failing allocation there must not terminate the program.
TEST(FaultAlloc, CloseWithNewSubscriptionsNeverThrows) {
  EXPECT_EXIT(
      {
        auto made = custody::make_store<std::string>(big(0));
        custody::Owner<std::string> owner = std::move(made.owner);
        auto a = made.store.subscribe(policy::latest());
        auto b = made.store.subscribe(policy::latest());
        countdown = 0;
        owner.close();
        countdown = -1;
        const bool ok =
            a.try_recv().status() == status::closed && b.try_recv().status() == status::closed;
        std::exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Found by this test: the table of sleeping places that blocked operations wait on was
// allocated on the first blocking wait of the process, inside parker::wait() (noexcept): if that
// allocation failed, the program terminated instead of the wait reporting anything.
TEST(FaultAlloc, FirstBlockingWaitNeverTerminates) {
  EXPECT_EXIT(
      {
        Channel<int> ch(1);
        custody::received<int> r;
        countdown = 0;
        try {
          r = ch.recv_for(1ms);
        } catch (const std::bad_alloc&) {
        }
        countdown = -1;
        std::exit(r.status() == status::timeout || r.status() == status::would_block ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}
