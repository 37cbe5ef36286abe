#pragma once
// What a named channel knows about its use, for custody::inspect(): the task that last
// completed a send and a receive, how many values an unbuffered channel handed over, and the
// time its waiters slept.
//
// Only a named channel has these (in its registration); each operation adds to them from its
// own thread with relaxed atomics, outside every lock. An unnamed channel pays the null test
// of its registration pointer and nothing else. A buffered channel's ring counts its sends
// and receives itself (ring.hpp), so its operations count nothing here.

#include <chrono>
#include <cstdint>

#include "interleave.hpp"
#include "task_names.hpp"

namespace custody::detail {

class channel_use {
 public:
  /// The current thread completed a send (`sending`) or a receive on the channel, unbuffered
  /// when `hands_over`: there a receive counts one value handed over (its send is the same).
  /// Forced inline, so that `sending`, a constant at every call, picks the end at compile time.
  [[gnu::always_inline]] void completed(bool sending, bool hands_over) noexcept {
    if (sending) {
      note_last(sender_.last_task);
      return;
    }
    if (hands_over) receiver_.hand_overs.fetch_add(1, std::memory_order_relaxed);
    note_last(receiver_.last_task);
  }

  /// The receiver in an unbuffered channel's lone slot took its value. Only the slot's holder
  /// counts here, and the slot passes from holder to holder through the channel, so a plain
  /// increment needs no read-modify-write (a locked instruction on every hand-over).
  void completed_in_slot() noexcept {
    atomic<std::uint64_t>& count = receiver_.slot_hand_overs;
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    note_last(receiver_.last_task);
  }

  /// A waiter that fell asleep on the channel `time` ago finished waiting (whatever ended it).
  void blocked_for(std::chrono::steady_clock::duration time) noexcept {
    blocked_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(time).count(),
                          std::memory_order_relaxed);
  }

  /// Values an unbuffered channel handed over: both its sends and its receives.
  std::uint64_t hand_overs() const noexcept {
    return receiver_.hand_overs.load(std::memory_order_relaxed) +
           receiver_.slot_hand_overs.load(std::memory_order_relaxed);
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
  // Each end's figures on a cache line of their own: a producer and a consumer each write
  // only theirs, so noting them does not bounce one line between their cores. Task numbers
  // are task_names'; 0: not a task, or none yet.
  struct alignas(64) sender_end {
    atomic<std::uint32_t> last_task{0};
  };
  struct alignas(64) receiver_end {
    atomic<std::uint32_t> last_task{0};
    atomic<std::uint64_t> hand_overs{0};
    atomic<std::uint64_t> slot_hand_overs{0};
  };

  // Written only when it changes: the same task at one end (the usual case) leaves the line
  // clean for a snapshot's reads.
  [[gnu::always_inline]] static void note_last(atomic<std::uint32_t>& last_task) noexcept {
    const std::uint32_t task = current_task_id();
    if (last_task.load(std::memory_order_relaxed) != task) {
      last_task.store(task, std::memory_order_relaxed);
    }
  }

  sender_end sender_;
  receiver_end receiver_;
  alignas(64) atomic<std::int64_t> blocked_ns_{0};
};

}  // namespace custody::detail
