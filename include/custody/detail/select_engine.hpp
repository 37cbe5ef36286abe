#pragma once
// The one algorithm behind every blocking operation: a plain send or receive is a select of
// one case. Its phases (select_run):
//
// 1. attempt: try every enabled case once, in a fresh random order. A triggered stop token is
//    one more case in that order, so among the ready cases (a fired stop included) the choice
//    is uniform, as for Go's closed `done` channel: a loop whose inputs never run dry still
//    stops within a few rounds.
// 2. spin: buffered channels only, keep attempting for a few microseconds.
// 3. arm: hook the stop token, check the deadline.
// 4. register: link a waiter on every case, each of which re-checks its channel.
// 5. wait: until one party settles the operation: a peer that moved a value (done), a channel
//    that may be ready again (notified: retry), close, the stop token or the deadline. Then
//    unregister everything and report, or go back to 1.
//
// A thread runs the phases in one call (run), sleeping in phase 5. An asynchronous operation
// runs the same phases (start), suspends in phase 5 instead of sleeping, and continues (resume)
// when its resumer has been called and has scheduled it; it never spins, so it never holds its
// executor's thread while it waits.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include "chan_core.hpp"
#include "parker.hpp"
#include "status.hpp"
#include "task_record.hpp"
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
  // For inspection only: the channel's registration (null: unnamed) and the case's direction.
  channel_registration* name = nullptr;
  bool sending = false;
};

template <class T>
op make_send_op(chan_core<T>* core, T* value) noexcept {
  op made{
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
  made.name = core->name_registration();
  made.sending = true;
  return made;
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
  made.name = core->name_registration();
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

/// A uniform pick in [0, n), by a multiply and a shift rather than a division (which costs more
/// than the rest of a select's shuffle); its bias, at most n / 2^32, is that of a modulo.
inline std::uint32_t random_below(std::uint32_t n) noexcept {
  return static_cast<std::uint32_t>(((next_random() >> 32) * n) >> 32);
}

/// What a peer touches when it settles a blocked operation: the state word and the waiters.
/// Kept together so that a hand-over moves as few cache lines between cores as possible;
/// callers place it next to the value slot when they can.
struct wait_state {
  static constexpr std::size_t inline_cases = 8;
  parker self;
  // Left unconstructed: a select makes each waiter as it registers the case (most selects
  // never register), and no one looks at a waiter that was never linked.
  union {
    waiter waiters[inline_cases];
  };
  wait_state() noexcept {}  // NOLINT(*-member-init): the waiters above, on purpose
};

/// How a select may end besides a channel case: its stop token, deadline, default case.
struct select_limits {
  bool nonblocking = false;
  const std::stop_token* stop = nullptr;
  std::optional<steady_clock::time_point> deadline;
  /// Asynchronous operations only: set (before the word is settled as stopped) when the
  /// operation is cancelled, so that a cancellation landing between two rounds is not lost.
  const atomic<bool>* cancelled = nullptr;
  /// Asynchronous operations never spin: their thread runs other operations meanwhile.
  bool may_spin = true;
};

/// A blocking select whose only enabled case receives from an unbuffered channel, besides a
/// stop token or a deadline (the seed's `for { select { case v := <-ch: ... case <-done: } }`),
/// is a plain receive: it waits in the channel's lone slot when the channel has one free.
/// Nothing when it cannot (or when the stop already fired: the select then chooses fairly
/// between the stop and a ready value): run the select.
inline std::optional<outcome> select_alone(op* ops, std::size_t n, const select_limits& limits) {
  if (limits.nonblocking || (limits.stop && limits.stop->stop_requested())) return std::nullopt;
  std::size_t only = outcome::none;
  for (std::size_t i = 0; i < n; ++i) {
    if (!ops[i].core) continue;
    if (only != outcome::none) return std::nullopt;
    only = i;
  }
  if (only == outcome::none || !ops[only].recv_alone) return std::nullopt;
  const std::optional<status> s = ops[only].recv_alone(ops[only], limits.stop, limits.deadline);
  if (!s) return std::nullopt;
  if (*s == status::stopped || *s == status::timeout) return outcome{outcome::none, *s};
  return outcome{only, *s};
}

/// The position a fired stop token takes in the random order of cases.
inline constexpr std::uint32_t stop_entry = static_cast<std::uint32_t>(-1);

/// One run of a select over `ops[0..n)`, phase by phase (see the top of this header).
/// `order` has room for n + 1 entries and `waiters` for n: the caller provides them so that a
/// select of a few cases, or a reused dynamic one, allocates nothing.
class select_run {
 public:
  select_run(parker& self, op* ops, std::size_t n, const select_limits& limits,
             std::uint32_t* order, waiter* waiters)
      : self_(self), ops_(ops), limits_(limits), order_(order), waiters_(waiters) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!ops[i].core) continue;
      order_[enabled_++] = static_cast<std::uint32_t>(i);
      hands_over_ |= ops[i].hands_over;
      named_ |= ops[i].name != nullptr;
    }
    stoppable_ = limits.stop && limits.stop->stop_possible();
    candidates_ = enabled_;
    if (stoppable_) order_[candidates_++] = stop_entry;
    if (enabled_ == 0 && !limits.nonblocking && !stoppable_ && !limits.deadline) {
      throw std::logic_error("custody: select has no enabled case, stop token or deadline");
    }
    // A lone unbuffered case is checked under its channel's lock while registering, so a
    // separate first attempt would only take that lock twice. An expired deadline or a fired
    // stop must still see a ready case: they attempt before registering.
    attempt_first_ =
        limits.nonblocking || enabled_ != 1 || !hands_over_ || stop_fired() || deadline_passed();
  }

  /// Runs the phases until a case commits. Throws what a case's move throws (after
  /// unregistering).
  outcome run() {
    for (;;) {
      if (const std::optional<outcome> done = advance()) {
        count_blocked_time();
        return *done;
      }
      std::uint32_t s;
      {
        std::optional<blocked_scope> blocked;
        s = self_.wait(limits_.deadline, !spun_, [&] { going_to_sleep(blocked); });
      }
      if (settled_with(s)) {
        count_blocked_time();
        return ready_;
      }
    }
  }

  /// The same for an asynchronous owner (a resumable_parker): the outcome, or nothing when the
  /// operation waits and its resumer will be called. Throws as run() does.
  std::optional<outcome> start() {
    for (;;) {
      if (std::optional<outcome> done = advance()) {
        count_blocked_time();
        return done;
      }
      fell_asleep();  // a suspended operation is asleep at once: it has no spin
      if (self_.suspend()) return std::nullopt;
      if (settled_with(self_.load())) {
        count_blocked_time();
        return ready_;
      }
    }
  }

  /// Goes on after the resumer was called: as start().
  std::optional<outcome> resume() {
    if (settled_with(self_.load())) {
      count_blocked_time();
      return ready_;
    }
    return start();
  }

  /// Unlinks every waiter without completing: the operation is abandoned after its word was
  /// settled (a peer that unlinked a waiter already has left it unlinked).
  void abandon() noexcept { unregister(); }

 private:
  // Phases 1 to 4: the outcome, or nothing when every case is registered and waiting.
  std::optional<outcome> advance() {
    for (;;) {
      if (preferred_ != outcome::none) {
        const status s = ops_[preferred_].attempt(ops_[preferred_]);
        if (s != status::would_block) return outcome{preferred_, s};
        preferred_ = outcome::none;
      }
      shuffle();
      if (attempt_first_ && attempt(false)) return ready_;
      attempt_first_ = true;
      // The default case fires only when no other case is ready (a fired stop was one).
      if (limits_.nonblocking) return outcome{outcome::none, status::would_block};
      if (spin()) return ready_;
      if (arm()) return ready_;
      switch (register_all()) {
        case registration::committed:
          return ready_;
        case registration::restart:
          continue;
        case registration::waiting:
          return std::nullopt;
      }
    }
  }

  enum class registration : std::uint8_t { waiting, committed, restart };

  bool stop_fired() const noexcept { return stoppable_ && limits_.stop->stop_requested(); }
  bool deadline_passed() const noexcept {
    return limits_.deadline && steady_clock::now() >= *limits_.deadline;
  }

  // Fisher-Yates: every permutation equally likely, so the first ready case found is a
  // uniform choice among the ready ones.
  void shuffle() noexcept {
    for (std::size_t i = candidates_; i > 1; --i) {
      std::swap(order_[i - 1], order_[random_below(static_cast<std::uint32_t>(i))]);
    }
  }

  // Phase 1: one attempt at every case, the stop token included, in the shuffled order.
  bool attempt(bool spinning) {
    for (std::size_t k = 0; k < candidates_; ++k) {
      const std::uint32_t i = order_[k];
      if (i == stop_entry) {
        if (!limits_.stop->stop_requested()) continue;
        ready_ = {outcome::none, status::stopped};
        return true;
      }
      op& o = ops_[i];
      const status s = spinning ? o.attempt_spinning(o) : o.attempt(o);
      if (s != status::would_block) {
        ready_ = {i, s};
        return true;
      }
    }
    return false;
  }

  // Phase 2, buffered channels only: a value or room usually appears within microseconds
  // while the peer runs on another core, and finding it by spinning costs the peer nothing,
  // whereas registering makes every peer operation notify us. Not once the deadline passed:
  // a zero timeout must not cost a whole spin. Growing pauses between attempts keep us off
  // the peer's cache lines so it can get ahead.
  bool spin() {
    spun_ = limits_.may_spin && !hands_over_ && enabled_ > 0 && !deadline_passed();
    return spun_ && spin_until([&] { return attempt(true); }, 16);
  }

  // Phase 3: the stop token will settle us from now on; a stop or deadline already past ends
  // the select here.
  bool arm() {
    self_.reset();
    if (stoppable_) {
      if (!on_stop_) on_stop_.emplace(*limits_.stop, stop_settler{&self_});
      // A stop that fired while the word was still settled from the last round was lost.
      if (limits_.stop->stop_requested()) {
        ready_ = {outcome::none, status::stopped};
        return true;
      }
    }
    // As for the stop: a cancellation that settled the word of the last round.
    if (limits_.cancelled && limits_.cancelled->load(std::memory_order_seq_cst)) {
      ready_ = {outcome::none, status::stopped};
      return true;
    }
    if (deadline_passed()) {
      ready_ = {outcome::none, status::timeout};
      return true;
    }
    return false;
  }

  // For inspection: the first time this select registers, it writes its note if someone can
  // read it (a named channel among its cases, or a named group's task). Nothing otherwise.
  void note_once() {
    if (noted_) return;
    noted_ = true;
    if (!named_ && !current_task.record) return;
    note_.reset(current_task.name);
    note_.cases = static_cast<std::uint32_t>(enabled_);
    note_ptr_ = &note_;
  }

  // The first time a noted select falls asleep: it is blocked from now on, for a snapshot and
  // for the time its channels count. Nothing to do for one nobody can inspect.
  void fell_asleep() noexcept {
    if (!note_ptr_ || slept_) return;
    slept_ = true;
    note_.fell_asleep(steady_clock::now());
  }

  // parker::wait's going_to_sleep: also marks the current task blocked, when it has a record,
  // in every channel case (in case order, so that a wait-for graph can draw an edge to each).
  void going_to_sleep(std::optional<blocked_scope>& blocked) {
    fell_asleep();
    if (!current_task.record) return;
    const steady_clock::time_point since = note_ptr_ ? note_.since() : steady_clock::now();
    if (enabled_ == 0) {
      blocked.emplace("wait for a stop or a deadline", nullptr, 0, 0, since);
      return;
    }
    waited_channel waits[task_record::kept_waits];
    std::size_t n = 0;
    for (std::size_t k = 0, seen = 0; seen < enabled_ && n < task_record::kept_waits; ++k) {
      if (!ops_[k].core) continue;
      ++seen;
      waits[n++] = {ops_[k].name, ops_[k].sending};
    }
    const char* operation = enabled_ != 1 ? "select of" : waits[0].sending ? "send on" : "recv on";
    blocked.emplace(operation, waits, n, enabled_, since);
  }

  // Once the select that fell asleep is over: each named channel it waited on adds the time
  // since then. The test is inlined; only a select that slept pays the call.
  void count_blocked_time() const noexcept {
    if (slept_) add_blocked_time();
  }
  [[gnu::noinline]] void add_blocked_time() const noexcept {
    const auto slept_for = steady_clock::now() - note_.since();
    for (std::size_t k = 0; k < candidates_; ++k) {
      if (order_[k] == stop_entry) continue;
      if (channel_registration* n = ops_[order_[k]].name) n->use.blocked_for(slept_for);
    }
  }

  // Phase 4: a waiter on every channel case; a channel may complete the case, or ask for a
  // new round, while we register.
  registration register_all() {
    std::optional<outcome> committed;
    bool restart = false;
    note_once();
    try {
      for (std::size_t k = 0; k < candidates_; ++k) {
        const std::uint32_t i = order_[k];
        if (i == stop_entry) continue;
        waiter& w = *::new (&waiters_[i]) waiter{};
        w.owner = &self_;
        w.index = i;
        w.note = note_ptr_;
        const enqueued e = ops_[i].enqueue(ops_[i], w);
        // Counted even when not left waiting: a buffered channel links `w` before re-checking.
        registered_ = k + 1;
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
      ready_ = *committed;
      return registration::committed;
    }
    if (restart) {
      unregister();
      return registration::restart;
    }
    return registration::waiting;
  }

  // `settled_by_peer`: the case whose peer (or notifier) already unlinked it.
  void unregister(std::size_t settled_by_peer = outcome::none) noexcept {
    for (std::size_t k = 0; k < registered_; ++k) {
      const std::uint32_t i = order_[k];
      if (i == stop_entry || i == settled_by_peer) continue;
      ops_[i].dequeue(ops_[i], waiters_[i]);
    }
    registered_ = 0;
  }

  // Phase 5, once the word is settled as `s`: true with the outcome, false to go round again.
  bool settled_with(std::uint32_t s) noexcept {
    const std::uint32_t index = parker::index(s);
    const settled how = parker::how(s);
    const bool unlinked_by_peer =
        how == settled::done || how == settled::closed || how == settled::notified;
    unregister(unlinked_by_peer ? index : outcome::none);
    switch (how) {
      case settled::done:
        // A peer moved the value: this thread completed the case, and counts it.
        if (channel_registration* n = ops_[index].name) {
          n->use.completed(ops_[index].sending, ops_[index].hands_over);
        }
        ready_ = {index, status::ok};
        return true;
      case settled::closed:
        ready_ = {index, status::closed};
        return true;
      case settled::stopped:
        ready_ = {outcome::none, status::stopped};
        return true;
      case settled::timed_out:
        ready_ = {outcome::none, status::timeout};
        return true;
      case settled::notified:
        preferred_ = index;
        return false;
      case settled::restart:
        return false;
    }
    return false;
  }

  parker& self_;
  op* const ops_;
  const select_limits& limits_;
  std::uint32_t* const order_;
  waiter* const waiters_;
  std::size_t enabled_ = 0;     // channel cases, first in order_
  std::size_t candidates_ = 0;  // enabled_, plus the stop entry when there is a token
  std::size_t registered_ = 0;  // entries of order_ that may hold a linked waiter
  bool hands_over_ = false;
  bool named_ = false;  // a case's channel is named
  bool stoppable_ = false;
  bool attempt_first_ = true;
  bool spun_ = false;
  std::size_t preferred_ = outcome::none;  // the case whose channel notified us
  outcome ready_{outcome::none, status::would_block};
  bool noted_ = false;
  bool slept_ = false;  // a noted select that fell asleep: count_blocked_time() adds
  block_note note_;
  const block_note* note_ptr_ = nullptr;  // &note_ once written
  // Declared after everything it may touch: its destructor waits for a running callback.
  std::optional<std::stop_callback<stop_settler>> on_stop_;
};

/// Runs a select over `ops[0..n)`. Disabled cases (null core) never fire. With
/// `limits.nonblocking`, returns {none, would_block} when no case is ready.
/// Throws std::logic_error when nothing could ever complete it; rethrows a throwing move.
inline outcome run_select(wait_state& local, op* ops, std::size_t n, const select_limits& limits) {
  constexpr std::size_t inline_cases = wait_state::inline_cases;
  std::uint32_t order_inline[inline_cases + 1];
  if (n <= inline_cases) {
    // The select makes each waiter in that storage as it registers (wait_state).
    auto* waiters = local.waiters;  // NOLINT(cppcoreguidelines-pro-type-union-access)
    return select_run(local.self, ops, n, limits, order_inline, waiters).run();
  }
  std::vector<std::uint32_t> order(n + 1);
  std::vector<waiter> waiters(n);
  return select_run(local.self, ops, n, limits, order.data(), waiters.data()).run();
}

}  // namespace custody::detail
