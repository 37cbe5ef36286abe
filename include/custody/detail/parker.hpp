#pragma once
// The state word of one blocked operation (a send, a receive or a whole select), and the means
// to sleep on it and wake it.
//
// Exactly one party settles a blocked operation: a peer that hands it a value, a notifier, the
// stop callback, the deadline, or the waiting thread itself. Each of them must win one
// compare-exchange from `waiting`; everyone else finds the word taken and moves on. That single
// compare-exchange is why a value can never be both delivered and lost to a racing timeout.
//
// The owner of a word is either a thread, which sleeps on it, or an asynchronous operation
// (a coroutine's or a callback's), which is resumed through its executor. Both wait the same
// way: register, then mark the word (`sleeping` or `resumes`) with one compare-exchange that
// fails if the word was settled meanwhile. Whoever settles a marked word wakes its owner: a
// futex wake for a thread, the owner's resumer for an asynchronous operation.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "futex.hpp"
#include "interleave.hpp"
#include "spin.hpp"

namespace custody::detail {

using steady_clock = std::chrono::steady_clock;

/// How a blocked operation was settled.
enum class settled : std::uint32_t {
  done = 2,       ///< a peer moved the value of case `index` in or out
  notified = 3,   ///< case `index` may be ready now: try it again
  closed = 4,     ///< case `index` found its channel closed
  stopped = 5,    ///< the stop token fired
  timed_out = 6,  ///< the deadline passed
  restart = 7,    ///< the waiter itself saw a case become ready while registering
};

class resumable_parker;

/// The owners settled while a lock was held, to wake once it is released: a wake is a system
/// call (a resumer posts to an executor, which may take a lock), and every thread wanting the
/// lock would spin through it.
///
/// It wakes them when destroyed, so declare it before the lock guard (destroyed after it):
///
///     wake_list wakes;
///     std::lock_guard lock(lock_);
///     w->owner->try_settle(state, wakes);
///
/// For a sleeping thread it holds the word's address only. A settled thread may see its new
/// state and return before it is woken; waking its old address is then harmless (futex.hpp).
/// For an asynchronous owner it holds the owner: that cannot go away before it is resumed.
class wake_list {
 public:
  static constexpr std::size_t capacity = 16;

  wake_list() = default;
  wake_list(const wake_list&) = delete;
  wake_list& operator=(const wake_list&) = delete;
  ~wake_list() { wake_all(); }

  /// Callers settling several waiters stop when it is full: release the lock, wake, go on.
  bool full() const noexcept { return size_ == capacity; }

 private:
  friend class parker;
  // Words are 4-byte aligned: the low bit tells a resumer from a word's address.
  void add(const void* word) noexcept {
    entries_[size_++] = reinterpret_cast<std::uintptr_t>(word);
  }
  void add(resumable_parker* owner) noexcept {
    entries_[size_++] = reinterpret_cast<std::uintptr_t>(owner) | 1u;
  }
  inline void wake_all() noexcept;

  std::uintptr_t entries_[capacity];
  std::size_t size_ = 0;
};

/// The state word of one blocked operation. Its thread sleeps on the word itself, so a wake
/// reaches exactly the thread it is for.
class parker {
 public:
  static constexpr std::uint32_t waiting = 0;
  static constexpr std::uint32_t busy = 1;  // claimed by a peer that is moving a value
  /// Set beside `waiting` or `busy` by the owning thread before it sleeps: whoever settles
  /// the word must then wake it. Without it, settling costs no system call.
  static constexpr std::uint32_t sleeping = 1u << 31;
  /// Set beside `waiting` or `busy` by an asynchronous owner (a resumable_parker) once it has
  /// registered: whoever settles the word must then call its resumer.
  static constexpr std::uint32_t resumes = 1u << 30;
  /// Either way of waiting: a settler that finds one of them has an owner to wake.
  static constexpr std::uint32_t wakers = sleeping | resumes;

  /// A settled state: `index` (a select's case, far below 2^27) and how. Never a waker bit.
  static constexpr std::uint32_t make(settled how, std::uint32_t index) noexcept {
    return (index << 3) | static_cast<std::uint32_t>(how);
  }
  static constexpr settled how(std::uint32_t state) noexcept { return settled(state & 7u); }
  static constexpr std::uint32_t index(std::uint32_t state) noexcept { return state >> 3; }
  /// Not settled yet: waiting or busy, with a waker bit or not.
  static constexpr bool open(std::uint32_t state) noexcept { return (state & ~wakers) <= busy; }

  /// Arms the word for a new round of waiting. Only the owning thread calls it, and only while
  /// no peer can reach the word. Release: a peer that claims the word without a lock must see
  /// what the owner did before arming it.
  void reset() noexcept { state_.store(waiting, std::memory_order_release); }

  std::uint32_t load() const noexcept { return state_.load(std::memory_order_acquire); }
  bool is_waiting() const noexcept { return (load() & ~wakers) == waiting; }

  /// Claims the operation so that the caller can move a value; `finish` must follow.
  bool try_claim() noexcept {
    std::uint32_t s = waiting;
    while (!state_.compare_exchange_weak(s, busy | (s & wakers), std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
      if ((s & ~wakers) != waiting) return false;
    }
    return true;
  }

  /// Settles a claimed operation and wakes its owner if it waits marked. Call without holding
  /// a lock. A thread may return (and the word disappear) as soon as the exchange lands, so
  /// only the address is used afterwards.
  void finish(std::uint32_t final_state) noexcept {
    const void* address = &state_;
    const std::uint32_t was = state_.exchange(final_state, std::memory_order_seq_cst);
    if (was & wakers) wake(was, address);
  }

  /// Settles an operation that is still waiting; true if this call did. A marked owner is
  /// added to `wakes`, which must not be full.
  bool try_settle(std::uint32_t final_state, wake_list& wakes) noexcept {
    const void* address = &state_;
    std::uint32_t was;
    if (!settle_waiting(final_state, was)) return false;
    if (was & wakers) add_wake(was, address, wakes);
    return true;
  }

  /// The same for callers that hold no lock: wakes the owner at once.
  bool try_settle(std::uint32_t final_state) noexcept {
    const void* address = &state_;
    std::uint32_t was;
    if (!settle_waiting(final_state, was)) return false;
    if (was & wakers) wake(was, address);
    return true;
  }

  /// For an asynchronous owner that has registered: marks the word so that whoever settles it
  /// calls the resumer, and returns true; false when it was settled already (nobody will
  /// resume the owner then: it goes on at once). The owner must be a resumable_parker.
  bool suspend() noexcept {
    std::uint32_t s = load();
    while (open(s)) {
      if (state_.compare_exchange_weak(s, s | resumes, std::memory_order_seq_cst,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }

  /// Settles the operation from its own thread: it is awake, so nobody is woken.
  bool try_settle_self(std::uint32_t final_state) noexcept {
    std::uint32_t was;
    return settle_waiting(final_state, was);
  }
  /// After the owning thread claimed its own word (busy, never sleeping then).
  void settle_self(std::uint32_t final_state) noexcept {
    state_.store(final_state, std::memory_order_release);
  }

  /// Waits until the operation is settled and returns how. Spins briefly first: a wake through
  /// the kernel costs microseconds, far more than a peer usually needs to arrive. When the
  /// deadline passes the thread settles itself as timed out, unless a peer got there first.
  ///
  /// `going_to_sleep()` runs once, when the spin is over and the word is still open, before
  /// the thread first sleeps: what a wait records for inspection (since when, in what) is
  /// recorded there, so a wait that ends while spinning pays nothing for it.
  template <class GoingToSleep>
  std::uint32_t wait(const std::optional<steady_clock::time_point>& deadline, bool spin_first,
                     GoingToSleep&& going_to_sleep) noexcept {
    interleave_point();
    std::uint32_t s = load();
    if (spin_first && open(s)) spin_until([&] { return !open(s = load()); });
    if (open(s)) {
      going_to_sleep();
      s = load();
    }
    const std::optional<steady_clock::time_point> no_deadline;
    while (open(s)) {
      if (!(s & sleeping)) {
        // Fails if a peer claims or settles the word first: then look at what it did.
        if (!state_.compare_exchange_weak(s, s | sleeping, std::memory_order_seq_cst,
                                          std::memory_order_acquire)) {
          continue;
        }
        s |= sleeping;
      }
      // Once a peer has claimed the word the value is on its way: the deadline no longer counts.
      const bool claimed = (s & ~wakers) == busy;
      if (!futex_wait(state_, s, claimed ? no_deadline : deadline) &&
          try_settle_self(make(settled::timed_out, 0))) {
        return make(settled::timed_out, 0);
      }
      s = load();
    }
    return s;
  }
  std::uint32_t wait(const std::optional<steady_clock::time_point>& deadline,
                     bool spin_first = true) noexcept {
    return wait(deadline, spin_first, [] {});
  }

 private:
  // One compare-exchange from `waiting`, marked or not; `was` is the word it replaced.
  bool settle_waiting(std::uint32_t final_state, std::uint32_t& was) noexcept {
    was = waiting;
    while (!state_.compare_exchange_weak(was, final_state, std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
      if ((was & ~wakers) != waiting) return false;
    }
    return true;
  }

  // `was` carried a waker bit: wake the sleeping thread, or resume the asynchronous owner.
  inline void wake(std::uint32_t was, const void* address) noexcept;
  inline void add_wake(std::uint32_t was, const void* address, wake_list& wakes) noexcept;

  atomic<std::uint32_t> state_{waiting};
};

/// The state word of an asynchronous operation: a coroutine's or a callback's, which holds no
/// thread while it waits. Its owner (an operation state that lives until it is resumed) calls
/// parker::suspend() where a thread would sleep; the settler then calls `resume(context)`,
/// which must not run the operation inline: it posts it to the operation's executor.
class resumable_parker : public parker {
 public:
  using resume_fn = void (*)(void* context) noexcept;

  resumable_parker(resume_fn resume, void* context) noexcept : resume_(resume), context_(context) {}

  void resume() noexcept { resume_(context_); }

 private:
  resume_fn resume_;
  void* context_;
};

inline void parker::wake(std::uint32_t was, const void* address) noexcept {
  if (was & sleeping) {
    futex_wake_one(address);
  } else {
    // Only a resumable_parker ever parks without the sleeping bit.
    static_cast<resumable_parker*>(this)->resume();  // NOLINT(*-static-cast-downcast)
  }
}

inline void parker::add_wake(std::uint32_t was, const void* address, wake_list& wakes) noexcept {
  if (was & sleeping) {
    wakes.add(address);
  } else {
    wakes.add(static_cast<resumable_parker*>(this));  // NOLINT(*-static-cast-downcast)
  }
}

inline void wake_list::wake_all() noexcept {
  for (std::size_t i = 0; i < size_; ++i) {
    if (entries_[i] & 1u) {
      // Tagged pointers: bit 0 tells a resumer from a futex address.
      reinterpret_cast<resumable_parker*>(  // NOLINT(performance-no-int-to-ptr)
          entries_[i] & ~std::uintptr_t{1})
          ->resume();
    } else {
      futex_wake_one(
          reinterpret_cast<const void*>(entries_[i]));  // NOLINT(performance-no-int-to-ptr)
    }
  }
}

/// Settles a blocked operation as stopped when its stop token fires.
struct stop_settler {
  parker* self;
  void operator()() const noexcept { self->try_settle(parker::make(settled::stopped, 0)); }
};

}  // namespace custody::detail
