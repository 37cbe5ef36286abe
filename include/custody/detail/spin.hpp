#pragma once
// Short, bounded spinning: used before parking a thread and inside tiny critical sections.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "interleave.hpp"
#include "thread_annotations.hpp"
#ifdef CUSTODY_COUNT_WAKEUPS
#include "futex.hpp"
#endif

namespace custody::detail {

/// One pause instruction: tells the core we are spinning, so the sibling hyperthread and the
/// memory system are not flooded.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Exponential backoff: a few rounds of pause instructions, then yielding the CPU. Yielding
/// matters when threads outnumber cores: the thread we wait for may need our core to run.
class backoff {
 public:
  /// Pause only; for retrying a lost compare-exchange.
  void spin() noexcept {
    for (unsigned i = 0; i < (1u << (step_ < spin_steps ? step_ : spin_steps)); ++i) cpu_relax();
    if (step_ <= spin_steps) ++step_;
  }
  /// Pause, then yield once pausing has not helped; for waiting on another thread's progress.
  void snooze() noexcept {
    if (step_ <= spin_steps) {
      for (unsigned i = 0; i < (1u << step_); ++i) cpu_relax();
    } else {
      std::this_thread::yield();
    }
    ++step_;
  }
  /// True once waiting longer should park instead.
  bool exhausted() const noexcept { return step_ > yield_steps; }

 private:
  static constexpr unsigned spin_steps = 6;    // up to 2^6 pauses per round
  static constexpr unsigned yield_steps = 10;  // then a few yields before giving up
  unsigned step_ = 0;
};

/// Admits at most `limit` threads at a time. Entering is one compare-exchange that fails once
/// the limit is reached, so two threads can never both take the last place.
class spinner_limit {
 public:
  explicit spinner_limit(unsigned limit) noexcept : limit_(limit) {}

  bool try_enter() noexcept {
    unsigned n = count_.load(std::memory_order_relaxed);
    do {
      if (n >= limit_) return false;
    } while (!count_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }
  void leave() noexcept { count_.fetch_sub(1, std::memory_order_relaxed); }
  unsigned inside() const noexcept { return count_.load(std::memory_order_relaxed); }
  bool full() const noexcept { return inside() >= limit_; }

 private:
  const unsigned limit_;
  atomic<unsigned> count_{0};
};

/// The threads spinning in spin_until right now, process-wide: never more than the cores.
inline spinner_limit& spinners() noexcept {
  static spinner_limit limit(std::max(1u, std::thread::hardware_concurrency()));
  return limit;
}

/// What a thread has learnt from its spins, shared by all of them whatever they wait for:
/// one per thread, not one per kind of wait.
struct spin_history {
  // The floor stays above the cost of a sleep and wake-up through the kernel: below it, two
  // threads that both fell asleep once would never again find each other spinning.
  static constexpr std::chrono::nanoseconds min_budget{20'000}, max_budget{100'000};
  static constexpr unsigned misses_before_probing = 4, probe_every = 8;

  std::chrono::nanoseconds budget{50'000};
  unsigned misses = 0;  // failed spins in a row (saturating at misses_before_probing)
  unsigned waits = 0;   // waits since misses_before_probing was reached
};

inline spin_history& this_thread_spins() noexcept {
  thread_local spin_history history;
  return history;
}

/// A hand-over between two spinning threads takes well under a microsecond. Spins that short
/// (64 pauses) are neither counted nor timed: the spinners' counter is one cache line written by
/// every spinner, and moving it between the cores cost a quarter of an unbuffered ping-pong;
/// reading the clock costs 30 ns on this kind of VM, a fifth of a hand-over between close cores.
inline constexpr unsigned uncounted_pauses = 64;

/// The short first part of every spin: calls `done()` between growing pauses, up to
/// uncounted_pauses in all. True once `done()` is.
template <class Done>
bool spin_uncounted(Done& done, unsigned max_pauses) {
  unsigned pauses = 1;
  for (unsigned paused = 0; paused < uncounted_pauses; paused += pauses) {
    if (done()) return true;
    for (unsigned k = 0; k < pauses; ++k) cpu_relax();
    pauses = std::min(pauses * 2, max_pauses);
  }
  return false;
}

/// Only that short part, for a thread that can still take another way if it fails (a sender
/// looking for a receiver about to arm its slot, before it queues itself): the same 64 pauses,
/// skipped by a thread whose recent spins all failed, and learning nothing.
template <class Done>
bool spin_briefly(Done&& done) {
  if (this_thread_spins().misses >= spin_history::misses_before_probing) return done();
  return spin_uncounted(done, 1);
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
///
/// While every core has a spinner, a spin offers its core to the scheduler every 16 rounds:
/// the thread the spinners wait for may then have no core (three threads on two cores, two of
/// them spinning), and spins that only pause end in sleeps, each woken later by a system call
/// of the thread that was held off. With a core to spare nobody yields: the peer has a core,
/// and a yield would only delay the hand-over.
template <class Done>
bool spin_until(Done&& done, unsigned max_pauses = 1) {
  using clock = std::chrono::steady_clock;
  spin_history& h = this_thread_spins();
  if (h.misses >= spin_history::misses_before_probing &&
      ++h.waits % spin_history::probe_every != 0) {
    return done();
  }
  const auto succeeded = [&h] {
    h.budget = std::min(h.budget * 2, spin_history::max_budget);
    h.misses = 0;
    return true;
  };
  if (spin_uncounted(done, max_pauses)) return succeeded();
  // Where the growing pauses ended (they reach max_pauses well within the uncounted ones).
  unsigned pauses = max_pauses;
  spinner_limit& limit = spinners();
  if (!limit.try_enter()) return false;
  struct leave {
    spinner_limit& limit;
    ~leave() { limit.leave(); }
  } on_exit{limit};
  const auto until = clock::now() + h.budget;
  for (unsigned i = 1;; ++i) {
    if (done()) return succeeded();
    for (unsigned k = 0; k < pauses; ++k) cpu_relax();
    pauses = std::min(pauses * 2, max_pauses);
    if (i % 16 != 0) continue;
    if (limit.full()) std::this_thread::yield();
    if (clock::now() >= until) {
      h.budget = std::max(h.budget / 2, spin_history::min_budget);
      if (h.misses < spin_history::misses_before_probing) ++h.misses;
      return false;
    }
  }
}

/// Test-and-test-and-set lock for critical sections of a few dozen instructions. It never
/// parks: holders never block while holding it, so waiting is always short.
class CUSTODY_CAPABILITY("spinlock") spinlock {
 public:
  void lock() noexcept CUSTODY_ACQUIRE() {
    interleave_point();
    // Uncontended, the lock is one exchange, inlined; the contended loop is a call.
    if (locked_.exchange(true, std::memory_order_acquire)) lock_contended();
#ifdef CUSTODY_COUNT_WAKEUPS
    ++wakeup_counters::spinlocks_held;
#endif
    interleave_point();  // the interleave build may stall us holding it
  }
  void unlock() noexcept CUSTODY_RELEASE() {
    interleave_point();
#ifdef CUSTODY_COUNT_WAKEUPS
    --wakeup_counters::spinlocks_held;
#endif
    locked_.store(false, std::memory_order_release);
  }

 private:
  [[gnu::noinline]] void lock_contended() noexcept {
    do {
      backoff b;
      while (locked_.load(std::memory_order_relaxed)) b.snooze();
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  atomic<bool> locked_{false};
};

}  // namespace custody::detail

#if CUSTODY_THREAD_SAFETY_ANALYSIS
// libstdc++'s std::lock_guard and std::unique_lock carry no thread-safety annotations, so Clang's
// analysis would not see them take a spinlock. These specializations behave as the primary
// templates do for the members custody uses, and say so in annotations (thread_annotations.hpp).
#include <mutex>

namespace std {

template <>
class CUSTODY_SCOPED_CAPABILITY lock_guard<custody::detail::spinlock> {
 public:
  using mutex_type = custody::detail::spinlock;
  explicit lock_guard(mutex_type& m) noexcept CUSTODY_ACQUIRE(m) : m_(m) { m_.lock(); }
  lock_guard(mutex_type& m, adopt_lock_t) noexcept CUSTODY_REQUIRES(m) : m_(m) {}
  ~lock_guard() CUSTODY_RELEASE() { m_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  mutex_type& m_;
};

template <>
class CUSTODY_SCOPED_CAPABILITY unique_lock<custody::detail::spinlock> {
 public:
  using mutex_type = custody::detail::spinlock;
  explicit unique_lock(mutex_type& m) noexcept CUSTODY_ACQUIRE(m) : m_(&m) {
    m_->lock();
    owns_ = true;
  }
  ~unique_lock() CUSTODY_RELEASE() {
    if (owns_) m_->unlock();
  }
  unique_lock(const unique_lock&) = delete;
  unique_lock& operator=(const unique_lock&) = delete;

  void lock() noexcept CUSTODY_ACQUIRE() {
    m_->lock();
    owns_ = true;
  }
  void unlock() noexcept CUSTODY_RELEASE() {
    m_->unlock();
    owns_ = false;
  }
  bool owns_lock() const noexcept { return owns_; }
  explicit operator bool() const noexcept { return owns_; }
  mutex_type* mutex() const noexcept { return m_; }

 private:
  mutex_type* m_;
  bool owns_ = false;
};

}  // namespace std
#endif
