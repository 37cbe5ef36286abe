#pragma once
// The state word of one blocked operation (a send, a receive or a whole select), and the means
// to sleep on it and wake it.
//
// Exactly one party settles a blocked operation: a peer that hands it a value, a notifier, the
// stop callback, the deadline, or the waiting thread itself. Each of them must win one
// compare-exchange from `waiting`; everyone else finds the word taken and moves on. That single
// compare-exchange is why a value can never be both delivered and lost to a racing timeout.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <thread>

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

/// Sleeping threads wait on a small shared table of condition variables picked by the address
/// of their state word. The table lives for the whole program, so a waker may touch it even
/// after the woken thread has returned and its state word is gone.
struct alignas(64) park_stripe {
  std::mutex mutex;
  std::condition_variable cv;
  atomic<std::uint32_t> sleepers{0};
};

inline park_stripe& stripe_for(const void* address) noexcept {
  static constexpr unsigned bits = 6;
  // Deliberately never destroyed: threads may still wake others during static destruction.
  // Static storage rather than the heap: waiting and waking are noexcept, so setting the table
  // up on first use must not be able to fail.
  alignas(park_stripe) static unsigned char storage[sizeof(park_stripe) << bits];
  static park_stripe* const stripes = [] {
    auto* first = reinterpret_cast<park_stripe*>(storage);
    for (unsigned i = 0; i < (1u << bits); ++i) ::new (static_cast<void*>(first + i)) park_stripe;
    return std::launder(first);
  }();
  auto h = reinterpret_cast<std::uintptr_t>(address) * 0x9E3779B97F4A7C15ull;
  return stripes[h >> (64 - bits)];
}

/// Threads spinning in spin_until right now, across every instantiation of it.
inline atomic<unsigned>& spinner_count() noexcept {
  static atomic<unsigned> count{0};
  return count;
}

/// Calls `done()` until it returns true or a bounded spin ends; returns its last result.
///
/// Spinning pays off only while the peer we wait for is running on another core, so spinners
/// are counted process-wide and never outnumber the cores: extra waiters go straight to sleep
/// rather than steal the core their peer needs. Each thread adapts its budget between 20 and
/// 100 microseconds: it doubles after a spin that succeeded and halves after one that did not.
/// A thread whose last spins all failed waits for something far away (a network reply, a
/// timer, a rare event): it then spins only once in a while, to notice when that changes, and
/// otherwise checks once and sleeps, leaving the cores to the threads that do the work.
template <class Done>
bool spin_until(Done&& done, unsigned max_pauses = 1) {
  static const unsigned max_spinners = std::max(1u, std::thread::hardware_concurrency());
  atomic<unsigned>& spinners = spinner_count();
  // The floor stays above the cost of a sleep and wake-up through the kernel: below it, two
  // threads that both fell asleep once would never again find each other spinning.
  constexpr std::chrono::nanoseconds min_budget{20'000}, max_budget{100'000};
  constexpr unsigned misses_before_probing = 4, probe_every = 8, uncounted_pauses = 64;
  thread_local std::chrono::nanoseconds budget{50'000};
  thread_local unsigned misses = 0;  // failed spins in a row (saturating)
  thread_local unsigned waits = 0;   // waits since misses_before_probing was reached

  if (misses >= misses_before_probing && ++waits % probe_every != 0) return done();
  const auto succeeded = [&] {
    budget = std::min(budget * 2, max_budget);
    misses = 0;
    return true;
  };
  // A hand-over between two spinning threads takes well under a microsecond. Spins that short
  // (64 pauses) are neither counted nor timed: the counter is one cache line written by every
  // spinner, and moving it between the cores cost a quarter of an unbuffered ping-pong; reading
  // the clock costs 30 ns on this kind of VM, a fifth of a hand-over between close cores.
  unsigned pauses = 1;
  for (unsigned paused = 0; paused < uncounted_pauses; paused += pauses) {
    if (done()) return succeeded();
    for (unsigned k = 0; k < pauses; ++k) cpu_relax();
    pauses = std::min(pauses * 2, max_pauses);
  }
  if (spinners.load(std::memory_order_relaxed) >= max_spinners) return false;
  spinners.fetch_add(1, std::memory_order_relaxed);
  struct leave {
    ~leave() { spinner_count().fetch_sub(1, std::memory_order_relaxed); }
  } on_exit;
  const auto limit = steady_clock::now() + budget;
  for (unsigned i = 1;; ++i) {
    if (done()) return succeeded();
    for (unsigned k = 0; k < pauses; ++k) cpu_relax();
    pauses = std::min(pauses * 2, max_pauses);
    if (i % 16 == 0 && steady_clock::now() >= limit) {
      budget = std::max(budget / 2, min_budget);
      if (misses < misses_before_probing) ++misses;
      return false;
    }
  }
}

class parker {
 public:
  static constexpr std::uint32_t waiting = 0;
  static constexpr std::uint32_t busy = 1;  // claimed by a peer that is moving a value

  static constexpr std::uint32_t make(settled how, std::uint32_t index) noexcept {
    return (index << 3) | static_cast<std::uint32_t>(how);
  }
  static constexpr settled how(std::uint32_t state) noexcept { return settled(state & 7u); }
  static constexpr std::uint32_t index(std::uint32_t state) noexcept { return state >> 3; }

  /// Arms the word for a new round of waiting. Only the owning thread calls it, and only while
  /// no peer can reach the word. Release: a peer that claims the word without a lock must see
  /// what the owner did before arming it.
  void reset() noexcept { state_.store(waiting, std::memory_order_release); }

  std::uint32_t load() const noexcept { return state_.load(std::memory_order_acquire); }
  bool is_waiting() const noexcept { return load() == waiting; }

  /// Claims the operation so that the caller can move a value; `finish` must follow.
  bool try_claim() noexcept {
    std::uint32_t expected = waiting;
    return state_.compare_exchange_strong(expected, busy, std::memory_order_seq_cst,
                                          std::memory_order_relaxed);
  }

  /// Settles a claimed operation and wakes its thread. Its thread may return (and the word
  /// disappear) as soon as the store lands, so only the address is used afterwards.
  void finish(std::uint32_t final_state) noexcept {
    const void* address = &state_;
    state_.store(final_state, std::memory_order_seq_cst);
    wake(address);
  }

  /// Claims and settles in one step, without a value to move.
  bool try_settle(std::uint32_t final_state) noexcept {
    std::uint32_t expected = waiting;
    if (!state_.compare_exchange_strong(expected, final_state, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      return false;
    }
    wake(&state_);
    return true;
  }

  /// Settles the operation from its own thread: nobody sleeps on it, so nobody is woken.
  bool try_settle_self(std::uint32_t final_state) noexcept {
    std::uint32_t expected = waiting;
    return state_.compare_exchange_strong(expected, final_state, std::memory_order_seq_cst,
                                          std::memory_order_relaxed);
  }
  void settle_self(std::uint32_t final_state) noexcept {
    state_.store(final_state, std::memory_order_release);
  }

  /// Waits until the operation is settled and returns how. Spins briefly first: a wake through
  /// the kernel costs microseconds, far more than a peer usually needs to arrive. When the
  /// deadline passes the thread settles itself as timed out, unless a peer got there first.
  std::uint32_t wait(const std::optional<steady_clock::time_point>& deadline,
                     bool spin_first = true) noexcept {
    interleave_point();
    if (spin_first) {
      if (std::uint32_t s = spin(); s > busy) return s;
    }
    park_stripe& stripe = stripe_for(&state_);
    std::unique_lock lock(stripe.mutex);
    stripe.sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t s;
    while ((s = state_.load(std::memory_order_seq_cst)) <= busy) {
      if (!deadline || s == busy) {
        stripe.cv.wait(lock);
      } else if (stripe.cv.wait_until(lock, *deadline) == std::cv_status::timeout &&
                 try_settle_self(make(settled::timed_out, 0))) {
        s = make(settled::timed_out, 0);
        break;
      }
    }
    stripe.sleepers.fetch_sub(1, std::memory_order_relaxed);
    return s;
  }

 private:
  static void wake(const void* address) noexcept {
    interleave_point();
    park_stripe& stripe = stripe_for(address);
    // Pairs with the sleeper's increment before it re-reads the state: either it sees our
    // store, or we see it counted and take the mutex, which it holds until it sleeps.
    if (stripe.sleepers.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard lock(stripe.mutex); }
    stripe.cv.notify_all();
  }

  std::uint32_t spin() const noexcept {
    std::uint32_t s = load();
    if (s <= busy) spin_until([&] { return (s = load()) > busy; });
    return s;
  }

  atomic<std::uint32_t> state_{waiting};
};

/// Settles a blocked operation as stopped when its stop token fires.
struct stop_settler {
  parker* self;
  void operator()() const noexcept { self->try_settle(parker::make(settled::stopped, 0)); }
};

}  // namespace custody::detail
