// Stress: one store, an owner task that answers set requests and publishes, many setters,
// readers and subscribers of every policy (some slow, some that never read, some that
// unsubscribe and come back), and the owner exiting at a random moment. Every round ends with
// the checks:
// - every set() returned exactly one answer, and it is the answer the owner gave (or
//   owner_gone / timeout / stopped when the owner delivered none);
// - get() never saw a torn or older value;
// - policy::block lost no update whose publish returned ok;
// - policy::latest and policy::buffer: values in order, and missed() adds up to exactly the
//   updates skipped.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>
#include <custody/store.hpp>

#include "store_values.hpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using custody::policy;
using custody::set_status;
using custody::status;
using stress::reading;
using stress::rng;

namespace {

// Totals over the whole test, printed at the end.
struct totals {
  std::atomic<std::uint64_t> sets[8] = {};           // by set_status
  std::atomic<std::uint64_t> subscriptions[3] = {};  // block, latest, buffer
  std::atomic<std::uint64_t> values = 0, skipped = 0, publishes = 0;
} total;

// What the owner did with one set request, and whether its answer reached the caller.
enum answer : std::uint8_t {
  unseen,
  accepted_delivered,
  accepted_lost,   // accepted, but the caller had given up
  accepted_maybe,  // by Owner::accept, which does not say whether the caller still waited
  rejected_delivered,
  rejected_lost,
  dropped,
};

struct round_state {
  round_state(std::uint32_t setters, std::uint32_t per_setter)
      : per(per_setter),
        answers(std::size_t{setters} * per_setter + 1),
        results(std::size_t{setters} * per_setter + 1),
        stored(std::size_t{setters} * per_setter + 1) {}
  std::uint32_t per;
  // Indexed by request id (1-based).
  std::vector<std::atomic<std::uint8_t>> answers;
  std::vector<std::atomic<std::int8_t>> results;   // set_status + 1 as the caller saw it; 0: none
  std::vector<std::atomic<std::uint64_t>> stored;  // n the owner stored for an accepted request
  // Owner's record: published_ok[n] for every publish number n.
  std::vector<std::uint8_t> published_ok{0};
  std::uint64_t last = 0;
  std::atomic<std::uint64_t> ops{0};
  std::mutex logs_mutex;
  std::vector<stress::sub_log> logs;
};

// The owner task: answers requests, publishes on its own now and then, and returns when its
// stop token fires (or after its quota); returning destroys the Owner, which closes the store.
void owner_task(custody::Owner<reading> owner, round_state& st, std::stop_token stop, rng r,
                std::uint64_t quota) {
  owner.set_stop_token(stop);
  auto requests = owner.requests();
  std::uint64_t n = 0;
  auto record = [&](status s) {
    st.published_ok.push_back(s == status::ok);
    EXPECT_TRUE(s == status::ok || s == status::stopped) << custody::to_string(s);
  };
  auto publish = [&] {
    ++n;
    if (r.one_in(2)) {
      record(owner.publish(reading::make(n, 0)));
    } else {
      record(owner.update([&](reading& v) { v = reading::make(n, 0); }));
    }
  };
  for (std::uint64_t i = 0; i < quota && !stop.stop_requested(); ++i) {
    ++st.ops;
    custody::select(
        custody::on_recv(requests,
                         [&](custody::SetRequest<reading> q) {
                           const std::uint64_t id = q.value().req;
                           auto& a = st.answers[id];
                           EXPECT_EQ(a.load(), unseen) << "request " << id << " received twice";
                           switch (r.below(10)) {
                             case 0:
                             case 1: {
                               const bool delivered =
                                   std::move(q).reject(std::errc::invalid_argument, "no");
                               a = delivered ? rejected_delivered : rejected_lost;
                               break;
                             }
                             case 2:
                               a = dropped;
                               q = custody::SetRequest<reading>();  // destroyed unanswered
                               break;
                             case 3:
                             case 4: {
                               // Store, then answer by hand.
                               ++n;
                               st.stored[id] = n;
                               record(owner.publish(reading::make(n, id)));
                               const bool delivered = std::move(q).accept(reading::make(n, id));
                               a = delivered ? accepted_delivered : accepted_lost;
                               break;
                             }
                             default:
                               ++n;
                               st.stored[id] = n;
                               a = accepted_maybe;
                               record(owner.accept(std::move(q), reading::make(n, id)));
                               break;
                           }
                         }),
        custody::on_stop(stop), custody::on_timeout(std::chrono::microseconds(r.below(300)), [&] {
          for (auto k = r.below(4); k > 0; --k) publish();
        }));
    if (r.one_in(8)) publish();
  }
  st.last = n;
  if (r.one_in(2)) owner.close();  // else the destructor closes it
}

void setter_task(custody::Setter<reading> setter, round_state& st, std::uint32_t s,
                 std::stop_token stop, rng r) {
  for (std::uint32_t k = 1; k <= st.per; ++k) {
    const std::uint64_t id = std::uint64_t{s} * st.per + k;
    ++st.ops;
    std::optional<custody::set_result<reading>> res;
    switch (r.below(4)) {
      case 0:
        res.emplace(setter.set(reading::ask(id)));
        break;
      case 1:
        res.emplace(setter.set(reading::ask(id), stop));
        break;
      default:
        res.emplace(
            setter.set_for(reading::ask(id), std::chrono::microseconds(r.below(2000)), stop));
        break;
    }
    st.results[id] = static_cast<std::int8_t>(static_cast<int>(res->status()) + 1);
    if (res->accepted()) {
      EXPECT_TRUE(res->value().consistent());
      EXPECT_EQ(res->value().req, id) << "accepted with another request's value";
      EXPECT_EQ(res->value().n, st.stored[id].load());
    }
    if (res->status() == set_status::owner_gone) {
      if (r.one_in(2)) return;
    }
    if (res->status() == set_status::stopped) return;
  }
}

void reader_task(custody::Getter<reading> getter, round_state& st, std::stop_token stop) {
  std::uint64_t prev = 0;
  while (!stop.stop_requested() || !getter.owner_gone()) {
    ++st.ops;
    const reading v = getter.get();
    EXPECT_TRUE(v.consistent()) << "torn read: " << v.n << " " << v.tag;
    EXPECT_GE(v.n, prev) << "get() went back in time";
    prev = v.n;
    if (getter.owner_gone()) break;
    std::this_thread::yield();
  }
}

// Subscribes with a random policy, reads in a random style, sometimes unsubscribes and comes
// back with another policy; until the store is closed and drained.
void subscriber_task(custody::GetSubscriber<reading> store, round_state& st, rng r,
                     bool never_reads) {
  for (;;) {
    stress::sub_log log;
    switch (r.below(3)) {
      case 0:
        log.policy = policy::block(r.between(1, 4));
        break;
      case 1:
        log.policy = policy::latest();
        break;
      default:
        log.policy = policy::buffer(r.between(1, 8));
        break;
    }
    if (never_reads && log.policy.lossless()) log.policy = policy::latest();
    log.policy = log.policy.with_current(r.one_in(3));
    log.before = store.get().n;
    auto sub = store.subscribe(log.policy);
    log.after = store.get().n;
    if (never_reads) {
      // Holds its subscription and never reads it until the store is closed.
      while (!store.owner_gone()) std::this_thread::sleep_for(200us);
    }
    const bool slow = r.one_in(4);
    const std::uint64_t leave_after = r.one_in(3) ? r.between(1, 200) : ~std::uint64_t{0};
    for (std::uint64_t i = 0;; ++i) {
      ++st.ops;
      custody::received<reading> got;
      switch (r.below(3)) {
        case 0:
          got = sub.recv();
          break;
        case 1:
          got = sub.recv_for(std::chrono::microseconds(r.below(500)));
          break;
        default:
          got = sub.try_recv();
          if (!got && got.status() == status::would_block) std::this_thread::yield();
          break;
      }
      if (got) {
        EXPECT_TRUE(got->consistent());
        log.got.push_back({got->n, sub.take_missed()});
        if (slow) std::this_thread::sleep_for(std::chrono::microseconds(r.below(200)));
      } else if (got.status() == status::closed) {
        log.drained = true;
        break;
      }
      if (i >= leave_after) break;  // unsubscribe: the owner stops delivering to it
    }
    const bool drained = log.drained;
    {
      std::lock_guard lock(st.logs_mutex);
      st.logs.push_back(std::move(log));
    }
    if (drained || (store.owner_gone() && r.one_in(2))) return;
  }
}

std::uint64_t round(rng& r, stress::runner& run) {
  const auto setters = static_cast<std::uint32_t>(r.between(1, 4));
  const auto per_setter = static_cast<std::uint32_t>(r.between(1, 300));
  const auto subscribers = static_cast<std::uint32_t>(r.between(1, 4));
  const auto readers = static_cast<std::uint32_t>(r.below(2));
  const bool never_reader = r.one_in(3);
  const auto quota = r.between(10, 4000);
  const auto owner_exit_at = std::chrono::microseconds(r.below(40'000));
  const bool clients_stop_first = r.one_in(4);
  const std::size_t request_capacity = r.pick(std::initializer_list<std::size_t>{0, 1, 4, 16});

  round_state st(setters, per_setter);
  auto made =
      custody::make_store<reading>(reading::make(0, 0), custody::store_options{request_capacity});
  custody::Owner<reading> owner = std::move(made.owner);
  custody::Store<reading> store = made.store;
  std::stop_source owner_stop, clients_stop;
  {
    std::vector<std::jthread> threads;
    // Subscribers first, so that some subscribe before the first publish.
    for (std::uint32_t i = 0; i < subscribers + never_reader; ++i) {
      threads.emplace_back([&, i, seed = r.next(), s = custody::GetSubscriber<reading>(store)] {
        subscriber_task(s, st, rng(seed), i == subscribers);
      });
    }
    for (std::uint32_t i = 0; i < readers; ++i) {
      threads.emplace_back([&, g = custody::Getter<reading>(store)] {
        reader_task(g, st, clients_stop.get_token());
      });
    }
    std::jthread owner_thread([&, o = std::move(owner), seed = r.next()]() mutable {
      owner_task(std::move(o), st, owner_stop.get_token(), rng(seed), quota);
    });
    for (std::uint32_t i = 0; i < setters; ++i) {
      threads.emplace_back([&, i, seed = r.next(), s = custody::Setter<reading>(store)] {
        setter_task(s, st, i, clients_stop.get_token(), rng(seed));
      });
    }
    if (clients_stop_first) {
      // The setters and readers are stopped first; the owner keeps going a little longer.
      std::this_thread::sleep_for(owner_exit_at / 2);
      clients_stop.request_stop();
      run.count_stop();
      std::this_thread::sleep_for(owner_exit_at / 2);
    } else {
      std::this_thread::sleep_for(owner_exit_at);
    }
    owner_stop.request_stop();
    run.count_stop();
    owner_thread.join();
    EXPECT_TRUE(store.owner_gone());
    if (r.one_in(2)) clients_stop.request_stop();
  }
  // Every set() answered exactly once, and with what the owner answered.
  std::uint64_t answered = 0;
  for (std::size_t id = 1; id < st.answers.size(); ++id) {
    const auto a = st.answers[id].load();
    const int res = st.results[id].load();
    if (res == 0) {
      EXPECT_EQ(a, unseen) << "request " << id << " was never sent but the owner saw it";
      continue;
    }
    ++answered;
    const auto s = static_cast<set_status>(res - 1);
    ++total.sets[res - 1];
    switch (s) {
      case set_status::accepted:
        EXPECT_TRUE(a == accepted_delivered || a == accepted_maybe) << "request " << id;
        break;
      case set_status::rejected:
        EXPECT_EQ(a, rejected_delivered) << "request " << id;
        break;
      case set_status::dropped:
        EXPECT_EQ(a, dropped) << "request " << id;
        break;
      case set_status::owner_gone:
        // Only the store's close answers owner_gone, and the owner never held this request.
        EXPECT_EQ(a, unseen) << "request " << id << " got owner_gone but the owner answered "
                             << int(a);
        break;
      case set_status::timeout:
      case set_status::stopped:
        // The caller gave up; the owner may have answered meanwhile, into the void.
        EXPECT_TRUE(a == unseen || a == accepted_lost || a == rejected_lost ||
                    a == accepted_maybe || a == dropped)
            << "request " << id << " got " << custody::to_string(s) << " but the owner answered "
            << int(a);
        break;
      case set_status::disconnected:
        ADD_FAILURE() << "request " << id << ": a local store never reports disconnected";
        break;
      case set_status::conflict:
        ADD_FAILURE() << "request " << id << ": only a conditional set reports conflict";
        break;
    }
    if (a == accepted_delivered) {
      EXPECT_EQ(s, set_status::accepted) << "request " << id;
    }
    if (a == rejected_delivered) {
      EXPECT_EQ(s, set_status::rejected) << "request " << id;
    }
  }
  // Subscriptions.
  EXPECT_EQ(st.published_ok.size(), st.last + 1);
  std::uint64_t lost = 0;
  for (const auto& log : st.logs) {
    stress::check_subscription(log, st.published_ok, st.last, lost);
    ++total.subscriptions[static_cast<int>(log.policy.kind())];
    total.values += log.got.size();
  }
  total.skipped += lost;
  total.publishes += st.last;
  EXPECT_EQ(store.get().n, st.last) << "get() after the owner is gone returns the last value";
  return st.ops.load() + answered;
}

}  // namespace

TEST(StoreStress, SettersSubscribersOwnerExitsAtRandom) {
  stress::runner run("StoreStress.SettersSubscribersOwnerExitsAtRandom");
  run.run([&](rng& r, std::uint64_t) { return round(r, run); });
  std::printf(
      "[stress] set results: %llu accepted, %llu rejected, %llu dropped, %llu owner_gone, "
      "%llu timeout, %llu stopped\n",
      (unsigned long long)total.sets[0], (unsigned long long)total.sets[1],
      (unsigned long long)total.sets[2], (unsigned long long)total.sets[3],
      (unsigned long long)total.sets[4], (unsigned long long)total.sets[5]);
  std::printf(
      "[stress] %llu publishes; subscriptions: %llu block, %llu latest, %llu buffer; %llu values "
      "received, %llu skipped and counted\n",
      (unsigned long long)total.publishes, (unsigned long long)total.subscriptions[0],
      (unsigned long long)total.subscriptions[1], (unsigned long long)total.subscriptions[2],
      (unsigned long long)total.values, (unsigned long long)total.skipped);
}
