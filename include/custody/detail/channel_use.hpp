#pragma once
// What a named channel counts about its use, for custody::inspect(): completed sends and
// receives, the task that last completed each, and the time its waiters spent blocked.
//
// Only a named channel has these (in its registration); each operation that completes on it
// adds to them from its own thread with relaxed atomics, outside every lock. An unnamed
// channel pays the null test of its registration pointer and nothing else.

#include <chrono>
#include <cstdint>

#include "interleave.hpp"
#include "task_names.hpp"

namespace custody::detail {

class channel_use {
 public:
  /// The current thread completed a send (`sending`) or a receive on the channel.
  void completed(bool sending) noexcept {
    const std::uint32_t task = current_task_id();
    if (sending) {
      sends_.fetch_add(1, std::memory_order_relaxed);
      last_sender_.store(task, std::memory_order_relaxed);
    } else {
      receives_.fetch_add(1, std::memory_order_relaxed);
      last_receiver_.store(task, std::memory_order_relaxed);
    }
  }

  /// A waiter that slept on the channel for `time` finished waiting (whatever ended it).
  void blocked_for(std::chrono::steady_clock::duration time) noexcept {
    blocked_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(time).count(),
                          std::memory_order_relaxed);
  }

  std::uint64_t sends() const noexcept { return sends_.load(std::memory_order_relaxed); }
  std::uint64_t receives() const noexcept { return receives_.load(std::memory_order_relaxed); }
  std::uint32_t last_sender() const noexcept {
    return last_sender_.load(std::memory_order_relaxed);
  }
  std::uint32_t last_receiver() const noexcept {
    return last_receiver_.load(std::memory_order_relaxed);
  }
  std::int64_t blocked_ms_total() const noexcept {
    return blocked_ns_.load(std::memory_order_relaxed) / 1'000'000;
  }

 private:
  atomic<std::uint64_t> sends_{0};
  atomic<std::uint64_t> receives_{0};
  atomic<std::uint32_t> last_sender_{0};  // task_names numbers; 0: not a task, or none yet
  atomic<std::uint32_t> last_receiver_{0};
  atomic<std::int64_t> blocked_ns_{0};
};

}  // namespace custody::detail
