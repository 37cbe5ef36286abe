#pragma once
// Fixed-capacity queues behind buffered channels. Both keep the "closed" flag inside the queue
// itself, so a send can never slip in after close while a receiver concludes "closed and
// drained".

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <utility>

#include "interleave.hpp"
#include "mutex.hpp"
#include "spin.hpp"
#include "status.hpp"

namespace custody::detail {

/// Lock-free multi-producer multi-consumer ring for types that move without throwing.
///
/// Each slot carries a stamp saying whose turn it is: `tail` when a sender may fill it,
/// `head + 1` when a receiver may empty it. Head and tail count positions as (lap, index); the
/// closed mark is a bit of tail, so a sender learns of close in the same load that finds its slot.
///
/// An attempt reads its own side's position and its slot, never the other side's position: a
/// sender does not read head, a receiver does not read tail (unless the ring is closing). In a
/// ring of one slot, where sender and receiver take turns, each such look moved a cache line
/// between the cores for every value, on top of the slot's own trip (docs/bench.md has the
/// figures of spsc_cap1 with and without). So an attempt cannot tell a full slot from one a
/// receiver is still emptying, nor an empty slot from one a sender is still filling: it fails
/// in both, as if it had come a moment earlier, before that peer's step. The re-checks made
/// after a waiter registers (can_push, can_pop) do read both positions, and wait such a peer out.
template <class T>
class lockfree_ring {
  static_assert(std::is_nothrow_move_constructible_v<T>);

 public:
  /// can_pop() takes no lock and moving a T cannot throw: a buffered channel may look at the
  /// ring under a wait list's spinlock and hand a value to a waiter directly (chan_core.hpp).
  static constexpr bool hands_over_directly = true;

  explicit lockfree_ring(std::size_t capacity)
      : capacity_(capacity),
        mark_bit_(round_up_pow2(capacity + 1)),
        one_lap_(mark_bit_ * 2),
        slots_(new slot[capacity]) {
    for (std::size_t i = 0; i < capacity; ++i) slots_[i].stamp.store(i, std::memory_order_relaxed);
  }

  lockfree_ring(const lockfree_ring&) = delete;
  lockfree_ring& operator=(const lockfree_ring&) = delete;

  ~lockfree_ring() {
    // Single-threaded now: destroy what nobody received.
    std::optional<T> out;
    while (try_pop(out) == status::ok) out.reset();
  }

  status try_push(T& value) noexcept {
    backoff b;
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & mark_bit_) return status::closed;
      const std::size_t index = tail & (mark_bit_ - 1);
      const std::size_t lap = tail & ~(one_lap_ - 1);
      slot& s = slots_[index];
      const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == tail) {
        const std::size_t next = index + 1 < capacity_ ? tail + 1 : lap + one_lap_;
        if (tail_.compare_exchange_weak(tail, next, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          ::new (s.storage) T(std::move(value));
          s.stamp.store(tail + 1, std::memory_order_release);
          return status::ok;
        }
        b.spin();
      } else if (stamp + one_lap_ == tail + 1) {
        // The slot still holds last lap's value: full, or a receiver is emptying it.
        return status::would_block;
      } else {
        // Another sender claimed the slot and has not stored its stamp yet.
        b.snooze();
        tail = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  status try_pop(std::optional<T>& out) noexcept {
    backoff b;
    std::size_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      const std::size_t index = head & (mark_bit_ - 1);
      const std::size_t lap = head & ~(one_lap_ - 1);
      slot& s = slots_[index];
      const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == head + 1) {
        const std::size_t next = index + 1 < capacity_ ? head + 1 : lap + one_lap_;
        if (head_.compare_exchange_weak(head, next, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          T* value = std::launder(reinterpret_cast<T*>(s.storage));
          out.emplace(std::move(*value));
          value->~T();
          s.stamp.store(head + one_lap_, std::memory_order_release);
          return status::ok;
        }
        b.spin();
      } else if (stamp == head) {
        // The slot is empty, or a sender is filling it. Only a ring that is closing needs a
        // closer look: closed and drained, or a value still on its way in (its sender may be
        // preempted between claim and store: pausing gives way to yielding).
        if (!closing_.load(std::memory_order_relaxed)) return status::would_block;
        const std::size_t tail = tail_.load(std::memory_order_seq_cst);
        if ((tail & ~mark_bit_) == head) {
          return (tail & mark_bit_) ? status::closed : status::would_block;
        }
        b.snooze();
        head = head_.load(std::memory_order_relaxed);
      } else {
        b.snooze();
        head = head_.load(std::memory_order_relaxed);
      }
    }
  }

  /// True when a push would not block: there is room, or the ring is closed. Reads both
  /// positions, and waits out a receiver still emptying the slot (it is between two stores).
  bool can_push() const noexcept {
    backoff b;
    for (;;) {
      const std::size_t tail = tail_.load(std::memory_order_seq_cst);
      const std::size_t head = head_.load(std::memory_order_seq_cst);
      if (tail & mark_bit_) return true;
      if (head + one_lap_ == tail) return false;
      if (slots_[tail & (mark_bit_ - 1)].stamp.load(std::memory_order_acquire) == tail) return true;
      // Another sender took the slot: there may be room further on; the caller tries again.
      if (tail_.load(std::memory_order_relaxed) != tail) return true;
      b.snooze();
    }
  }

  /// True when a pop would not block: there is a value, or the ring is closed. Reads both
  /// positions, and waits out a sender still filling the slot, as can_push does.
  bool can_pop() const noexcept {
    backoff b;
    for (;;) {
      const std::size_t head = head_.load(std::memory_order_seq_cst);
      const std::size_t tail = tail_.load(std::memory_order_seq_cst);
      if (tail & mark_bit_) return true;
      if (tail == head) return false;
      if (slots_[head & (mark_bit_ - 1)].stamp.load(std::memory_order_acquire) == head + 1) {
        return true;
      }
      if (head_.load(std::memory_order_relaxed) != head) return true;
      b.snooze();
    }
  }

  /// True when the ring is open and empty, from one look at both positions (never waits).
  bool open_and_empty() const noexcept {
    const std::size_t head = head_.load(std::memory_order_seq_cst);
    return tail_.load(std::memory_order_seq_cst) == head;  // a marked tail never equals head
  }

  /// Marks the ring closed; true if this call did it.
  bool close() noexcept {
    // Before the mark: a receiver that sees the mark then sees closing_ too.
    closing_.store(true, std::memory_order_seq_cst);
    return (tail_.fetch_or(mark_bit_, std::memory_order_seq_cst) & mark_bit_) == 0;
  }

  bool is_closed() const noexcept { return tail_.load(std::memory_order_seq_cst) & mark_bit_; }

  std::size_t size() const noexcept {
    for (;;) {
      const std::size_t tail = tail_.load(std::memory_order_seq_cst);
      const std::size_t head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != tail) continue;
      return size_of(head, tail);
    }
  }

  /// At least `n` free slots (or closed), for a spinning sender: the slot `n - 1` past tail
  /// is free. Reads tail and that slot, not head (see the class comment).
  bool has_room(std::size_t n) const noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail & mark_bit_) return true;
    const std::size_t last = ahead(tail, n - 1);
    return slots_[last & (mark_bit_ - 1)].stamp.load(std::memory_order_relaxed) == last;
  }

  std::size_t capacity() const noexcept { return capacity_; }

  /// Values pushed and popped since the ring was made, read off the positions: a position
  /// counts whole laps of `capacity_` values, plus its index.
  std::uint64_t pushed() const noexcept {
    return passed(tail_.load(std::memory_order_relaxed) & ~mark_bit_);
  }
  std::uint64_t popped() const noexcept { return passed(head_.load(std::memory_order_relaxed)); }

 private:
  std::uint64_t passed(std::size_t position) const noexcept {
    return position / one_lap_ * capacity_ + (position & (mark_bit_ - 1));
  }

  /// The position `k` after `position` (k < capacity_).
  std::size_t ahead(std::size_t position, std::size_t k) const noexcept {
    const std::size_t index = (position & (mark_bit_ - 1)) + k;
    const std::size_t lap = position & ~(one_lap_ - 1);
    return index < capacity_ ? lap + index : lap + one_lap_ + (index - capacity_);
  }

  struct slot {
    atomic<std::size_t> stamp{0};
    alignas(T) unsigned char storage[sizeof(T)];
  };

  std::size_t size_of(std::size_t head, std::size_t tail) const noexcept {
    const std::size_t hix = head & (mark_bit_ - 1);
    const std::size_t tix = tail & (mark_bit_ - 1);
    if (hix < tix) return tix - hix;
    if (hix > tix) return capacity_ - hix + tix;
    return (tail & ~mark_bit_) == head ? 0 : capacity_;
  }

  static std::size_t round_up_pow2(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }

  const std::size_t capacity_;
  const std::size_t mark_bit_;
  const std::size_t one_lap_;
  std::unique_ptr<slot[]> slots_;
  atomic<bool> closing_{false};  // close() has begun; read by receivers that find a slot empty
  alignas(64) atomic<std::size_t> head_{0};
  alignas(64) atomic<std::size_t> tail_{0};
};

/// Ring under a mutex, for types whose move may throw: the value is moved before anything is
/// committed, so a throwing move leaves the ring exactly as it was. A mutex, not a spinlock:
/// moving and destroying a T runs user code, which may take long or block, and threads
/// waiting for a mutex sleep instead of spinning through it.
template <class T>
class locked_ring {
 public:
  /// Looking at the ring takes its mutex, and a move may throw: waiters are only notified.
  static constexpr bool hands_over_directly = false;

  explicit locked_ring(std::size_t capacity)
      : capacity_(capacity),
        storage_(
            static_cast<T*>(::operator new (sizeof(T) * capacity, std::align_val_t{alignof(T)}))) {}

  locked_ring(const locked_ring&) = delete;
  locked_ring& operator=(const locked_ring&) = delete;

  ~locked_ring() {
    for (std::size_t i = 0; i < size_; ++i) storage_[(head_ + i) % capacity_].~T();
    ::operator delete (storage_, std::align_val_t{alignof(T)});
  }

  status try_push(T& value) {
    {
      std::lock_guard lock(lock_);
      if (closed_) return status::closed;
      if (size_ == capacity_) return status::would_block;
      ::new (&storage_[(head_ + size_) % capacity_]) T(std::move(value));
      ++size_;
      ++pushed_;
    }
    // Orders the push before the caller's look at the waiter list (see wait_list::add).
    full_barrier();
    return status::ok;
  }

  status try_pop(std::optional<T>& out) {
    {
      std::lock_guard lock(lock_);
      if (size_ == 0) return closed_ ? status::closed : status::would_block;
      T& front = storage_[head_];
      out.emplace(std::move(front));
      front.~T();
      head_ = (head_ + 1) % capacity_;
      --size_;
      ++popped_;
    }
    full_barrier();
    return status::ok;
  }

  bool can_push() const noexcept {
    full_barrier();
    std::lock_guard lock(lock_);
    return closed_ || size_ < capacity_;
  }
  bool can_pop() const noexcept {
    full_barrier();
    std::lock_guard lock(lock_);
    return closed_ || size_ > 0;
  }
  bool close() noexcept {
    std::lock_guard lock(lock_);
    return !std::exchange(closed_, true);
  }
  bool is_closed() const noexcept {
    std::lock_guard lock(lock_);
    return closed_;
  }
  std::size_t size() const noexcept {
    std::lock_guard lock(lock_);
    return size_;
  }
  bool has_room(std::size_t n) const noexcept {
    std::lock_guard lock(lock_);
    return closed_ || size_ + n <= capacity_;
  }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Values pushed and popped since the ring was made.
  std::uint64_t pushed() const noexcept {
    std::lock_guard lock(lock_);
    return pushed_;
  }
  std::uint64_t popped() const noexcept {
    std::lock_guard lock(lock_);
    return popped_;
  }

 private:
  // A sequentially consistent read-modify-write: orders the ring's state against the
  // waiter list's flag, in a form the thread sanitizer understands (unlike a bare fence).
  void full_barrier() const noexcept { barrier_.fetch_add(0, std::memory_order_seq_cst); }

  mutable mutex lock_;
  mutable atomic<unsigned> barrier_{0};
  const std::size_t capacity_;
  T* storage_ CUSTODY_PT_GUARDED_BY(lock_);
  std::size_t head_ CUSTODY_GUARDED_BY(lock_) = 0;
  std::size_t size_ CUSTODY_GUARDED_BY(lock_) = 0;
  bool closed_ CUSTODY_GUARDED_BY(lock_) = false;
  std::uint64_t pushed_ CUSTODY_GUARDED_BY(lock_) = 0;
  std::uint64_t popped_ CUSTODY_GUARDED_BY(lock_) = 0;
};

}  // namespace custody::detail
