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
    end& e = sending ? sender_ : receiver_;
    e.count.fetch_add(1, std::memory_order_relaxed);
    // Written only when it changes: the same task at one end (the usual case) leaves the line
    // clean for a snapshot's reads.
    const std::uint32_t task = current_task_id();
    if (e.last_task.load(std::memory_order_relaxed) != task) {
      e.last_task.store(task, std::memory_order_relaxed);
    }
  }

  /// A waiter that slept on the channel for `time` finished waiting (whatever ended it).
  void blocked_for(std::chrono::steady_clock::duration time) noexcept {
    blocked_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(time).count(),
                          std::memory_order_relaxed);
  }

  std::uint64_t sends() const noexcept { return sender_.count.load(std::memory_order_relaxed); }
  std::uint64_t receives() const noexcept {
    return receiver_.count.load(std::memory_order_relaxed);
  }
  std::uint32_t last_sender() const noexcept {
    return sender_.last_task.load(std::memory_order_relaxed);
  }
  std::uint32_t last_receiver() const noexcept {
    return receiver_.last_task.load(std::memory_order_relaxed);
  }
  std::int64_t blocked_ms_total() const noexcept {
    return blocked_ns_.load(std::memory_order_relaxed) / 1'000'000;
  }

 private:
  // One end's figures, on a cache line of their own: a producer and a consumer each write
  // only theirs, so counting does not bounce one line between their cores.
  struct alignas(64) end {
    atomic<std::uint64_t> count{0};
    atomic<std::uint32_t> last_task{0};  // task_names numbers; 0: not a task, or none yet
  };
  end sender_;
  end receiver_;
  alignas(64) atomic<std::int64_t> blocked_ns_{0};
};

}  // namespace custody::detail
