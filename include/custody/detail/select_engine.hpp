#pragma once
// The one algorithm behind every blocking operation: a plain send or receive is a select of
// one case.
//
// 1. Try every enabled case once, in a fresh random order (uniform choice among ready cases).
// 2. Nothing ready: register a waiter on every case, each of which re-checks its channel.
// 3. Wait until one party settles the operation: a peer that moved a value (done), a channel
//    that may be ready again (notified: retry), close, the stop token or the deadline.
// 4. Unregister everything and report, or go back to 1.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include "../status.hpp"
#include "chan_core.hpp"
#include "parker.hpp"
#include "waiter.hpp"

namespace custody::detail {

/// One case of a select, with the value's type erased.
struct op {
  void* core = nullptr;  // chan_core<T>*; null for a disabled case
  void* slot = nullptr;  // send: T*; receive: std::optional<T>*
  bool hands_over = false;
  status (*attempt)(op&) = nullptr;
  status (*attempt_spinning)(op&) = nullptr;
  enqueued (*enqueue)(op&, waiter&) = nullptr;
  void (*dequeue)(op&, waiter&) noexcept = nullptr;
  // Receive from an unbuffered channel only: chan_core::recv_alone.
  std::optional<status> (*recv_alone)(op&, const std::stop_token*,
                                      std::optional<steady_clock::time_point>) = nullptr;
};

template <class T>
op make_send_op(chan_core<T>* core, T* value) noexcept {
  return {
      core,
      value,
      core->hands_over(),
      [](op& o) { return static_cast<chan_core<T>*>(o.core)->try_send(*static_cast<T*>(o.slot)); },
      [](op& o) {
        return static_cast<chan_core<T>*>(o.core)->try_send_spinning(*static_cast<T*>(o.slot));
      },
      [](op& o, waiter& w) {
        return static_cast<chan_core<T>*>(o.core)->enqueue_send(w, *static_cast<T*>(o.slot));
      },
      [](op& o, waiter& w) noexcept { static_cast<chan_core<T>*>(o.core)->dequeue_send(w); }};
}

template <class T>
op make_recv_op(chan_core<T>* core, std::optional<T>* out) noexcept {
  op made{core,
          out,
          core->hands_over(),
          [](op& o) {
            return static_cast<chan_core<T>*>(o.core)->try_recv(
                *static_cast<std::optional<T>*>(o.slot));
          },
          [](op& o) {
            return static_cast<chan_core<T>*>(o.core)->try_recv(
                *static_cast<std::optional<T>*>(o.slot));
          },
          [](op& o, waiter& w) {
            return static_cast<chan_core<T>*>(o.core)->enqueue_recv(
                w, *static_cast<std::optional<T>*>(o.slot));
          },
          [](op& o, waiter& w) noexcept { static_cast<chan_core<T>*>(o.core)->dequeue_recv(w); }};
  if (core->hands_over()) {
    made.recv_alone = [](op& o, const std::stop_token* stop,
                         std::optional<steady_clock::time_point> deadline) {
      return static_cast<chan_core<T>*>(o.core)->recv_alone(*static_cast<std::optional<T>*>(o.slot),
                                                            stop, deadline);
    };
  }
  return made;
}

/// What a select ended with: the case that committed, or `none` for stop, timeout, default.
struct outcome {
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
  std::size_t index;
  custody::status status;
};

/// Per-thread generator for the random case order: cheap and never shared.
inline std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state) ^
      static_cast<std::uint64_t>(steady_clock::now().time_since_epoch().count());
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

/// What a peer touches when it settles a blocked operation: the state word and the waiters.
/// Kept together so that a hand-over moves as few cache lines between cores as possible;
/// callers place it next to the value slot when they can.
struct wait_state {
  static constexpr std::size_t inline_cases = 8;
  parker self;
  waiter waiters[inline_cases];
};

/// A blocking select whose only enabled case receives from an unbuffered channel, besides a
/// stop token or a deadline (the seed's `for { select { case v := <-ch: ... case <-done: } }`),
/// is a plain receive: it waits in the channel's lone slot when the channel has one free.
/// Nothing when it cannot: run the select.
inline std::optional<outcome> select_alone(op* ops, std::size_t n, bool nonblocking,
                                           const std::stop_token* stop,
                                           std::optional<steady_clock::time_point> deadline) {
  if (nonblocking) return std::nullopt;
  std::size_t only = outcome::none;
  for (std::size_t i = 0; i < n; ++i) {
    if (!ops[i].core) continue;
    if (only != outcome::none) return std::nullopt;
    only = i;
  }
  if (only == outcome::none || !ops[only].recv_alone) return std::nullopt;
  const std::optional<status> s = ops[only].recv_alone(ops[only], stop, deadline);
  if (!s) return std::nullopt;
  if (*s == status::stopped || *s == status::timeout) return outcome{outcome::none, *s};
  return outcome{only, *s};
}

/// Runs a select over `ops[0..n)`. Disabled cases (null core) never fire. `stop` and
/// `deadline` are optional. With `nonblocking`, returns {none, would_block} when no case is ready.
/// Throws std::logic_error when nothing could ever complete it; rethrows a throwing move.
inline outcome run_select(wait_state& local, op* ops, std::size_t n, bool nonblocking,
                          const std::stop_token* stop,
                          std::optional<steady_clock::time_point> deadline) {
  // Small selects keep their bookkeeping on the stack.
  constexpr std::size_t inline_cases = wait_state::inline_cases;
  std::uint32_t order_inline[inline_cases];
  parker& self = local.self;
  waiter* const waiters_inline = local.waiters;
  std::vector<std::uint32_t> order_heap;
  std::vector<waiter> waiters_heap;
  std::uint32_t* order = order_inline;
  waiter* waiters = waiters_inline;
  if (n > inline_cases) {
    order_heap.resize(n);
    waiters_heap.resize(n);
    order = order_heap.data();
    waiters = waiters_heap.data();
  }
  std::size_t enabled = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (ops[i].core) order[enabled++] = static_cast<std::uint32_t>(i);
  }
  const bool stoppable = stop && stop->stop_possible();
  if (enabled == 0 && !nonblocking && !stoppable && !deadline) {
    throw std::logic_error("custody: select has no enabled case, stop token or deadline");
  }

  // A lone unbuffered case is checked under its channel's lock while registering, so a
  // separate first attempt would only take that lock twice.
  bool hands_over = false;
  for (std::size_t k = 0; k < enabled; ++k) hands_over |= ops[order[k]].hands_over;
  // An expired deadline must still see a ready case: it returns before registering.
  bool attempt_first = nonblocking || enabled != 1 || !hands_over ||
                       (stoppable && stop->stop_requested()) ||
                       (deadline && steady_clock::now() >= *deadline);

  // Declared after `self`: its destructor waits for a running callback, so `self` outlives it.
  std::optional<std::stop_callback<stop_settler>> on_stop;
  std::size_t preferred = outcome::none;
  for (;;) {
    if (preferred != outcome::none) {
      const status s = ops[preferred].attempt(ops[preferred]);
      if (s != status::would_block) return {preferred, s};
    }
    // Fisher-Yates: every permutation equally likely.
    for (std::size_t i = enabled; i > 1; --i) {
      std::swap(order[i - 1], order[next_random() % i]);
    }
    std::optional<outcome> ready;
    auto attempt_all = [&](bool spinning) {
      for (std::size_t k = 0; k < enabled; ++k) {
        op& o = ops[order[k]];
        const status s = spinning ? o.attempt_spinning(o) : o.attempt(o);
        if (s != status::would_block) {
          ready = outcome{order[k], s};
          return true;
        }
      }
      return false;
    };
    if (attempt_first && attempt_all(false)) return *ready;
    attempt_first = true;
    if (nonblocking) {
      // The default case fires only when no other case is ready: a triggered stop is.
      if (stoppable && stop->stop_requested()) return {outcome::none, status::stopped};
      return {outcome::none, status::would_block};
    }
    // Buffered channels only: a value or room usually appears within microseconds while the
    // peer runs on another core, and finding it by spinning costs the peer nothing, whereas
    // registering makes every peer operation notify us.
    // (Not when the deadline has passed: a zero timeout must not cost a whole spin.)
    const bool spun = !hands_over && enabled > 0 && !(deadline && steady_clock::now() >= *deadline);
    // Growing pauses between attempts keep us off the peer's cache lines so it can get ahead.
    if (spun && spin_until([&] { return attempt_all(true); }, 16)) return *ready;

    self.reset();
    if (stoppable) {
      if (!on_stop) on_stop.emplace(*stop, stop_settler{&self});
      // A stop that fired while the word was still settled from the last round was lost.
      if (stop->stop_requested()) return {outcome::none, status::stopped};
    }
    if (deadline && steady_clock::now() >= *deadline) return {outcome::none, status::timeout};

    std::size_t registered = 0;
    // `settled_by_peer`: the case whose peer (or notifier) already unlinked it.
    auto unregister = [&](std::size_t settled_by_peer = outcome::none) noexcept {
      for (std::size_t k = 0; k < registered; ++k) {
        if (order[k] == settled_by_peer) continue;
        op& o = ops[order[k]];
        o.dequeue(o, waiters[order[k]]);
      }
      registered = 0;
    };
    std::optional<outcome> committed;
    bool restart = false;
    try {
      for (std::size_t k = 0; k < enabled; ++k) {
        const std::uint32_t i = order[k];
        waiter& w = waiters[i];
        w = waiter{};
        w.owner = &self;
        w.index = i;
        const enqueued e = ops[i].enqueue(ops[i], w);
        // Counted even when not left waiting: a buffered channel links `w` before re-checking.
        ++registered;
        if (e == enqueued::waiting) continue;
        if (e == enqueued::committed_ok) committed = outcome{i, status::ok};
        if (e == enqueued::committed_closed) committed = outcome{i, status::closed};
        if (e == enqueued::restart) restart = true;
        break;
      }
    } catch (...) {
      unregister();
      throw;
    }
    if (committed) {
      unregister(committed->index);  // completed while registering: never linked
      return *committed;
    }
    if (restart) {
      unregister();
      continue;
    }

    const std::uint32_t s = self.wait(deadline, !spun);
    const std::uint32_t index = parker::index(s);
    const settled how = parker::how(s);
    const bool unlinked_by_peer =
        how == settled::done || how == settled::closed || how == settled::notified;
    unregister(unlinked_by_peer ? index : outcome::none);
    switch (how) {
      case settled::done:
        return {index, status::ok};
      case settled::closed:
        return {index, status::closed};
      case settled::stopped:
        return {outcome::none, status::stopped};
      case settled::timed_out:
        return {outcome::none, status::timeout};
      case settled::notified:
        preferred = index;
        break;
      case settled::restart:
        break;
    }
  }
}

}  // namespace custody::detail
