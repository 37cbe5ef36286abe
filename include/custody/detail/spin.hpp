#pragma once
// Short, bounded spinning: used before parking a thread and inside tiny critical sections.

#include <atomic>
#include <thread>

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
class spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      backoff b;
      while (locked_.load(std::memory_order_relaxed)) b.snooze();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace custody::detail
