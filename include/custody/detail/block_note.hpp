#pragma once
// What a blocked operation tells a snapshot about itself: who blocked and since when.
//
// A blocked send, receive or select writes one block_note on its own stack and points its
// waiters at it, but only when someone can read it: when one of its channels is named, or its
// thread runs a task of a named task group. Otherwise its waiters carry a null note and the
// operation pays nothing beyond that null pointer.
//
// The note says who waits from the start; since when only once the thread falls asleep (after
// its brief spin): reading the clock costs about 30 ns on a VM, and a hand-over between two
// spinning threads a few hundred, so a wait that ends while spinning never reads it.
//
// A snapshot reads the notes of linked waiters under the channel's spinlock, so it copies them
// into a fixed-size waiter_facts (no allocation, no user code under the lock) and formats them
// after unlocking.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../inspection.hpp"
#include "interleave.hpp"

namespace custody::detail {

/// One blocked operation's facts; lives on the blocked thread's stack while it waits.
struct block_note {
  using time_point = std::chrono::steady_clock::time_point;

  const std::string* task = nullptr;  // the blocked thread's task name; null outside a task
  std::uint32_t cases = 1;            // the cases of its select (1: a plain send or receive)

  /// The owner fell asleep at `t`. Written by the owner while a snapshot may read it.
  void fell_asleep(time_point t) noexcept {
    since_.store(t.time_since_epoch().count(), std::memory_order_relaxed);
  }
  /// When the owner fell asleep; the clock's epoch while it has not.
  time_point since() const noexcept {
    return time_point(time_point::duration(since_.load(std::memory_order_relaxed)));
  }
  /// Ready for a new waiter `task`, awake so far.
  void reset(const std::string* waiter_task) noexcept {
    task = waiter_task;
    since_.store(0, std::memory_order_relaxed);
  }

 private:
  atomic<time_point::rep> since_{0};
};

/// A blocked case's facts, copied by value: the note may be gone once the lock is released.
struct waiter_fact {
  char task[32];  // the task name's first 31 bytes, NUL-terminated
  std::uint32_t case_index;
  std::uint32_t cases;
  std::chrono::steady_clock::time_point since;

  /// Copies `note` (case `index`); a null note (nobody recorded it) leaves the facts empty.
  void copy(const block_note* note, std::uint32_t index) noexcept {
    copy_task(nullptr);
    case_index = index;
    cases = 1;
    since = {};
    if (!note) return;
    copy_task(note->task);
    cases = note->cases;
    since = note->since();
  }

  /// Copies the first 31 bytes of the task name `name` (none when null).
  void copy_task(const std::string* name) noexcept {
    const std::size_t n = name ? std::min(name->size(), sizeof task - 1) : 0;
    if (n > 0) std::memcpy(task, name->data(), n);
    task[n] = '\0';
  }

  blocked_report report(std::chrono::steady_clock::time_point now) const {
    blocked_report r;
    r.task = task;
    r.case_index = case_index;
    r.cases = cases;
    if (since != std::chrono::steady_clock::time_point{}) {
      r.blocked_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
    }
    return r;
  }
};

/// The blocked cases of one list, copied under its lock: at most `capacity`, and the count of
/// the others.
class waiter_facts {
 public:
  static constexpr std::size_t capacity = 16;

  void add(const block_note* note, std::uint32_t index) noexcept {
    if (listed_ < capacity) {
      facts_[listed_++].copy(note, index);
    } else {
      ++unlisted_;
    }
  }
  void add(const waiter_fact& fact) noexcept {
    if (listed_ < capacity) {
      facts_[listed_++] = fact;
    } else {
      ++unlisted_;
    }
  }

  /// After unlocking: appends the listed ones to `out`, returns how many were left out.
  std::size_t report(std::vector<blocked_report>& out,
                     std::chrono::steady_clock::time_point now) const {
    for (std::size_t i = 0; i < listed_; ++i) out.push_back(facts_[i].report(now));
    return unlisted_;
  }

 private:
  waiter_fact facts_[capacity];
  std::size_t listed_ = 0;
  std::size_t unlisted_ = 0;
};

}  // namespace custody::detail
