// libFuzzer target: the input is a sequence of store operations (publish, update, subscribe
// with every policy, receive, unsubscribe, set requests answered in every way, close), checked
// against a sequential model of the store.
//
// The owner's stop token is always triggered, so a publish never waits for a full
// policy::block subscriber: it reports stopped and that subscriber misses the update, which the
// model predicts. set() calls that must wait for an answer run on a helper thread while this
// thread, as the owner, takes the request and answers it; everything else runs on this thread.
//
// Model of a subscription: the values it holds (policy::block: up to n, the owner then gives
// up on it; policy::latest and policy::buffer(n): the newest 1 or n, older ones lost), and for
// each the updates lost before it: right after a receive, missed() must count exactly the
// updates lost before the values received so far. A set request whose caller gave up while it
// waited in the channel never reaches the owner: receives skip it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <custody/store.hpp>

#include "fuzz_support.hpp"

using namespace std::chrono_literals;
using custody::policy;
using custody::set_status;
using custody::status;
using fuzz::bytes;

namespace {

// A store value with a heap part, so that leaks and double frees show under AddressSanitizer.
struct value {
  int n = 0;
  std::string text = "0";
  explicit value(int x = 0) : n(x), text(std::to_string(x)) {}
  bool ok() const { return text == std::to_string(n); }
};

struct sub_model {
  /// A value in the subscription, and the updates lost before it that its receive counts.
  struct held_value {
    int n;
    std::uint64_t lost_before;
  };
  custody::Subscription<value> sub;
  policy pol = policy::latest();
  std::deque<held_value> held;
  std::uint64_t carry = 0;    // updates lost, to be counted with the next value to arrive
  std::uint64_t counted = 0;  // updates lost before the values received so far
  std::uint64_t taken = 0;    // what take_missed() returned so far

  bool full() const { return held.size() >= pol.capacity(); }
  /// The owner offers update `n`. False if a block subscription is full: the publish gives up
  /// on it (the owner's stop token has fired), and it misses the update.
  bool offer(int n) {
    if (full()) {
      if (pol.lossless()) {
        ++carry;
        return false;
      }
      // The oldest is overwritten; the value after it counts the loss.
      const std::uint64_t lost = held.front().lost_before + 1;
      held.pop_front();
      if (held.empty()) {
        carry += lost;
      } else {
        held.front().lost_before += lost;
      }
    }
    held.push_back({n, std::exchange(carry, 0)});
    return true;
  }
};

struct store_model {
  explicit store_model(std::size_t request_capacity)
      : made(custody::make_store<value>(value(0), custody::store_options{request_capacity})),
        owner(std::move(made.owner)),
        store(made.store),
        request_capacity(request_capacity) {
    always.request_stop();
    owner.set_stop_token(always.get_token());
  }

  custody::store_pair<value> made;
  custody::Owner<value> owner;
  custody::Store<value> store;
  std::stop_source always;
  std::size_t request_capacity;
  int current = 0;
  bool closed = false;
  std::vector<sub_model> subs;
  std::deque<int> abandoned;  // requests in the channel whose callers gave up
  int counter = 0;

  /// What a publish of `n` returns, applied to the model.
  status commit(int n) {
    current = n;
    bool all = true;
    for (auto& s : subs) all &= s.offer(n);
    return all ? status::ok : status::stopped;
  }

  void check() {
    const value v = store.get();
    FUZZ_CHECK(v.ok() && v.n == current);
    FUZZ_CHECK(store.owner_gone() == closed);
    if (owner) FUZZ_CHECK(owner.is_closed() == closed);
    if (!closed) {
      FUZZ_CHECK(owner.value().n == current);
      FUZZ_CHECK(owner.subscriber_count() == subs.size());
    }
  }

  /// Answers request `r` (whose value is `asked`) the way `how` says; returns the answer the
  /// caller must see if it still waits.
  std::optional<int> answer(custody::SetRequest<value>& r, int asked, unsigned how,
                            set_status& expect, bool waiting) {
    FUZZ_CHECK(r && r.value().n == asked && r.value().ok());
    FUZZ_CHECK(r.abandoned() == !waiting);
    switch (how % 4) {
      case 0: {  // accept as asked
        const status want = commit(asked);
        FUZZ_CHECK(owner.accept(std::move(r)) == want);
        expect = set_status::accepted;
        return asked;
      }
      case 1: {  // accept an adjusted value
        const int adjusted = asked + 1000000;
        const status want = commit(adjusted);
        FUZZ_CHECK(owner.accept(std::move(r), value(adjusted)) == want);
        expect = set_status::accepted;
        return adjusted;
      }
      case 2:
        FUZZ_CHECK(std::move(r).reject(std::errc::invalid_argument, "no") == waiting);
        expect = set_status::rejected;
        return std::nullopt;
      default:
        r = custody::SetRequest<value>();  // dropped unanswered
        expect = set_status::dropped;
        return std::nullopt;
    }
  }

  void step(bytes& in) {
    const unsigned op = in.below(11);
    // A destroyed owner has no operations left; consumers still have theirs.
    if (!owner && (op <= 2 || op == 8 || op >= 10)) return;
    switch (op) {
      case 0:
      case 1: {  // publish
        const int n = ++counter;
        const status want = closed ? status::closed : commit(n);
        FUZZ_CHECK(owner.publish(value(n)) == want);
        break;
      }
      case 2: {  // update, which may decline to publish
        const int n = ++counter;
        const bool publish = in.flag();
        const int before = current;
        const status want = closed ? status::closed : !publish ? status::ok : commit(n);
        FUZZ_CHECK(owner.update([&](value& v) {
          FUZZ_CHECK(v.n == before);  // a copy of the current value
          v = value(n);
          return publish;
        }) == want);
        break;
      }
      case 3: {  // subscribe
        const std::uint8_t b = in.next();
        policy p = (b & 3) == 0   ? policy::block(1 + ((b >> 2) & 3))
                   : (b & 3) == 1 ? policy::latest()
                                  : policy::buffer(1 + ((b >> 2) & 7));
        p = p.with_current(b & 0x80);
        sub_model m;
        m.pol = p;
        m.sub = store.subscribe(p);
        if (p.current_first()) m.held.push_back({current, 0});
        if (closed) {
          FUZZ_CHECK(m.sub.is_closed());
        }
        subs.push_back(std::move(m));
        break;
      }
      case 4: {  // unsubscribe
        if (!subs.empty()) subs.erase(subs.begin() + in.below(subs.size()));
        break;
      }
      case 5:
      case 6: {  // receive
        if (subs.empty()) break;
        sub_model& m = subs[in.below(subs.size())];
        const bool try_only = in.flag();
        auto r = try_only ? m.sub.try_recv() : m.sub.recv_for(0ms);
        if (m.held.empty()) {
          FUZZ_CHECK(!r);
          FUZZ_CHECK(r.status() == (closed     ? status::closed
                                    : try_only ? status::would_block
                                               : status::timeout));
        } else {
          FUZZ_CHECK(r && r->ok() && r->n == m.held.front().n);
          m.counted += m.held.front().lost_before;
          m.held.pop_front();
          // Every update lost before this one is counted now.
          if (in.flag()) {
            FUZZ_CHECK(m.sub.missed() == m.counted - m.taken);
          } else {
            const std::uint64_t t = m.sub.take_missed();
            FUZZ_CHECK(t == m.counted - m.taken);
            m.taken += t;
          }
        }
        break;
      }
      case 7: {  // a set() whose caller gives up before the owner looks (nobody gets the answer)
        const int n = ++counter;
        if (closed) {
          FUZZ_CHECK(store.set_for(value(n), 50us).status() == set_status::owner_gone);
          break;
        }
        auto res = store.set_for(value(n), 50us);
        FUZZ_CHECK(res.status() == set_status::timeout);
        // The request went into the channel if there was room for it, unless the deadline
        // passed before it was sent (on a busy machine 50 us may pass first): ask the channel.
        const std::size_t queued = owner.requests().size();
        FUZZ_CHECK(queued == abandoned.size() ||
                   (queued == abandoned.size() + 1 && queued <= request_capacity));
        if (queued > abandoned.size()) abandoned.push_back(n);
        break;
      }
      case 8: {             // the owner looks for requests: those nobody waits for are skipped
        if (closed) break;  // close answered them
        auto r = owner.requests().try_recv();
        FUZZ_CHECK(!r && r.status() == status::would_block);
        FUZZ_CHECK(owner.requests().size() == 0);  // the receive let go of the abandoned ones
        abandoned.clear();
        break;
      }
      case 9: {  // a set() that waits: a helper thread asks, this thread answers as the owner
        const int n = ++counter;
        if (closed) {
          FUZZ_CHECK(store.set(value(n)).status() == set_status::owner_gone);
          break;
        }
        // The receive below skips the earlier requests, whose callers gave up.
        abandoned.clear();
        std::optional<custody::set_result<value>> res;
        std::thread caller([&] { res.emplace(store.set(value(n))); });
        auto r = owner.requests().recv();
        FUZZ_CHECK(r);
        set_status expect = set_status::owner_gone;
        const std::optional<int> stored = answer(*r, n, in.next(), expect, true);
        caller.join();
        FUZZ_CHECK(res && res->status() == expect);
        if (stored) FUZZ_CHECK(res->value().n == *stored && res->value().ok());
        break;
      }
      default: {  // close (or destroy) the owner
        if (closed) break;
        if (in.flag()) {
          FUZZ_CHECK(owner.close());
          FUZZ_CHECK(!owner.close());
        } else {
          owner = custody::Owner<value>();  // move-assigning closes the store
        }
        closed = true;
        abandoned.clear();  // answered owner_gone, into the void
        break;
      }
    }
    check();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytes in(data, size);
  std::optional<store_model> m;
  m.emplace(in.below(5));
  while (!in.empty()) {
    const std::uint8_t b = in.next();
    if (b == 0xFF) {
      m.emplace(in.below(5));  // a fresh store; the old one goes with its subscriptions
      continue;
    }
    m->step(in);
    if (m->closed) {
      const value v = m->store.get();
      FUZZ_CHECK(v.n == m->current && m->store.owner_gone());
    }
  }
  return 0;
}
