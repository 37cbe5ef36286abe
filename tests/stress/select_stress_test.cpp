// Stress: threads running selects over random mixes of cases (receive, send, stop, timeout,
// default; disabled cases; unbuffered and buffered channels; a throwing-move type now and then)
// on a few shared channels, beside plain senders and receivers, with a stop and closes at random
// moments. Ends every round with conservation checks.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>

#include "stress_support.hpp"
#include "stress_values.hpp"

using namespace std::chrono_literals;
using custody::Channel;
using custody::status;

namespace {

using stress::id;
using stress::kind;
using stress::ledger;
using stress::rng;

constexpr std::uint32_t max_channels = 5;

template <class T>
struct shared {
  explicit shared(ledger& b) : book(b) {}
  std::vector<Channel<T>> channels;
  ledger& book;
  std::stop_source stop;
  std::atomic<bool> all_closed{false};
  std::atomic<std::uint64_t> ops{0};
};

// A source of this thread's values: p:0, p:1, ... Each value is offered until it is sent or
// given up (then it stays with us: kept).
template <class T>
class outbox {
 public:
  outbox(std::uint32_t p, std::uint32_t quota, ledger& book) : p_(p), quota_(quota), book_(book) {}
  ~outbox() {
    // Whatever we still hold was never sent.
    if (current_) book_.record(id{p_, seq_}, ledger::kept);
  }
  /// The value to offer next, or nullptr when the quota is done.
  T* current() {
    if (!current_ && next_ < quota_) {
      seq_ = next_++;
      kind<T>::emplace(current_, p_, seq_);
    }
    return current_ ? &*current_ : nullptr;
  }
  /// The offered value was sent (ok) or not; checks it was moved from exactly when sent.
  void settle(bool sent) {
    const id now = kind<T>::of(*current_);
    if (sent) {
      EXPECT_EQ(now, id{}) << "a committed send case did not move the value";
      book_.record(id{p_, seq_}, ledger::sent);
      current_.reset();
    } else {
      EXPECT_EQ(now, (id{p_, seq_})) << "a send case that did not commit touched the value";
    }
  }
  void give_up() {
    if (!current_) return;
    book_.record(id{p_, seq_}, ledger::kept);
    current_.reset();
  }

 private:
  std::uint32_t p_, quota_;
  ledger& book_;
  std::uint32_t seq_ = 0, next_ = 0;
  std::optional<T> current_;
};

// One select over a random mix: two receive cases, two send cases (the same value: only one
// of them can take it), stop, timeout and default, each enabled or not at random.
template <class T>
std::uint64_t selector(shared<T>& s, std::uint32_t p, std::uint32_t quota, rng r) {
  outbox<T> out(p, quota, s.book);
  const auto n = static_cast<std::uint32_t>(s.channels.size());
  std::uint64_t ops = 0;
  const std::stop_token stop = s.stop.get_token();
  for (std::uint32_t i = 0; i < 4 * quota; ++i) {
    if (s.all_closed.load(std::memory_order_relaxed) && r.one_in(4)) break;
    T* value = out.current();
    const std::uint32_t ch[4] = {
        static_cast<std::uint32_t>(r.below(n)), static_cast<std::uint32_t>(r.below(n)),
        static_cast<std::uint32_t>(r.below(n)), static_cast<std::uint32_t>(r.below(n))};
    bool on[7];
    for (bool& b : on) b = r.one_in(2);
    on[2] = on[2] && value;
    on[3] = on[3] && value;
    // Something must end the select: a channel case (every channel is closed in the end), a
    // timeout or a default. A stop case alone may wait for a stop that never comes.
    if (!(on[0] || on[1] || on[2] || on[3] || on[5] || on[6])) on[5] = true;
    const auto timeout = std::chrono::microseconds(r.below(400));
    // A placeholder to bind the disabled send cases to.
    T dummy = kind<T>::make(stress::none - 1, stress::none - 1);
    T& v = value ? *value : dummy;

    std::optional<id> got;
    int fired = -1;
    auto take = [&](int index) {
      return [&, index](T&& x) { got = kind<T>::of(x), fired = index; };
    };
    auto sent = [&](int index) { return [&, index] { fired = index; }; };
    auto closed = [&](int index) { return [&, index] { fired = index; }; };
    custody::selected sel{};
    ++ops;
    try {
      sel = custody::select(custody::on_recv(s.channels[ch[0]], take(0), closed(0)).when(on[0]),
                            custody::on_recv(s.channels[ch[1]], take(1), closed(1)).when(on[1]),
                            custody::on_send(s.channels[ch[2]], v, sent(2), closed(2)).when(on[2]),
                            custody::on_send(s.channels[ch[3]], v, sent(3), closed(3)).when(on[3]),
                            custody::on_stop(stop, [&] { fired = 4; }).when(on[4]),
                            custody::on_timeout(timeout, [&] { fired = 5; }).when(on[5]),
                            custody::on_default([&] { fired = 6; }).when(on[6]));
    } catch (const stress::fragile_error&) {
      // A move threw (our send case's, or a waiting sender's in an unbuffered hand-over to
      // our receive case): nothing committed, our value is still ours.
      if (value) out.settle(false);
      continue;
    }
    EXPECT_EQ(static_cast<int>(sel.index), fired) << "the callable of another case ran";
    EXPECT_LT(sel.index, 7u);
    if (sel.index >= 7) break;
    EXPECT_TRUE(on[sel.index]) << "disabled case " << sel.index << " fired";
    switch (sel.index) {
      case 0:
      case 1:
        if (sel.status == status::ok) {
          EXPECT_TRUE(got.has_value());
          if (got) s.book.receive(*got);
        } else {
          EXPECT_EQ(sel.status, status::closed);
          EXPECT_TRUE(s.channels[ch[sel.index]].is_closed());
        }
        if (value) out.settle(false);
        break;
      case 2:
      case 3:
        EXPECT_TRUE(sel.status == status::ok || sel.status == status::closed);
        out.settle(sel.status == status::ok);
        if (sel.status == status::closed && r.one_in(2)) out.give_up();
        break;
      case 4:
        EXPECT_EQ(sel.status, status::stopped);
        EXPECT_TRUE(stop.stop_requested());
        if (value) out.settle(false);
        break;
      case 5:
        EXPECT_EQ(sel.status, status::timeout);
        if (value) out.settle(false);
        break;
      case 6:
        EXPECT_EQ(sel.status, status::would_block);
        if (value) out.settle(false);
        break;
    }
    EXPECT_EQ(kind<T>::of(dummy), (id{stress::none - 1, stress::none - 1}))
        << "a disabled send case moved its value";
    if (value && r.one_in(16)) out.give_up();
    if (sel.index == 4 && r.one_in(2)) break;
  }
  return ops;
}

// A plain receiver on one channel, until it is closed and drained or the stop fires.
template <class T>
std::uint64_t drainer(shared<T>& s, std::uint32_t c, rng r) {
  std::uint64_t ops = 0;
  custody::Receiver<T> rx = s.channels[c];
  for (;;) {
    ++ops;
    custody::received<T> got;
    try {
      got = r.one_in(2) ? rx.recv(s.stop.get_token())
                        : rx.recv_for(std::chrono::microseconds(r.below(500)));
    } catch (const stress::fragile_error&) {
      continue;  // a waiting sender's move threw in an unbuffered hand-over: it keeps the value
    }
    if (got) {
      s.book.receive(kind<T>::of(*got));
    } else if (got.status() == status::closed || got.status() == status::stopped) {
      return ops;
    }
  }
}

template <class T>
std::uint64_t round(rng& r, stress::runner& run) {
  static constexpr std::size_t capacities[] = {0, 0, 1, 2, 4, 32};
  const auto nchannels = static_cast<std::uint32_t>(r.between(1, max_channels));
  const auto selectors = static_cast<std::uint32_t>(r.between(2, 5));
  const auto drainers = static_cast<std::uint32_t>(r.below(3));
  const auto quota = static_cast<std::uint32_t>(r.between(1, 800));
  const bool stop_early = r.one_in(3);
  const auto stop_at = std::chrono::microseconds(r.below(20'000));
  const auto limit = std::chrono::milliseconds(r.between(10, 150));

  ledger book(selectors, quota);
  shared<T> s(book);
  for (std::uint32_t i = 0; i < nchannels; ++i) s.channels.emplace_back(r.pick(capacities));
  {
    std::vector<std::jthread> threads;
    std::atomic<std::uint32_t> running{selectors};
    for (std::uint32_t p = 0; p < selectors; ++p) {
      threads.emplace_back([&, p, seed = r.next()] {
        s.ops += selector<T>(s, p, quota, rng(seed));
        running.fetch_sub(1);
      });
    }
    for (std::uint32_t d = 0; d < drainers; ++d) {
      threads.emplace_back([&, c = static_cast<std::uint32_t>(r.below(nchannels)),
                            seed = r.next()] { s.ops += drainer<T>(s, c, rng(seed)); });
    }
    const auto start = stress::clock::now();
    auto wait_until = [&](auto when) {
      while (stress::clock::now() < start + when && running.load() > 0) {
        std::this_thread::sleep_for(100us);
      }
    };
    if (stop_early) {
      wait_until(stop_at);
      s.stop.request_stop();
      run.count_stop();
    }
    // Close the channels one by one at random moments; blocked selects commit closed.
    std::vector<std::uint32_t> order(nchannels);
    for (std::uint32_t i = 0; i < nchannels; ++i) order[i] = i;
    for (std::uint32_t i = nchannels; i > 1; --i) std::swap(order[i - 1], order[r.below(i)]);
    for (std::uint32_t k = 0; k < nchannels; ++k) {
      wait_until(limit * (1 + k) / nchannels);
      if (s.channels[order[k]].close()) run.count_stop();
    }
    s.all_closed = true;
  }
  for (auto& ch : s.channels) {
    for (;;) {
      auto got = ch.try_recv();
      if (!got) {
        EXPECT_EQ(got.status(), status::closed);
        break;
      }
      book.receive(kind<T>::of(*got));
    }
  }
  book.check(kind<T>::name);
  return s.ops.load();
}

}  // namespace

TEST(SelectStress, RandomMixesOfCases) {
  stress::runner run("SelectStress.RandomMixesOfCases");
  run.run([&](rng& r, std::uint64_t) -> std::uint64_t {
    return stress::round_of_random_kind(r, [&]<class T>() { return round<T>(r, run); });
  });
}
