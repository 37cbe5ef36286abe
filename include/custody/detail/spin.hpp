#pragma once
// Short, bounded spinning: used before parking a thread and inside tiny critical sections.

#include <atomic>
#include <thread>

#include "interleave.hpp"
#include "thread_annotations.hpp"

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

/// Test-and-test-and-set lock for critical sections of a few dozen instructions. It never
/// parks: holders never block while holding it, so waiting is always short.
class CUSTODY_CAPABILITY("spinlock") spinlock {
 public:
  void lock() noexcept CUSTODY_ACQUIRE() {
    interleave_point();
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) {
        interleave_point();  // the interleave build may stall us holding it
        return;
      }
      backoff b;
      while (locked_.load(std::memory_order_relaxed)) b.snooze();
    }
  }
  void unlock() noexcept CUSTODY_RELEASE() {
    interleave_point();
    locked_.store(false, std::memory_order_release);
  }

 private:
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
