#pragma once
// The tasks of one io_context that were woken from outside its loops (by a thread, by a task of
// another context, by the context's shutdown), waiting for that context to run them.
//
// Why it exists: a post to an io_context takes its lock and may signal a sleeping thread, and one
// publish to 100,000 subscribers made 100,000 of them. Here a wake is one compare-exchange on a
// lock-free list, and the context learns of a whole batch through one posted drain.
//
// The chain. The inbox is idle or owned. The push that finds it idle makes it owned, and its
// caller posts the first drain; a push onto an owned inbox posts nothing. Exactly one drain owns
// the inbox at a time: it takes everything pushed so far (take()), and either hands the ownership
// on by posting the next drain, or gives it up when take() finds nothing (the inbox is idle again
// and the next push posts). So a push never finds the inbox owned by nobody, at most one drain is
// posted or queued for it at a time, and a pushed task is always taken by the drain that owns it.
// Tasks come out in the order they were pushed. task_root.hpp runs the drains.
//
// No allocation: a task is its own node (task_link). A task is in at most one list at a time (an
// inbox, a batch, a loop's ready queue), so the one link serves them all.

#include <atomic>
#include <utility>

#include "../detail/interleave.hpp"

namespace custody::detail {

/// A task's place in whichever list holds it while it waits to run.
struct task_link {
  task_link* next = nullptr;
};

/// Tasks in the order they are to run; owns none of them (moved, never copied).
class task_batch {
 public:
  task_batch() = default;
  task_batch(task_batch&& other) noexcept
      : head_(std::exchange(other.head_, nullptr)), tail_(std::exchange(other.tail_, nullptr)) {}
  task_batch& operator=(task_batch&& other) noexcept {
    head_ = std::exchange(other.head_, nullptr);
    tail_ = std::exchange(other.tail_, nullptr);
    return *this;
  }

  bool empty() const noexcept { return head_ == nullptr; }
  task_link* front() const noexcept { return head_; }

  void push_back(task_link& t) noexcept {
    t.next = nullptr;
    (tail_ ? tail_->next : head_) = &t;
    tail_ = &t;
  }

  task_link* pop_front() noexcept {
    task_link* t = head_;
    if (t) {
      head_ = t->next;
      if (!head_) tail_ = nullptr;
    }
    return t;
  }

  /// Cuts off the first `n` tasks (n > 0) and returns them; this batch keeps the rest.
  task_batch cut_front(int n) noexcept {
    task_batch front;
    if (!head_) return front;
    task_link* last = head_;
    for (int i = 1; i < n && last->next; ++i) last = last->next;
    front.head_ = head_;
    front.tail_ = last;
    head_ = last->next;
    if (!head_) tail_ = nullptr;
    last->next = nullptr;
    return front;
  }

 private:
  friend class task_inbox;
  task_link* head_ = nullptr;
  task_link* tail_ = nullptr;
};

/// A lock-free list of woken tasks: any thread pushes, the drain that owns it takes.
class task_inbox {
 public:
  /// Adds `t` from any thread. True when the inbox was idle: the caller owns it now and must
  /// post a drain (nothing else will take `t`).
  bool push(task_link& t) noexcept {
    task_link* head = head_.load(std::memory_order_relaxed);
    do {
      t.next = head;  // the list ends at nullptr (pushed onto idle) or at owned_mark_
      // Release: whoever takes `t` sees what its waker did before the push.
    } while (!head_.compare_exchange_weak(head, &t, std::memory_order_release,
                                          std::memory_order_relaxed));
    return head == nullptr;
  }

  /// For the drain that owns the inbox only: everything pushed since its last take, oldest
  /// first. Empty when nothing was: the inbox is then idle and the caller owns it no longer.
  task_batch take() noexcept {
    task_link* head = head_.load(std::memory_order_acquire);
    for (;;) {
      if (head != &owned_mark_) break;
      // Only pushes change an owned inbox, so failing means one came: take it.
      if (head_.compare_exchange_weak(head, nullptr, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return {};
      }
    }
    // Acquire: pairs with the release of every push (each push is a read-modify-write, so one
    // release sequence runs through them all).
    head = head_.exchange(&owned_mark_, std::memory_order_acquire);
    // Pushed newest first: reversed, the oldest runs first.
    task_batch batch;
    batch.tail_ = head;
    task_link* reversed = nullptr;
    while (head != nullptr && head != &owned_mark_) {
      task_link* older = std::exchange(head->next, reversed);
      reversed = std::exchange(head, older);
    }
    batch.head_ = reversed;
    return batch;
  }

 private:
  // What the list ends at while a drain owns the inbox; nullptr means idle. A task is never it.
  inline static task_link owned_mark_{};
  atomic<task_link*> head_{nullptr};  // idle, &owned_mark_, or the newest task pushed
};

}  // namespace custody::detail
