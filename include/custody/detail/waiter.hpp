#pragma once
// A blocked operation's entry in a channel's queue of waiters.

#include <atomic>
#include <cstdint>
#include <mutex>

#include "block_note.hpp"
#include "interleave.hpp"
#include "parker.hpp"
#include "spin.hpp"

namespace custody::detail {

/// One case of one blocked operation, linked into one channel's queue. It lives on the blocked
/// thread's stack; the queue's lock decides who may touch its links.
struct waiter {
  parker* owner = nullptr;
  std::uint32_t index = 0;  // the case's position in its select (0 for a plain send/recv)
  void* slot = nullptr;     // send: the T to move from; receive: the std::optional<T> to fill
  waiter* prev = nullptr;
  waiter* next = nullptr;
  bool linked = false;
  const block_note* note = nullptr;  // null unless the operation is inspectable (block_note.hpp)
};

/// Intrusive FIFO of waiters. Not synchronised: its owner holds a lock around every call,
/// except looks_empty().
class waiter_queue {
 public:
  bool empty() const noexcept { return front() == nullptr; }
  waiter* front() const noexcept { return head_.load(std::memory_order_relaxed); }

  /// Without the lock: true when nobody was linked at some moment during the call. A waiter
  /// linking itself right now is missed, as if it had come a moment later.
  bool looks_empty() const noexcept { return head_.load(std::memory_order_acquire) == nullptr; }

  void push_back(waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) {
      tail_->next = &w;
    } else {
      head_.store(&w, std::memory_order_release);
    }
    tail_ = &w;
    w.linked = true;
  }

  void remove(waiter& w) noexcept {
    if (!w.linked) return;
    if (w.prev) {
      w.prev->next = w.next;
    } else {
      head_.store(w.next, std::memory_order_release);
    }
    (w.next ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
  }

  /// The blocked cases' notes, in order, copied into `into`. Under the owner's lock.
  void copy_facts(waiter_facts& into) const noexcept {
    for (const waiter* w = front(); w; w = w->next) into.add(w->note, w->index);
  }

  waiter* pop_front() noexcept {
    waiter* w = front();
    if (w) remove(*w);
    return w;
  }

  /// Settles waiters still open with `how`, unlinking them, until the queue is empty (true)
  /// or `wakes` is full (false: release the lock, let `wakes` wake them, and call again).
  bool settle_all(settled how, wake_list& wakes) noexcept {
    while (!wakes.full()) {
      waiter* w = pop_front();
      if (!w) return true;
      w->owner->try_settle(parker::make(how, w->index), wakes);  // `w` may be gone after this
    }
    return empty();
  }

 private:
  atomic<waiter*> head_{nullptr};  // atomic for looks_empty(); written under the lock
  waiter* tail_ = nullptr;
};

/// Waiters that are told "try again" rather than handed a value: the buffered channels'
/// senders waiting for room and receivers waiting for values. Telling costs one load when
/// nobody waits, which is the common case on a busy channel.
class wait_list {
 public:
  void add(waiter& w) noexcept {
    std::lock_guard lock(lock_);
    queue_.push_back(w);
    // Pairs with the load in notify_one: after this, the caller re-checks the channel, so
    // either it sees a value (or room) that arrived, or the notifier sees it waiting.
    nonempty_.store(true, std::memory_order_seq_cst);
  }

  void remove(waiter& w) noexcept {
    std::lock_guard lock(lock_);
    queue_.remove(w);
    nonempty_.store(!queue_.empty(), std::memory_order_relaxed);
  }

  /// Tells one still-open waiter to try again; wakes it after unlocking.
  void notify_one() noexcept {
    if (!nonempty_.load(std::memory_order_seq_cst)) return;
    wake_list wakes;  // declared first: wakes after the lock is released
    std::lock_guard lock(lock_);
    while (waiter* w = queue_.pop_front()) {
      if (w->owner->try_settle(parker::make(settled::notified, w->index), wakes)) break;
    }
    nonempty_.store(!queue_.empty(), std::memory_order_relaxed);
  }

  /// Claims the first still-open waiter, unlinking it, so that the caller can move a value to
  /// or from its slot and then finish() it; null when nobody waits or when `may_claim()`,
  /// asked under the lock, says no. Costs one load when nobody waits. `may_claim` must not
  /// block, allocate or run user code: it runs under the spinlock.
  template <class MayClaim>
  waiter* claim_one(MayClaim&& may_claim) noexcept {
    // Only a shortcut: the lock below decides. Callers that find nobody go on as before.
    if (!nonempty_.load(std::memory_order_seq_cst)) return nullptr;
    std::lock_guard lock(lock_);
    if (!may_claim()) return nullptr;
    waiter* claimed = nullptr;
    while (waiter* w = queue_.pop_front()) {
      if (w->owner->try_claim()) {
        claimed = w;
        break;
      }
    }
    nonempty_.store(!queue_.empty(), std::memory_order_relaxed);
    // Claims happen under the lock alone: a plain increment, no read-modify-write.
    if (claimed)
      claims_.store(claims_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return claimed;
  }

  /// Waiters claimed by claim_one() so far.
  std::uint64_t claims() const noexcept { return claims_.load(std::memory_order_relaxed); }

  /// Copies the blocked cases' notes; the lock is held only while copying.
  void copy_facts(waiter_facts& into) const noexcept {
    std::lock_guard lock(lock_);
    queue_.copy_facts(into);
  }

  /// Tells every waiter to try again (used on close), waking them a few at a time between
  /// holds of the lock.
  void notify_all() noexcept {
    for (bool done = false; !done;) {
      wake_list wakes;
      std::lock_guard lock(lock_);
      done = queue_.settle_all(settled::notified, wakes);
      nonempty_.store(!queue_.empty(), std::memory_order_relaxed);
    }
  }

 private:
  mutable spinlock lock_;
  waiter_queue queue_ CUSTODY_GUARDED_BY(lock_);
  atomic<bool> nonempty_{false};
  atomic<std::uint64_t> claims_{0};  // written under lock_, read without it
};

}  // namespace custody::detail
