#pragma once
// The channel behind one store subscription. The owner writes updates straight into it (never
// through a shared queue or a fanout thread); the subscriber receives from it with an ordinary
// Receiver, so a subscription works with recv, range-for and select.
//
// One ring under one short spinlock holds up to `capacity` unread updates (its storage starts
// inside the core and grows only when the subscriber falls behind):
// - lossless (policy::block): when the ring is full the owner's offer reports `full`, and the
//   owner waits for room by sending through the core's second face, a chan_core of
//   offer_token, with the ordinary channel machinery (stop token, deadline); it is woken once
//   half of the ring is free;
// - overwriting (policy::latest = capacity 1, policy::buffer(n)): the owner drops the oldest
//   unread update and counts it. The count travels with the next value in the ring and is
//   added to the subscriber's missed counter when that value is received, so the count read
//   after a receive is exactly the number of updates lost before it.
// Every update carries the store's version; an update not newer than the last one taken in is
// ignored. That lets the subscriber put the store's current value in first without racing the
// owner: whichever of the two comes second and is not newer is dropped.
//
// Waiting receivers and the waiting owner are kept in queues under the same lock as the ring,
// and are woken under it, once per update, only if they sleep.
//
// Lifetime: two references, the store's (released by the owner once it sees the subscription
// gone or the store closes) and the receivers' (one shared_ptr control block whose deleter
// runs detach() when the last Receiver handle goes: that is how dropping the receiver
// unsubscribes, and it wakes an owner blocked on this subscriber).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "../status.hpp"
#include "chan_core.hpp"
#include "interleave.hpp"
#include "parker.hpp"
#include "spin.hpp"
#include "waiter.hpp"

namespace custody::detail {

enum class offer_result : std::uint8_t { ok, full, gone };

/// What the owner "sends" to a full lossless subscription to wait for room: the committed
/// value (copied in, never moved from) and its version.
template <class T>
struct offer_token {
  const T* value;
  std::uint64_t version;
};

/// The subscription's channel: receivers see a chan_core<T>; the owner, when it must wait for
/// room, sends an offer_token through the chan_core<offer_token<T>> side, so it waits with the
/// ordinary channel machinery (stop token, deadline).
template <class T>
class sub_core final : public chan_core<T>, public chan_core<offer_token<T>> {
 public:
  sub_core(bool lossless, std::size_t capacity)
      : capacity_(static_cast<std::uint32_t>(
            std::min<std::size_t>(capacity, std::numeric_limits<std::uint32_t>::max()))),
        lossless_(lossless) {}

  sub_core(const sub_core&) = delete;
  sub_core& operator=(const sub_core&) = delete;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // --- the owner ------------------------------------------------------------------------

  /// Puts `value` (the store's update number `version`) in the ring. `full` only for lossless
  /// subscriptions; `gone` once the subscriber has unsubscribed (or the channel was closed).
  /// If copying T throws, the exception propagates and the ring is unchanged except that an
  /// overwritten update stays counted as missed.
  offer_result offer(const T& value, std::uint64_t version) {
    std::lock_guard lock(lock_);
    if (detached_ || closed_) return offer_result::gone;
    if (version <= last_version_) return offer_result::ok;
    if (size_ == capacity_) {
      if (lossless_) return offer_result::full;
      // Overwrite the oldest; its loss is charged to the value after it.
      const std::uint64_t lost = slots_[head_].missed_before + 1;
      head_ = next(head_);
      --size_;
      if (size_ == 0) {
        carry_ += lost;
      } else {
        slots_[head_].missed_before += lost;
      }
    }
    push(value, version);
    return offer_result::ok;
  }

  /// The store's current value, put in by subscribe(). Unlike offer() it also works after the
  /// store closed (the subscriber still gets the last value first), and it never waits: a
  /// full ring holds updates from the owner, which then delivers this version too.
  void offer_current(const T& value, std::uint64_t version) {
    std::lock_guard lock(lock_);
    if (detached_ || version <= last_version_ || size_ == capacity_) return;
    push(value, version);
  }

  /// The owner's side as a channel, to wait for room with Sender<offer_token<T>>.
  chan_core<offer_token<T>>& offers() noexcept { return *this; }

  /// The store closed: receivers drain what is buffered, then see closed.
  void close_store() noexcept { close(); }

  /// The last receiver handle is gone.
  void detach() noexcept {
    std::lock_guard lock(lock_);
    detached_ = true;
    for (std::uint32_t i = 0; i < size_; ++i) slots_[(head_ + i) % allocated_].value.reset();
    size_ = 0;
    senders_.settle_all(settled::notified);
  }

  bool gone() const noexcept {
    std::lock_guard lock(lock_);
    return detached_ || closed_;
  }

  /// Updates lost (overwritten unread) before the values received so far.
  std::uint64_t missed() const noexcept { return missed_.load(std::memory_order_relaxed); }
  std::uint64_t take_missed() noexcept { return missed_.exchange(0, std::memory_order_relaxed); }

  /// Link in the store's stack of new subscriptions.
  sub_core* next_new = nullptr;

  // --- chan_core: the receiving side --------------------------------------------------------

  status try_recv(std::optional<T>& out) override {
    std::lock_guard lock(lock_);
    if (size_ == 0) return closed_ ? status::closed : status::would_block;
    slot& s = slots_[head_];
    out.emplace(std::move(*s.value));
    if (s.missed_before != 0) {
      missed_.fetch_add(s.missed_before, std::memory_order_relaxed);
      s.missed_before = 0;
    }
    head_ = next(head_);
    --size_;
    // A full lossless subscriber resumes the owner once half of it is free, not at the first
    // free slot: otherwise the owner sleeps and wakes once per update while the subscriber
    // catches up (measured: 2 to 3 times slower with 64 slots).
    if (size_ <= capacity_ / 2) wake_one(senders_);
    return status::ok;
  }

  enqueued enqueue_recv(waiter& w, std::optional<T>&) override {
    std::unique_lock lock(lock_);
    if (size_ > 0 || closed_) {
      lock.unlock();
      return retry(w);
    }
    receivers_.push_back(w);
    return enqueued::waiting;
  }

  void dequeue_recv(waiter& w) noexcept override {
    std::lock_guard lock(lock_);
    receivers_.remove(w);
  }

  // Nobody holds a Sender<T> of a subscription; one made from its core anyway finds it closed.
  status try_send(T&) override { return status::closed; }
  enqueued enqueue_send(waiter& w, T&) override { return refuse(w); }

  // --- chan_core<offer_token<T>>: the owner waiting for room -----------------------------

  status try_send(offer_token<T>& token) override {
    switch (offer(*token.value, token.version)) {
      case offer_result::ok:
        return status::ok;
      case offer_result::gone:
        return status::closed;
      case offer_result::full:
        break;
    }
    return status::would_block;
  }

  enqueued enqueue_send(waiter& w, offer_token<T>&) override {
    std::unique_lock lock(lock_);
    if (size_ < capacity_ || detached_ || closed_) {
      lock.unlock();
      return retry(w);
    }
    senders_.push_back(w);
    return enqueued::waiting;
  }

  status try_recv(std::optional<offer_token<T>>&) override { return status::closed; }
  enqueued enqueue_recv(waiter& w, std::optional<offer_token<T>>&) override { return refuse(w); }

  // Shared by both sides: a waiter is only ever linked in its own side's queue.
  void dequeue_send(waiter& w) noexcept override {
    std::lock_guard lock(lock_);
    senders_.remove(w);
  }

  bool close() noexcept override {
    std::lock_guard lock(lock_);
    if (closed_) return false;
    closed_ = true;
    closed_flag_.store(true, std::memory_order_release);
    receivers_.settle_all(settled::notified);
    senders_.settle_all(settled::notified);
    return true;
  }

  bool is_closed() const noexcept override { return closed_flag_.load(std::memory_order_acquire); }
  std::size_t size() const noexcept override {
    std::lock_guard lock(lock_);
    return size_;
  }
  std::size_t capacity() const noexcept override { return capacity_; }

 private:
  struct slot {
    std::optional<T> value;
    std::uint64_t missed_before = 0;
  };

  std::uint32_t next(std::uint32_t i) const noexcept { return i + 1 == allocated_ ? 0 : i + 1; }

  // Under the lock, with room in the ring (size_ < capacity_).
  void push(const T& value, std::uint64_t version) {
    if (size_ == allocated_) grow();
    slot& s = slots_[(head_ + size_) % allocated_];
    if (s.value) {
      *s.value = value;
    } else {
      s.value.emplace(value);
    }
    s.missed_before = std::exchange(carry_, 0);
    ++size_;
    last_version_ = version;
    wake_one(receivers_);
  }

  /// Tells one waiter to try again. Called under the lock, and unlinks the waiter before
  /// settling it (the select engine does not unlink a waiter settled as notified); a waiter
  /// settled by someone else unlinks itself under the same lock before its thread goes on.
  static void wake_one(waiter_queue& queue) noexcept {
    while (waiter* w = queue.pop_front()) {
      if (w->owner->try_settle(parker::make(settled::notified, w->index))) return;
    }
  }

  // The ring starts with one slot inside the core and doubles, up to the capacity, only when
  // the subscriber falls behind: a generous capacity costs nothing until it is used.
  void grow() {
    const auto bigger = static_cast<std::uint32_t>(std::min<std::uint64_t>(
        capacity_, std::max<std::uint64_t>(std::uint64_t{allocated_} * 2, 4)));
    auto fresh = std::make_unique<slot[]>(bigger);
    for (std::uint32_t i = 0; i < size_; ++i) {
      slot& from = slots_[(head_ + i) % allocated_];
      fresh[i].value = std::move(from.value);
      fresh[i].missed_before = from.missed_before;
    }
    heap_slots_ = std::move(fresh);
    slots_ = heap_slots_.get();
    allocated_ = bigger;
    head_ = 0;
  }

  static enqueued refuse(waiter& w) noexcept {
    return w.owner->try_settle_self(parker::make(settled::closed, w.index))
               ? enqueued::committed_closed
               : enqueued::settled_elsewhere;
  }

  static enqueued retry(waiter& w) noexcept {
    return w.owner->try_settle_self(parker::make(settled::restart, w.index))
               ? enqueued::restart
               : enqueued::settled_elsewhere;
  }

  mutable spinlock lock_;
  const std::uint32_t capacity_;
  std::uint32_t allocated_ = 1;
  std::uint32_t head_ = 0;
  std::uint32_t size_ = 0;
  const bool lossless_;
  bool closed_ = false;
  bool detached_ = false;
  atomic<bool> closed_flag_{false};
  atomic<std::uint32_t> refs_{1};
  std::uint64_t last_version_ = 0;
  std::uint64_t carry_ = 0;  // lost before the next value to arrive
  atomic<std::uint64_t> missed_{0};
  waiter_queue receivers_;
  waiter_queue senders_;
  slot inline_slot_;  // the first slot: policy::latest needs no second allocation
  std::unique_ptr<slot[]> heap_slots_;
  slot* slots_ = &inline_slot_;
};

/// The deleter of the receivers' shared_ptr: unsubscribes when the last Receiver goes.
template <class T>
struct sub_detacher {
  void operator()(chan_core<T>* core) const noexcept {
    auto* sub = static_cast<sub_core<T>*>(core);
    sub->detach();
    sub->release();
  }
};

}  // namespace custody::detail
