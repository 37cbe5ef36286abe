#pragma once
// The shared state of a channel. Handles (Sender, Receiver, Channel) point at a chan_core; the
// select engine drives it through the operations below. A kind of channel is a class deriving
// from chan_core: unbuffered (rendezvous_core) and buffered (buffered_core) live here.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../inspection.hpp"
#include "block_note.hpp"
#include "channel_use.hpp"
#include "interleave.hpp"
#include "parker.hpp"
#include "registry.hpp"
#include "ring.hpp"
#include "status.hpp"
#include "task_record.hpp"
#include "waiter.hpp"

namespace custody::detail {

/// What registering a blocked case did.
enum class enqueued : std::uint8_t {
  waiting,            ///< linked; the case waits for a peer or a notification
  committed_ok,       ///< the case completed while registering (the owner settled itself)
  committed_closed,   ///< the case found the channel closed while registering
  settled_elsewhere,  ///< the owner was already settled (another case, stop, deadline)
  restart,            ///< the owner settled itself to retry: something became ready
};

/// A named channel's registration. `lone` holds the facts of the receiver waiting in an
/// unbuffered channel's lone slot: written and read under that channel's lock. `use` counts
/// what completes on the channel (channel_use.hpp).
class channel_registration : public registration {
 public:
  using registration::registration;
  /// The receiver in an unbuffered channel's lone slot, for a snapshot. Its task's name is
  /// copied in under the channel's lock as it takes the slot (it may leave the slot without the
  /// lock, and end, its name with it); the time it fell asleep it writes itself, in lone_asleep.
  waiter_fact lone{"", 0, 1, {}};
  block_note lone_asleep;  // only its time is used
  channel_use use;
};

template <class T>
class chan_core {
 public:
  virtual ~chan_core() = default;

  /// Names the channel for custody::inspect(): once, before the channel is shared. An empty
  /// name leaves it unnamed. `context` is what it belongs to (a subscription's store).
  void give_name(std::string name, std::string context = {}) {
    name_.give(std::move(name), this, &describe_named, std::move(context));
  }
  /// The channel's registration; null while it is unnamed.
  channel_registration* name_registration() const noexcept { return name_.get(); }

  /// True when blocked peers meet and move the value between them (unbuffered): spinning
  /// before registering would then only delay the meeting.
  bool hands_over() const noexcept { return hands_over_; }

  /// Non-blocking attempts. `ok` commits (the value moved); `closed` and `would_block` leave
  /// the value where it was.
  virtual status try_send(T& value) = 0;
  virtual status try_recv(std::optional<T>& out) = 0;

  /// try_send for a sender that found no room and is spinning: a kind of channel may make it
  /// wait for more room than one slot, so that sender and receiver stop working on the same
  /// cache lines. It must fall back to plain try_send's rules once registered (not used then).
  virtual status try_send_spinning(T& value) { return try_send(value); }

  /// A plain blocking receive that a kind of channel serves faster than a select of one case
  /// would; nothing: use the select. Same results as that select.
  virtual std::optional<status> recv_alone(std::optional<T>&, const std::stop_token*,
                                           std::optional<steady_clock::time_point>) {
    return std::nullopt;
  }

  /// Hands `value` to a receiver waiting in recv_alone, without taking the channel's lock,
  /// looking briefly for one about to arrive; false (the value untouched) when there is none. A
  /// blocking send tries it first.
  virtual bool try_send_to_lone(T&) { return false; }

  /// Register `w` (whose owner is waiting) as a blocked sender of `value` / receiver into `out`.
  virtual enqueued enqueue_send(waiter& w, T& value) = 0;
  virtual enqueued enqueue_recv(waiter& w, std::optional<T>& out) = 0;
  /// Unlink `w` if it is still linked. After it returns no peer refers to `w`.
  virtual void dequeue_send(waiter& w) noexcept = 0;
  virtual void dequeue_recv(waiter& w) noexcept = 0;

  virtual bool close() noexcept = 0;
  virtual bool is_closed() const noexcept = 0;
  virtual std::size_t size() const noexcept = 0;
  virtual std::size_t capacity() const noexcept = 0;

 protected:
  chan_core() = default;
  explicit chan_core(bool hands_over) noexcept : hands_over_(hands_over) {}

  /// The first thing a kind of channel's destructor does: a running snapshot must not read
  /// the members destroyed after it. Waits for that snapshot.
  void leave_registry() noexcept { name_.leave(); }
  channel_registration* named() const noexcept { return name_.get(); }
  /// The current thread completed a send (`sending`) or a receive: a named channel notes it.
  /// Called outside the channel's lock (it may intern the task's name). Forced inline: an
  /// unnamed channel then pays the null test alone, not a call around it.
  [[gnu::always_inline]] void completed(bool sending) const noexcept {
    if (channel_registration* n = name_.get()) [[unlikely]]
      n->use.completed(sending, hands_over_);
  }

  /// Values sent and received so far, for a snapshot of a named channel whose registration
  /// holds `use` (read through the snapshot's registration: a snapshot may run while the name
  /// is still being given). An unbuffered channel counts its hand-overs there, each both a
  /// send and a receive.
  virtual std::pair<std::uint64_t, std::uint64_t> traffic(const channel_use& use) const noexcept {
    const std::uint64_t n = use.hand_overs();
    return {n, n};
  }

  /// Copies the blocked senders' and receivers' notes, under the kind's own locks.
  virtual void copy_blocked(waiter_facts&, waiter_facts&) const noexcept {}

  /// Adds this named channel to `into`; a subscription adds itself as a subscriber instead.
  virtual void describe(const registration& self, inspection& into) const {
    waiter_facts senders, receivers;
    copy_blocked(senders, receivers);
    const auto now = steady_clock::now();
    channel_report r;
    r.name = self.name();
    r.capacity = capacity();
    r.length = size();
    r.closed = is_closed();
    r.unlisted = senders.report(r.senders, now) + receivers.report(r.receivers, now);
    // `self` is this object's own registration, made as that type when it was named.
    const channel_use& use =
        static_cast<const channel_registration&>(self).use;  // NOLINT(*-static-cast-downcast)
    std::tie(r.sends, r.receives) = traffic(use);
    r.blocked_ms_total = use.blocked_ms_total();
    r.last_sender = task_names::instance().name_of(use.last_sender());
    r.last_receiver = task_names::instance().name_of(use.last_receiver());
    into.channels.push_back(std::move(r));
  }

 private:
  static void describe_named(const void* object, const registration& self, inspection& into) {
    static_cast<const chan_core*>(object)->describe(self, into);
  }

  bool hands_over_ = false;
  basic_name_tag<channel_registration> name_;  // null unless named
};

/// Unbuffered channel: a send completes only when a receiver takes the value, so the two sides
/// meet under one lock and the one that arrives second moves the value to (or from) the one
/// that waits.
///
/// A plain receive that finds no sender, and no other receiver in the lone slot, waits in that
/// slot: its state word and the value live in the channel's first cache line. A blocking send
/// claims that word with one compare-exchange, without the lock, and the receiver leaves
/// without the lock too, so a hand-over costs the line's two trips between the cores (the
/// sender's claim, the receiver's look) and nothing else; moving more lines, or the same line
/// more often, was most of the cost of a ping-pong between two cores. Only for small values
/// that cannot throw when moved.
template <class T>
class alignas(64) rendezvous_core final : public chan_core<T> {
  static constexpr bool lone_fits =
      std::is_nothrow_move_constructible_v<T> && sizeof(std::optional<T>) <= 16;
  struct no_slot {};

 public:
  rendezvous_core() noexcept : chan_core<T>(true) {
    // The word is `waiting` only while a receiver waits in the slot: that alone lets a sender
    // claim it without the lock.
    lone_.settle_self(parker::make(settled::done, 0));
    lone_waiter_.owner = &lone_;
    if constexpr (lone_fits) lone_waiter_.slot = &lone_value_;
  }
  ~rendezvous_core() override { this->leave_registry(); }

  bool try_send_to_lone(T& value) override {
    if constexpr (!lone_fits) {
      return false;
    } else {
      // A receiver arms the word only while the channel is open, and close() settles an armed
      // word: winning the claim means the channel was open when the value left.
      // Touches the first cache line alone (not lone_waiter_): the receiver spins on it.
      if (!lone_.try_claim() && !(receiver_arriving() && lone_.try_claim())) return false;
      lone_value_.emplace(std::move(value));  // cannot throw: lone_fits
      lone_.finish(parker::make(settled::done, 0));
      this->completed(true);
      return true;
    }
  }

  status try_send(T& value) override {
    if (!lone_.is_waiting() && nobody_queued(receivers_)) return closed_or_would_block();
    std::unique_lock lock(lock_);
    if (closed_) return status::closed;
    waiter* r = claim_receiver(nullptr);
    if (!r) return status::would_block;
    lock.unlock();
    hand_over(*r, [&] { static_cast<std::optional<T>*>(r->slot)->emplace(std::move(value)); });
    this->completed(true);
    return status::ok;
  }

  status try_recv(std::optional<T>& out) override {
    if (nobody_queued(senders_)) return closed_or_would_block();
    std::unique_lock lock(lock_);
    // Closing settles the queued senders in batches: none of them may be claimed meanwhile.
    if (closed_) return status::closed;
    waiter* s = claim_peer(senders_, nullptr);
    if (!s) return status::would_block;
    lock.unlock();
    hand_over(*s, [&] { out.emplace(std::move(*static_cast<T*>(s->slot))); });
    this->completed(false);
    return status::ok;
  }

  std::optional<status> recv_alone(std::optional<T>& out, const std::stop_token* stop,
                                   std::optional<steady_clock::time_point> deadline) override {
    if constexpr (!lone_fits) {
      return std::nullopt;
    } else {
      channel_registration* named = nullptr;
      {
        std::unique_lock lock(lock_);
        if (closed_) return status::closed;
        if (waiter* s = claim_peer(senders_, nullptr)) {
          lock.unlock();
          hand_over(*s, [&] { out.emplace(std::move(*static_cast<T*>(s->slot))); });
          this->completed(false);
          return status::ok;
        }
        // Another receiver waits in the slot, or has yet to take its value out of it.
        if (lone_taken_.load(std::memory_order_acquire)) return std::nullopt;
        if (stop && stop->stop_requested()) return status::stopped;
        if (deadline && steady_clock::now() >= *deadline) return status::timeout;
        lone_taken_.store(true, std::memory_order_relaxed);
        // Inspection only: a named channel notes who waits in the slot (under the lock: the
        // note must match the slot's user).
        named = this->named();
        if (named) {
          named->lone.copy_task(current_task.name);
          named->lone_asleep.reset(nullptr);
        }
        lone_.reset();
      }
      std::uint32_t s;
      std::optional<steady_clock::time_point> asleep_since;
      {
        const waited_channel waits{named, false};
        std::optional<blocked_scope> blocked;
        // Gone before the slot is given back: a late stop must not settle its next user.
        std::optional<std::stop_callback<stop_settler>> on_stop;
        if (stop && stop->stop_possible()) on_stop.emplace(*stop, stop_settler{&lone_});
        s = lone_.wait(deadline, true, [&] {
          // Only what someone can read is recorded: the clock is read for that alone.
          if (!named && !current_task.record) return;
          asleep_since = steady_clock::now();
          if (named) named->lone_asleep.fell_asleep(*asleep_since);
          blocked.emplace("recv on", &waits, 1, 1, *asleep_since);
        });
      }
      if (named && asleep_since) named->use.blocked_for(steady_clock::now() - *asleep_since);
      // Settled: nobody else touches the slot until it is given back, so no lock is needed.
      status result = status::closed;  // nothing but close() settles it otherwise
      switch (parker::how(s)) {
        case settled::done:
          // Left engaged: the next sender's emplace destroys the moved-from value. Writing the
          // line here would cost the sender a trip of it on its next claim.
          out.emplace(std::move(*lone_value_));
          if (named) named->use.completed_in_slot();
          result = status::ok;
          break;
        case settled::stopped:
          result = status::stopped;
          break;
        case settled::timed_out:
          result = status::timeout;
          break;
        default:
          break;
      }
      lone_taken_.store(false, std::memory_order_release);
      return result;
    }
  }

  enqueued enqueue_send(waiter& w, T& value) override {
    w.slot = &value;
    return enqueue(w, /*sending=*/true, [&](waiter& r) {
      static_cast<std::optional<T>*>(r.slot)->emplace(std::move(value));
    });
  }

  enqueued enqueue_recv(waiter& w, std::optional<T>& out) override {
    w.slot = &out;
    return enqueue(w, /*sending=*/false,
                   [&](waiter& s) { out.emplace(std::move(*static_cast<T*>(s.slot))); });
  }

  void dequeue_send(waiter& w) noexcept override {
    std::lock_guard lock(lock_);
    senders_.remove(w);
  }
  void dequeue_recv(waiter& w) noexcept override {
    std::lock_guard lock(lock_);
    receivers_.remove(w);
  }

  /// Settles every waiter as closed, a few at a time, waking each batch after unlocking. Once
  /// closed_ is set nobody else claims a queued waiter, so the batches act as one.
  bool close() noexcept override {
    for (bool first = true;; first = false) {
      wake_list wakes;  // declared first: wakes after the lock is released
      std::lock_guard lock(lock_);
      if (first) {
        if (closed_) return false;
        closed_ = true;
        closed_flag_.store(true, std::memory_order_release);
        lone_.try_settle(parker::make(settled::closed, 0), wakes);  // if a receiver waits there
      }
      if (senders_.settle_all(settled::closed, wakes) &&
          receivers_.settle_all(settled::closed, wakes)) {
        return true;
      }
    }
  }

  bool is_closed() const noexcept override { return closed_flag_.load(std::memory_order_acquire); }
  std::size_t size() const noexcept override { return 0; }
  std::size_t capacity() const noexcept override { return 0; }

 protected:
  void copy_blocked(waiter_facts& senders, waiter_facts& receivers) const noexcept override {
    std::lock_guard lock(lock_);
    senders_.copy_facts(senders);
    if (lone_.is_waiting()) {
      const channel_registration& named = *this->named();
      waiter_fact lone = named.lone;
      lone.since = named.lone_asleep.since();
      receivers.add(lone);
    }
    receivers_.copy_facts(receivers);
  }

 private:
  /// Whether `queue` is empty, judged without the lock: a try finding nobody waiting answers
  /// without it, as a select polling an idle channel among busy ones does on every pass.
  static bool nobody_queued(const waiter_queue& queue) noexcept CUSTODY_NO_THREAD_SAFETY_ANALYSIS {
    return queue.looks_empty();
  }

  /// A try's answer when nobody waits: a closed channel never gains a waiter again.
  status closed_or_would_block() const noexcept {
    return is_closed() ? status::closed : status::would_block;
  }

  /// Finds the first waiter in `queue` that is not `self` and claims it; waiters already
  /// settled by someone else are dropped on the way. Called under the lock.
  static waiter* claim_peer(waiter_queue& queue, const parker* self) noexcept {
    for (waiter* w = queue.front(); w;) {
      waiter* next = w->next;
      if (w->owner != self) {
        queue.remove(*w);
        if (w->owner->try_claim()) return w;
      }
      w = next;
    }
    return nullptr;
  }

  /// Whether a receiver armed the lone slot within a brief spin. In a ping-pong the peer comes
  /// back for its next receive while our send starts, and one send in five found the slot not
  /// yet armed and queued itself, which costs both sides several more cache lines than the
  /// wait. Gives up at once when a receiver queued instead (a select, a second receiver) or the
  /// channel closed: the caller's queued path handles those.
  bool receiver_arriving() const noexcept {
    bool armed = false;
    spin_briefly([&]() noexcept {
      armed = lone_.is_waiting();
      return armed || !nobody_queued(receivers_) || closed_flag_.load(std::memory_order_relaxed);
    });
    return armed;
  }

  /// The receiver in the lone slot, else the first queued one. Called under the lock.
  waiter* claim_receiver(const parker* self) noexcept CUSTODY_REQUIRES(lock_) {
    // Looked at first: the word shares the lock's line, which is ours now, and a claim that
    // fails would still be a locked instruction.
    if (lone_.is_waiting() && lone_.try_claim()) return &lone_waiter_;
    return claim_peer(receivers_, self);
  }

  bool has_open_receiver(const parker* self) const noexcept CUSTODY_REQUIRES(lock_) {
    return lone_.is_waiting() || has_open_peer(receivers_, self);
  }

  /// Moves the value between us and a claimed peer, then settles the peer. If the move throws,
  /// the peer is told to try again and the exception goes to our caller.
  template <class Move>
  static void hand_over(waiter& peer, Move&& move) {
    try {
      move();
    } catch (...) {
      peer.owner->finish(parker::make(settled::notified, peer.index));
      throw;
    }
    peer.owner->finish(parker::make(settled::done, peer.index));
  }

  template <class Move>
  enqueued enqueue(waiter& w, bool sending, Move&& move) {
    parker& self = *w.owner;
    std::unique_lock lock(lock_);
    if (closed_) {
      if (!self.try_settle_self(parker::make(settled::closed, w.index))) {
        return enqueued::settled_elsewhere;
      }
      return enqueued::committed_closed;
    }
    if (sending ? has_open_receiver(&self) : has_open_peer(senders_, &self)) {
      // A peer waits: complete the case now. Settle ourselves first, so that no other case
      // of ours can commit meanwhile.
      if (!self.try_claim()) return enqueued::settled_elsewhere;
      waiter* peer = sending ? claim_receiver(&self) : claim_peer(senders_, &self);
      if (!peer) {
        // The peer was settled by someone else in between: look again from the start.
        self.settle_self(parker::make(settled::restart, w.index));
        return enqueued::restart;
      }
      lock.unlock();
      try {
        hand_over(*peer, [&] { move(*peer); });
      } catch (...) {
        self.settle_self(parker::make(settled::restart, w.index));
        throw;
      }
      self.settle_self(parker::make(settled::done, w.index));
      this->completed(sending);
      return enqueued::committed_ok;
    }
    (sending ? senders_ : receivers_).push_back(w);
    return enqueued::waiting;
  }

  static bool has_open_peer(const waiter_queue& queue, const parker* self) noexcept {
    for (waiter* w = queue.front(); w; w = w->next) {
      if (w->owner != self && w->owner->is_waiting()) return true;
    }
    return false;
  }

  // The first cache line: everything a hand-over to a lone receiver touches.
  mutable spinlock lock_;
  bool closed_ CUSTODY_GUARDED_BY(lock_) = false;
  parker lone_;  // the lone slot's state word: `waiting` only while its receiver waits
  [[no_unique_address]] std::conditional_t<lone_fits, std::optional<T>, no_slot> lone_value_;
  waiter_queue senders_ CUSTODY_GUARDED_BY(lock_);
  waiter_queue receivers_ CUSTODY_GUARDED_BY(lock_);
  // Read-only after construction, or rarely used.
  waiter lone_waiter_;  // how a locked sender finds the lone slot: owner &lone_, slot &lone_value_
  atomic<bool> closed_flag_{false};
  // A receiver holds the lone slot: set under the lock, cleared by that receiver alone once it
  // has the value. A line of its own, which only receivers touch: a receiver's clearing write
  // then stays in its core instead of fetching the line the sender has just written (the
  // receiver's next locked instruction would wait for that fetch).
  alignas(64) atomic<bool> lone_taken_{false};
};

/// Buffered channel: values go through a ring; blocked senders and receivers wait in lists.
///
/// With the lock-free ring (`Ring::hands_over_directly`), a waiter is handed its value when
/// that saves it a retry, as Go's channels do:
/// - a send that finds a receiver waiting and the ring empty moves its value straight into the
///   receiver's slot (no push, no pop, no retry);
/// - a receive that popped a value and finds a sender waiting pushes that sender's value for
///   it, so the sender completes instead of retrying.
/// Otherwise (and always with the locked ring) a waiter is told to try again when room or a
/// value appears.
template <class T, class Ring>
class buffered_core final : public chan_core<T> {
 public:
  explicit buffered_core(std::size_t capacity) : ring_(capacity) {}
  ~buffered_core() override { this->leave_registry(); }

  status try_send(T& value) override {
    if constexpr (Ring::hands_over_directly) {
      if (hand_to_receiver(value)) {
        this->completed(true);
        return status::ok;
      }
    }
    const status s = ring_.try_push(value);
    if (s == status::ok) {
      receivers_.notify_one();
      this->completed(true);
    }
    return s;
  }

  status try_recv(std::optional<T>& out) override {
    const status s = ring_.try_pop(out);
    if (s == status::ok) {
      if constexpr (Ring::hands_over_directly) {
        refill_from_sender();
      } else {
        senders_.notify_one();
      }
      this->completed(false);
    }
    return s;
  }

  /// Resumes a spinning sender only once an eighth of the buffer is free: resuming at the first
  /// free slot keeps it right behind the receiver, and every value then costs two cache-line
  /// transfers between the cores (measured: 90 ns per value instead of 38 ns at capacity 1024).
  status try_send_spinning(T& value) override {
    return ring_.has_room(ring_.capacity() / 8 + 1) ? try_send(value) : status::would_block;
  }

  enqueued enqueue_send(waiter& w, T& value) override {
    w.slot = &value;  // a receiver may push it for us (refill_from_sender)
    senders_.add(w);
    return ring_.can_push() ? retry(w) : enqueued::waiting;
  }

  enqueued enqueue_recv(waiter& w, std::optional<T>& out) override {
    w.slot = &out;  // a sender may hand us its value (hand_to_receiver)
    receivers_.add(w);
    return ring_.can_pop() ? retry(w) : enqueued::waiting;
  }

  void dequeue_send(waiter& w) noexcept override { senders_.remove(w); }
  void dequeue_recv(waiter& w) noexcept override { receivers_.remove(w); }

  bool close() noexcept override {
    if (!ring_.close()) return false;
    senders_.notify_all();
    receivers_.notify_all();
    return true;
  }

  bool is_closed() const noexcept override { return ring_.is_closed(); }
  std::size_t size() const noexcept override { return ring_.size(); }
  std::size_t capacity() const noexcept override { return ring_.capacity(); }

  /// The ring counts what went through it: counting each value again would cost a spsc
  /// channel's two ends a read-modify-write each per value (about 6 ns each, on a value of 30).
  /// A value handed to a waiting receiver passed no ring: the receivers' list counts those
  /// claims, each one send and one receive. A value pushed for a waiting sender is a push.
  std::pair<std::uint64_t, std::uint64_t> traffic(const channel_use&) const noexcept override {
    const std::uint64_t handed = receivers_.claims();
    return {ring_.pushed() + handed, ring_.popped() + handed};
  }

 protected:
  void copy_blocked(waiter_facts& senders, waiter_facts& receivers) const noexcept override {
    senders_.copy_facts(senders);
    receivers_.copy_facts(receivers);
  }

 private:
  /// The ring became ready between the caller's attempt and its registration.
  static enqueued retry(waiter& w) noexcept {
    if (w.owner->try_settle_self(parker::make(settled::restart, w.index))) return enqueued::restart;
    // A peer claimed the owner meanwhile and is moving a value: it settles the word when done,
    // so the owner waits for that as for any peer (a settled word reads as settled elsewhere).
    const std::uint32_t s = w.owner->load();
    return (s & ~parker::wakers) == parker::busy ? enqueued::waiting : enqueued::settled_elsewhere;
  }

  /// A receiver waits while the ring is empty: moves `value` into its slot and settles it done.
  /// Only when the ring is empty and open, judged under the receivers' lock: a value of ours
  /// still in the ring must be received first (per-sender order), and close() notifies the
  /// receivers under that lock after marking the ring, so a claim made before the mark is a send
  /// made before the close, whose value is received. False, the value untouched, otherwise.
  bool hand_to_receiver(T& value) noexcept {
    waiter* r = receivers_.claim_one([this]() noexcept { return ring_.open_and_empty(); });
    if (!r) return false;
    parker& owner = *r->owner;
    const std::uint32_t done = parker::make(settled::done, r->index);
    // Outside the lock: T's move is user code. It cannot throw (lock-free ring).
    static_cast<std::optional<T>*>(r->slot)->emplace(std::move(value));
    owner.finish(done);
    return true;
  }

  /// After a pop made room: pushes the value of a waiting sender for it and settles it done,
  /// so it need not wake to retry. The sender's earlier values are ahead of it in the ring.
  /// If the room was taken meanwhile or the ring closed, the sender is told to try again.
  void refill_from_sender() noexcept {
    waiter* s = senders_.claim_one([]() noexcept { return true; });
    if (!s) return;
    parker& owner = *s->owner;
    const std::uint32_t index = s->index;
    const bool pushed = ring_.try_push(*static_cast<T*>(s->slot)) == status::ok;
    owner.finish(parker::make(pushed ? settled::done : settled::notified, index));
    // A value arrived: a receiver that registered since our pop must hear of it, as after any
    // push.
    if (pushed) receivers_.notify_one();
  }

  Ring ring_;
  wait_list senders_;
  wait_list receivers_;
};

}  // namespace custody::detail
