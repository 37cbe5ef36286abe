#pragma once
// Sleeping on one 32-bit word, and waking the one thread that sleeps on it: Linux's futex.
//
// std::atomic::wait has no timed form, and a blocked operation may have a deadline, so custody
// calls futex(2) directly. Private futexes only: every word lives in this process.
//
// A wake names the word by its address and never reads or writes it. That is what makes it
// safe to wake a thread after settling its word without holding anything: the woken thread may
// already have seen the new value (while spinning, or in a spurious return), returned, and
// reused the memory. The kernel keys a private futex by address alone, so such a late wake at
// worst makes whoever sleeps at that address now return early; every sleeper re-checks its
// word and sleeps again.
//
// Built with CUSTODY_COUNT_WAKEUPS (tests only), the header counts the threads sleeping right
// now, every return from a sleep that a wake caused, every sleep after which the word had
// changed, and every wake sent while the waking thread held a spinlock (which must never happen).

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>

#if !defined(__linux__)
#error "custody parks blocked threads with Linux futexes (custody/detail/futex.hpp)"
#endif
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interleave.hpp"

#if defined(__SANITIZE_THREAD__)
#define CUSTODY_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUSTODY_DETAIL_TSAN 1
#endif
#endif

namespace custody::detail {

#ifdef CUSTODY_DETAIL_TSAN
/// ThreadSanitizer runs a signal's handler only once the interrupted thread enters a function it
/// intercepts, and futex(2) is not one: a thread asleep here could hold back a SIGINT for good.
/// Under ThreadSanitizer alone, sleeps last at most this long and end in an intercepted call.
inline constexpr std::chrono::milliseconds tsan_sleep_slice{20};
#endif

#ifdef CUSTODY_COUNT_WAKEUPS
/// Test-only counters (see the file comment).
struct wakeup_counters {
  static inline atomic<std::uint64_t> sleeping{0};          // threads inside futex_wait
  static inline atomic<std::uint64_t> woken{0};             // sleeps ended by a wake
  static inline atomic<std::uint64_t> settled{0};           // sleeps after which the word changed
  static inline atomic<std::uint64_t> wakes_under_lock{0};  // wakes with a spinlock held
  static inline thread_local unsigned spinlocks_held = 0;   // kept by spinlock (spin.hpp)
};
#endif

/// Sleeps while `word` holds `expected`, until a wake or until `deadline` (steady_clock, which
/// is CLOCK_MONOTONIC). May return early for no reason (a signal, a late wake meant for an
/// earlier user of the address): callers re-check the word. False only when the deadline
/// passed.
inline bool futex_wait(
    const atomic<std::uint32_t>& word, std::uint32_t expected,
    const std::optional<std::chrono::steady_clock::time_point>& deadline) noexcept {
  static_assert(sizeof(atomic<std::uint32_t>) == sizeof(std::uint32_t));
#ifdef CUSTODY_DETAIL_TSAN
  const auto slice_end = std::chrono::steady_clock::now() + tsan_sleep_slice;
  const bool sliced = !deadline || slice_end < *deadline;
  const std::optional<std::chrono::steady_clock::time_point> sleep_until =
      sliced ? std::optional(slice_end) : deadline;
#else
  const std::optional<std::chrono::steady_clock::time_point>& sleep_until = deadline;
#endif
  timespec until{};
  if (sleep_until) {
    const auto since_boot = sleep_until->time_since_epoch();
    if (since_boot.count() <= 0) return false;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_boot);
    until.tv_sec = static_cast<std::time_t>(secs.count());
    until.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_boot - secs).count());
  }
#ifdef CUSTODY_COUNT_WAKEUPS
  wakeup_counters::sleeping.fetch_add(1);
  wakeup_counters::sleeping.notify_all();
#endif
  // A waiter preempted between reading its word and sleeping: the wake may land first.
  interleave_point();
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (plain FUTEX_WAIT a relative
  // one, which would need the clock read again after every early return).
  const long r = ::syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, expected,
                           sleep_until ? &until : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  const int error = r == 0 ? 0 : errno;
#ifdef CUSTODY_COUNT_WAKEUPS
  if (r == 0) wakeup_counters::woken.fetch_add(1);
  // Whatever ended the sleep (a wake, a wake that landed first, a slice's end under
  // ThreadSanitizer), the sleeper's value came while it was parked.
  if (word.load(std::memory_order_relaxed) != expected) wakeup_counters::settled.fetch_add(1);
  wakeup_counters::sleeping.fetch_sub(1);
#endif
#ifdef CUSTODY_DETAIL_TSAN
  ::usleep(0);              // intercepted: a signal that arrived during the sleep is handled now
  if (sliced) return true;  // the slice ended, not the deadline: an early return
#endif
  return error != ETIMEDOUT;
}

/// Wakes the thread sleeping on the word at `address`, if any. Reads and writes no memory (see
/// the file comment), so the word may already be gone.
inline void futex_wake_one(const void* address) noexcept {
  interleave_point();
#ifdef CUSTODY_COUNT_WAKEUPS
  if (wakeup_counters::spinlocks_held != 0) wakeup_counters::wakes_under_lock.fetch_add(1);
#endif
  ::syscall(SYS_futex, address, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace custody::detail
