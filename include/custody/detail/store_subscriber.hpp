#pragma once
// The channel behind one store subscription. The owner writes updates straight into it (never
// through a shared queue or a fanout thread); the subscriber receives from it with an ordinary
// Receiver, so a subscription works with recv, range-for and select.
//
// The owner copies each committed value once, into a shared_ptr<const T>, and every
// subscription's ring holds pointers to such copies; a receiver makes its own T from the
// pointer. So under the ring's short spinlock only pointers and counters move: no T is
// copied, moved or destroyed there, nothing is allocated and nobody is woken (whom to wake is
// claimed under the lock and woken after it). A small trivially copyable T is the exception
// (held_inline): its copy runs no user code, so the rings hold it by value (held_update).
//
// The ring holds up to `capacity` unread updates (its storage starts inside the core and
// grows, allocated outside the lock, only when the subscriber falls behind):
// - lossless (policy::block): when the ring is full the owner's offer reports `full`, and the
//   owner leaves the update with the subscription (leave_pending) and waits, once for all full
//   subscriptions (room_wait). The receiver that brings the ring down to half full moves the
//   update into the ring itself, so it finds its next value without waiting for the owner,
//   and the last subscription to do so wakes the owner. If the owner gives up (stop or
//   deadline), it takes back the updates still pending, which count as missed;
// - overwriting (policy::latest = capacity 1, policy::buffer(n)): the owner drops the oldest
//   unread update and counts it.
// A missed count travels with the next value in the ring and is added to the subscriber's
// missed counter when that value is received, so the count read after a receive is exactly
// the number of updates lost before it.
// Every update carries the store's version; an update not newer than the last one taken in is
// ignored. That lets the subscriber put the store's current value in first without racing the
// owner: whichever of the two comes second and is not newer is dropped.
//
// A receiver copies the value at the head while it still sits there, and takes it out of the
// ring only if it is still the head once the copy is made: a copy that throws leaves the value
// in place.
//
// Lifetime: two references, the store's (released by the owner once it sees the subscription
// gone or the store closes) and the receivers' (one shared_ptr control block whose deleter
// runs detach() when the last Receiver handle goes: that is how dropping the receiver
// unsubscribes, and it releases an owner waiting for this subscriber).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "chan_core.hpp"
#include "interleave.hpp"
#include "parker.hpp"
#include "select_engine.hpp"
#include "spin.hpp"
#include "status.hpp"
#include "thread_annotations.hpp"
#include "waiter.hpp"

namespace custody::detail {

enum class offer_result : std::uint8_t { ok, full, gone };

/// Whether a subscription's ring holds updates by value: a T whose copy, move and destruction
/// run no user code and that fits in a cache line. Copying it under the ring's lock is then a
/// plain copy of bytes, and an update costs no allocation and no shared reference count, which
/// the owner and every receiver would otherwise write from their cores (the count's line and
/// the allocator's frees measured most of notify_fanout2_block256's time per update).
template <class T>
inline constexpr bool held_inline =
    std::conjunction_v<std::bool_constant<sizeof(T) <= 64>, std::is_trivially_copyable<T>,
                       std::is_nothrow_default_constructible<T>>;

/// An update as the rings hold it: the value itself (held_inline), else the owner's one copy.
template <class T>
using held_update = std::conditional_t<held_inline<T>, T, std::shared_ptr<const T>>;

/// The owner's copy of a committed value, made once for every subscription. Throws what
/// copying T throws, or std::bad_alloc.
template <class T, class From>
held_update<T> make_held(From&& value) {
  if constexpr (held_inline<T>) {
    return value;
  } else {
    return std::make_shared<const T>(std::forward<From>(value));
  }
}

/// The owner waiting until every full lossless subscription has taken the update it left
/// there: one wait per publish, however many subscriptions were full. The owner registers a
/// waiter with it as with a channel case (a thread in wait(), an asynchronous publish through
/// as_op() in a select), and the last subscription to take the update in settles that waiter
/// as done, with the one compare-exchange every settler uses.
/// Owner-only, except placed(), which subscriptions call under their own lock.
struct room_wait {
  /// Subscriptions still holding the update, plus one for the owner while it leaves them.
  atomic<std::uint32_t> left{0};

  /// One subscription put the update in its ring (or no longer needs it). The last one
  /// settles the owner's waiter; `wakes` wakes it, if asleep, once the caller's lock is
  /// released.
  void placed(wake_list& wakes) noexcept {
    if (left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::lock_guard lock(lock_);
    if (waiter* w = std::exchange(waiting_, nullptr)) {
      w->owner->try_settle(parker::make(settled::done, w->index), wakes);
    }
  }

  /// A thread's wait (the blocking publish): registers as the select case does, then sleeps
  /// without spinning first: the receivers it waits for need the cores, and spinning measured
  /// no faster in notify_fanout2_block1 on 2 CPUs. Returns ok once every subscription has
  /// placed the update, stopped or timeout if the owner gave up first.
  status wait(const std::stop_token* stop, std::optional<steady_clock::time_point> deadline) {
    parker self;
    waiter w;
    w.owner = &self;
    if (enqueue(w) != enqueued::waiting) return status::ok;
    std::uint32_t s = 0;
    {
      std::optional<std::stop_callback<stop_settler>> on_stop;
      if (stop && stop->stop_possible()) on_stop.emplace(*stop, stop_settler{&self});
      s = self.wait(deadline, false);
    }
    dequeue(w);  // a settler holds the lock while it touches `self`: gone after this
    switch (parker::how(s)) {
      case settled::stopped:
        return status::stopped;
      case settled::timed_out:
        return status::timeout;
      default:
        return status::ok;
    }
  }

  /// The wait as a select case, for an asynchronous publish: ready (ok) once every
  /// subscription has placed the update.
  op as_op() noexcept {
    op made{};
    made.core = this;
    made.hands_over = true;  // never spun on: the subscribers need the cores to make room
    made.attempt = [](op& o) { return static_cast<room_wait*>(o.core)->attempt(); };
    made.attempt_spinning = made.attempt;
    made.enqueue = [](op& o, waiter& w) { return static_cast<room_wait*>(o.core)->enqueue(w); };
    made.dequeue = [](op& o, waiter& w) noexcept { static_cast<room_wait*>(o.core)->dequeue(w); };
    return made;
  }

 private:
  status attempt() const noexcept {
    return left.load(std::memory_order_acquire) == 0 ? status::ok : status::would_block;
  }

  // Either the last placed() finds the waiter linked, or this finds every update placed.
  enqueued enqueue(waiter& w) noexcept {
    std::lock_guard lock(lock_);
    if (left.load(std::memory_order_acquire) == 0) {
      return w.owner->try_settle_self(parker::make(settled::done, w.index))
                 ? enqueued::committed_ok
                 : enqueued::settled_elsewhere;
    }
    waiting_ = &w;
    return enqueued::waiting;
  }

  void dequeue(waiter& w) noexcept {
    std::lock_guard lock(lock_);
    if (waiting_ == &w) waiting_ = nullptr;
  }

  spinlock lock_;
  waiter* waiting_ CUSTODY_GUARDED_BY(lock_) = nullptr;
};

/// Waiters claimed under a lock, woken after it: a chain through their own links, which are
/// ours from the claim until finish().
class claimed_waiters {
 public:
  claimed_waiters() = default;
  claimed_waiters(const claimed_waiters&) = delete;
  claimed_waiters& operator=(const claimed_waiters&) = delete;
  ~claimed_waiters() {
    if (first_) wake_all();  // inline: usually nobody was claimed
  }

  /// Pops waiters from `queue` until one is claimed (or every one when `all`). Under the
  /// queue's lock.
  void claim(waiter_queue& queue, bool all) noexcept {
    while (waiter* w = queue.pop_front()) {
      if (!w->owner->try_claim()) continue;  // settled by another case, stop or deadline
      w->next = first_;
      first_ = w;
      if (!all) return;
    }
  }

  /// Wakes every claimed waiter to try again. After the lock is released.
  void wake_all() noexcept {
    while (waiter* w = first_) {
      first_ = w->next;  // read before finish(): the waiter's thread owns it again then
      w->owner->finish(parker::make(settled::notified, w->index));
    }
  }

 private:
  waiter* first_ = nullptr;
};

/// The subscription's channel, as its receivers see it; the owner writes into it directly.
///
/// A subscription of capacity 1 (block(1), latest) counts as a hand-over channel
/// (chan_core(true)): every update is handed over in lockstep, so a receiver that finds the
/// ring empty registers at once and spins on its own state word, which the owner settles when
/// it puts a value in. A larger ring is a buffered channel: a receiver that finds it empty
/// first spins on `filled_`, without the lock, as on any buffered channel, and finds the
/// owner's next updates there without either side settling or waking the other per update.
template <class T>
class sub_core final : public chan_core<T> {
  using held = held_update<T>;
  // A receiver of a shared copy checks by version that the head it copied from is still the
  // head; an update held inline is copied and taken in one hold of the lock, so its slot has no
  // version and is a third smaller: more updates share each cache line the owner fills and a
  // receiver then reads.
  struct versioned {
    std::uint64_t version = 0;
  };
  struct unversioned {};
  struct slot : std::conditional_t<held_inline<T>, unversioned, versioned> {
    held value{};
    std::uint64_t missed_before = 0;
  };

 public:
  sub_core(bool lossless, std::size_t capacity)
      : chan_core<T>(capacity <= 1),
        capacity_(static_cast<std::uint32_t>(
            std::min<std::size_t>(capacity, std::numeric_limits<std::uint32_t>::max()))),
        lossless_(lossless),
        latest_(!lossless && capacity <= 1) {}

  sub_core(const sub_core&) = delete;
  sub_core& operator=(const sub_core&) = delete;
  ~sub_core() override { this->leave_registry(); }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // --- the owner ------------------------------------------------------------------------

  /// Puts `value` (the store's update number `version`) in the ring. `full` only for lossless
  /// subscriptions; `gone` once the subscriber has unsubscribed (or the channel was closed).
  /// A receiver waiting for it is claimed into `wake`: the owner wakes them once it has served
  /// every subscription, so that a woken receiver taking the owner's core cannot hold back
  /// the others' updates. Throws std::bad_alloc when the ring must grow (nothing changes then).
  offer_result offer(const held& value, std::uint64_t version, claimed_waiters& wake) {
    return put(value, version, false, wake);
  }

  /// The store's current value, put in by subscribe(). Unlike offer() it also works after the
  /// store closed (the subscriber still gets the last value first), and it never waits: a
  /// full ring holds updates from the owner, which then delivers this version too.
  void offer_current(const held& value, std::uint64_t version) {
    claimed_waiters wake;
    put(value, version, true, wake);
  }

  /// The owner gave up delivering update `version` (a copy that threw): the subscriber learns
  /// it missed one.
  void skip(std::uint64_t version) noexcept {
    std::lock_guard lock(lock_);
    skip_locked(version);
  }

  /// For a ring that offer() found full: leaves update `version` here for the receivers to
  /// move into the ring once it is half empty, and counts it in `room.left`. False when there
  /// is nothing to wait for: room appeared meanwhile (the update went in now), or the
  /// subscription is gone.
  bool leave_pending(const held& value, std::uint64_t version, room_wait& room) noexcept {
    claimed_waiters wake;
    std::lock_guard lock(lock_);
    if (detached_ || closed_ || version <= last_version_) return false;
    if (size_ < allocated_) {
      insert(held(value), version);
      wake.claim(receivers_, false);
      return false;
    }
    pending_ = value;  // a pointer copy: no T is copied here
    pending_version_ = version;
    pending_for_ = &room;
    return true;
  }

  /// The owner stopped waiting: takes back the update it left here, if no receiver has moved
  /// it into the ring yet, and counts it as missed. True if it did.
  bool withdraw(const room_wait& room) noexcept {
    [[maybe_unused]] held taken_back;  // released after the lock
    std::lock_guard lock(lock_);
    if (pending_for_ != &room) return false;
    pending_for_ = nullptr;
    taken_back = std::move(pending_);
    skip_locked(pending_version_);
    return true;
  }

  /// The store closed: receivers drain what is buffered, then see closed.
  void close_store() noexcept { close(); }

  /// The last receiver handle is gone: drops what the ring holds (after the lock) and releases
  /// an owner waiting for room here.
  void detach() noexcept {
    wake_list wakes;  // declared first: wakes after the lock is released
    [[maybe_unused]] held first;
    std::unique_ptr<slot[]> rest;
    [[maybe_unused]] held pending;
    std::lock_guard lock(lock_);
    detached_ = true;
    first = std::move(inline_slot_.value);
    rest = std::move(heap_slots_);
    slots_ = &inline_slot_;
    allocated_ = 1;
    head_ = size_ = 0;
    filled_.store(0, std::memory_order_release);
    pending = release_owner(wakes);
  }

  bool gone() const noexcept {
    std::lock_guard lock(lock_);
    return detached_ || closed_;
  }

  /// Updates lost before the values received so far.
  std::uint64_t missed() const noexcept { return missed_.load(std::memory_order_relaxed); }
  std::uint64_t take_missed() noexcept { return missed_.exchange(0, std::memory_order_relaxed); }

  /// Link in the store's stack of new subscriptions.
  sub_core* next_new = nullptr;

  // --- chan_core: the receiving side --------------------------------------------------------

  status try_recv(std::optional<T>& out) override {
    // Nothing to take, judged without the lock: a spinning receiver polls here, and must not
    // take the lock the owner needs to put the next update in. A closed ring takes the lock.
    if (filled_.load(std::memory_order_acquire) == 0 && !is_closed()) return status::would_block;
    if constexpr (held_inline<T>) {
      // The copy cannot throw and runs no user code: one hold of the lock copies and takes.
      T value{};
      bool room_for_owner = false;
      {
        std::lock_guard lock(lock_);
        if (size_ == 0) return closed_ ? status::closed : status::would_block;
        value = take_front();
        room_for_owner = owner_may_come_in();
      }
      if (room_for_owner) let_owner_in();
      out.emplace(value);
      return status::ok;
    } else {
      for (;;) {
        std::shared_ptr<const T> head;
        std::uint64_t version = 0;
        {
          std::lock_guard lock(lock_);
          if (size_ == 0) return closed_ ? status::closed : status::would_block;
          head = slots_[head_].value;
          version = slots_[head_].version;
        }
        out.emplace(*head);    // outside the lock; if it throws, the value stays in the ring
        wake_list wakes;       // declared first: wakes after the lock is released
        claimed_waiters wake;  // other receivers, when a pending update goes in
        held taken, stale;     // released after the lock
        {
          std::lock_guard lock(lock_);
          if (size_ != 0 && slots_[head_].version == version) {
            taken = take_front();
            if (owner_may_come_in()) stale = take_owners(wakes, wake);
            return status::ok;
          }
        }
        out.reset();  // another receiver took it, or the owner overwrote it: look again
      }
    }
  }

  /// A plain receive: takes a waiting value without registering; otherwise the select waits.
  std::optional<status> recv_alone(std::optional<T>& out, const std::stop_token*,
                                   std::optional<steady_clock::time_point>) override {
    const status s = try_recv(out);
    if (s == status::would_block) return std::nullopt;
    return s;
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

  // Nobody is ever linked as a sender.
  void dequeue_send(waiter&) noexcept override {}

  bool close() noexcept override {
    wake_list wakes;  // declared first: wakes after the lock is released
    claimed_waiters wake;
    [[maybe_unused]] held pending;
    std::lock_guard lock(lock_);
    if (closed_) return false;
    closed_ = true;
    closed_flag_.store(true, std::memory_order_release);
    wake.claim(receivers_, true);
    pending = release_owner(wakes);
    return true;
  }

  bool is_closed() const noexcept override { return closed_flag_.load(std::memory_order_acquire); }
  std::size_t size() const noexcept override {
    std::lock_guard lock(lock_);
    return size_;
  }
  std::size_t capacity() const noexcept override { return capacity_; }

 protected:
  /// A named subscription is reported as a subscriber of its store (the registration's
  /// context), not as a channel.
  void describe(const registration& self, inspection& into) const override {
    subscriber_report r;
    r.name = self.name();
    r.store = self.context();
    if (lossless_) {
      r.policy = "block(" + std::to_string(capacity_) + ")";
    } else if (capacity_ == 1) {
      r.policy = "latest";
    } else {
      r.policy = "buffer(" + std::to_string(capacity_) + ")";
    }
    r.backlog = size();
    r.missed = missed();
    r.closed = is_closed();
    into.subscribers.push_back(std::move(r));
  }

 private:
  std::uint32_t next(std::uint32_t i) const noexcept CUSTODY_REQUIRES(lock_) {
    return i + 1 == allocated_ ? 0 : i + 1;
  }

  // The ring starts with one slot inside the core and doubles, up to the capacity, only when
  // the subscriber falls behind: a generous capacity costs nothing until it is used.
  std::uint32_t grown(std::uint32_t allocated) const noexcept {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(
        capacity_, std::max<std::uint64_t>(std::uint64_t{allocated} * 2, 4)));
  }

  // The owner's every update for every subscription comes here: the common case (room in
  // the storage as it is) takes the lock once and has nothing to free or allocate, so it is
  // kept apart from the rest, which the compiler then leaves out of line. A `latest`
  // subscription usually still holds its last update, which the next one overwrites: it goes
  // to the rest at once rather than take the lock twice.
  offer_result put(const held& value, std::uint64_t version, bool current, claimed_waiters& wake) {
    if (!latest_) {
      std::lock_guard lock(lock_);
      if (size_ < allocated_ && !detached_ && (!closed_ || current) && version > last_version_) {
        insert(held(value), version);
        if (!receivers_.empty()) wake.claim(receivers_, false);  // usually nobody waits
        return offer_result::ok;
      }
    }
    return put_slow(value, version, current, wake);
  }

  // put() when the ring is full, must grow, or the update goes nowhere.
  [[gnu::noinline]] offer_result put_slow(const held& value, std::uint64_t version, bool current,
                                          claimed_waiters& wake) {
    std::unique_ptr<slot[]> fresh;  // allocated outside the lock when the ring must grow
    std::uint32_t fresh_size = 0;
    for (;;) {
      [[maybe_unused]] held evicted;      // released after the lock
      std::unique_ptr<slot[]> old_slots;  // freed after the lock
      {
        std::lock_guard lock(lock_);
        if (detached_ || (closed_ && !current)) return offer_result::gone;
        if (version <= last_version_) return offer_result::ok;
        if (size_ == capacity_) {
          if (current) return offer_result::ok;
          if (lossless_) return offer_result::full;
          // Overwrite the oldest; its loss is charged to the value after it.
          slot& oldest = slots_[head_];
          const std::uint64_t lost = oldest.missed_before + 1;
          evicted = std::move(oldest.value);
          oldest.missed_before = 0;
          head_ = next(head_);
          filled_.store(--size_, std::memory_order_release);
          if (size_ == 0) {
            carry_ += lost;
          } else {
            slots_[head_].missed_before += lost;
          }
        }
        if (size_ == allocated_) {
          if (fresh_size <= allocated_) {
            fresh_size = grown(allocated_);
          } else {
            old_slots = adopt(std::move(fresh), fresh_size);
          }
        }
        if (size_ < allocated_) {
          insert(held(value), version);
          if (!receivers_.empty()) wake.claim(receivers_, false);
          return offer_result::ok;
        }
      }
      fresh = std::make_unique<slot[]>(fresh_size);
    }
  }

  // Takes the head out of the ring and charges its missed count. Returns the taken value, for
  // the caller to release after the lock.
  held take_front() noexcept CUSTODY_REQUIRES(lock_) {
    slot& s = slots_[head_];
    held taken = std::move(s.value);
    if (s.missed_before != 0) {
      missed_.fetch_add(s.missed_before, std::memory_order_relaxed);
      s.missed_before = 0;
    }
    head_ = next(head_);
    filled_.store(--size_, std::memory_order_release);
    return taken;
  }

  // A full lossless subscriber takes the owner's update in once half of it is free, not at
  // the first free slot: otherwise the owner sleeps and wakes once per update while the
  // subscriber catches up (measured: 2 to 3 times slower with 64 slots).
  bool owner_may_come_in() const noexcept CUSTODY_REQUIRES(lock_) {
    return pending_for_ && size_ <= capacity_ / 2;
  }

  // Moves the owner's pending update into the ring and releases the owner, once
  // owner_may_come_in(). Returns the owner's stale copy, for the caller to release after the
  // lock.
  held take_owners(wake_list& wakes, claimed_waiters& wake) noexcept CUSTODY_REQUIRES(lock_) {
    if (pending_version_ > last_version_) {
      insert(std::move(pending_), pending_version_);
      wake.claim(receivers_, false);
    }
    return release_owner(wakes);
  }

  // take_owners() for a receive of an update held inline, after the lock hold that took its
  // value: kept out of that hold's frame, which then needs no lists of whom to wake. The
  // condition is checked again, as another receiver may have let the owner in meanwhile.
  [[gnu::noinline]] void let_owner_in() noexcept {
    wake_list wakes;       // declared first: wakes after the lock is released
    claimed_waiters wake;  // other receivers, when the pending update goes in
    [[maybe_unused]] held stale;
    std::lock_guard lock(lock_);
    if (owner_may_come_in()) stale = take_owners(wakes, wake);
  }

  // Appends an update to a ring with room. The slot is empty: nothing is destroyed here.
  void insert(held value, std::uint64_t version) noexcept CUSTODY_REQUIRES(lock_) {
    // head_ + size_ < 2 * allocated_: one subtraction instead of a division.
    std::uint32_t i = head_ + size_;
    if (i >= allocated_) i -= allocated_;
    slot& s = slots_[i];
    s.value = std::move(value);
    if constexpr (!held_inline<T>) s.version = version;
    s.missed_before = std::exchange(carry_, 0);
    filled_.store(++size_, std::memory_order_release);
    last_version_ = version;
  }

  void skip_locked(std::uint64_t version) noexcept CUSTODY_REQUIRES(lock_) {
    if (detached_ || closed_ || version <= last_version_) return;
    last_version_ = version;
    ++carry_;
  }

  // The owner no longer waits here: tells it so, and returns the update it left, for the
  // caller to release after the lock.
  held release_owner(wake_list& wakes) noexcept CUSTODY_REQUIRES(lock_) {
    room_wait* room = std::exchange(pending_for_, nullptr);
    if (room) room->placed(wakes);
    return std::move(pending_);
  }

  // Moves the ring into `fresh` (only pointers move) and returns the old storage to free.
  std::unique_ptr<slot[]> adopt(std::unique_ptr<slot[]> fresh, std::uint32_t fresh_size) noexcept
      CUSTODY_REQUIRES(lock_) {
    for (std::uint32_t i = 0; i < size_; ++i) {
      slot& from = slots_[(head_ + i) % allocated_];
      fresh[i] = std::move(from);
    }
    std::unique_ptr<slot[]> old = std::exchange(heap_slots_, std::move(fresh));
    slots_ = heap_slots_.get();
    allocated_ = fresh_size;
    head_ = 0;
    return old;
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

  // What the owner's offer and a receiver's take both touch, kept together: between the two
  // threads every update then moves the lines of these few fields and of its slot, no others.
  mutable spinlock lock_;
  bool closed_ CUSTODY_GUARDED_BY(lock_) = false;
  bool detached_ CUSTODY_GUARDED_BY(lock_) = false;
  atomic<bool> closed_flag_{false};
  const std::uint32_t capacity_;
  const bool lossless_;
  const bool latest_;  // policy::latest: one slot, which the next update usually overwrites
  std::uint32_t allocated_ CUSTODY_GUARDED_BY(lock_) = 1;
  std::uint32_t head_ CUSTODY_GUARDED_BY(lock_) = 0;
  std::uint32_t size_ CUSTODY_GUARDED_BY(lock_) = 0;
  atomic<std::uint32_t> filled_{0};  // size_ as last written under the lock, read without it
  slot* slots_ CUSTODY_GUARDED_BY(lock_) = &inline_slot_;
  // The owner's update waiting for room (lossless only), and the owner waiting for it to go in.
  room_wait* pending_for_ CUSTODY_GUARDED_BY(lock_) = nullptr;
  // The first slot, which policy::latest uses alone: every update is written there and read.
  slot inline_slot_ CUSTODY_GUARDED_BY(lock_);
  // Touched on every update by the owner alone (receivers link here only to wait).
  waiter_queue receivers_ CUSTODY_GUARDED_BY(lock_);
  std::uint64_t last_version_ CUSTODY_GUARDED_BY(lock_) = 0;
  std::uint64_t carry_ CUSTODY_GUARDED_BY(lock_) = 0;  // lost before the next value to arrive
  // Seldom touched.
  atomic<std::uint32_t> refs_{1};
  atomic<std::uint64_t> missed_{0};
  held pending_ CUSTODY_GUARDED_BY(lock_);
  std::uint64_t pending_version_ CUSTODY_GUARDED_BY(lock_) = 0;
  std::unique_ptr<slot[]> heap_slots_ CUSTODY_GUARDED_BY(lock_);
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
