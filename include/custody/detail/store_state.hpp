#pragma once
// The shared state of one store: its snapshot cell, the channel of set requests, the callers
// waiting for answers, and the subscriptions. The Owner and every consumer view point here.

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../inspection.hpp"
#include "channel_ops.hpp"
#include "interleave.hpp"
#include "registry.hpp"
#include "select_engine.hpp"
#include "set_request.hpp"
#include "set_result.hpp"
#include "snapshot.hpp"
#include "spin.hpp"
#include "status.hpp"
#include "store_policy.hpp"
#include "store_registration.hpp"
#include "store_reply.hpp"
#include "store_requests.hpp"
#include "store_subscriber.hpp"

namespace custody {

/// Requirements on a store's value type, checked with readable messages.
template <class T>
constexpr bool check_store_value() {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "custody: a store's value type must be a non-const, non-volatile object type");
  static_assert(std::copyable<T>,
                "custody: a store's value type must be copyable (readers and subscribers each "
                "get their own copy)");
  return true;
}

namespace detail {

template <class T>
class store_state {
  static_assert(check_store_value<T>());

 public:
  using cell_type = snapshot_cell<T>;

  store_state(const T& initial, std::size_t request_capacity)
      : cell(initial), requests(make_request_channel(request_capacity)) {}

  store_state(const store_state&) = delete;
  store_state& operator=(const store_state&) = delete;

  ~store_state() {
    name_.leave();  // first: a running snapshot must not read what follows
    // Normally the owner closed the store; this covers an owner that was never completed.
    for (sub_core<T>* s : subs_) s->release();
    const std::uintptr_t head = new_subs_.load(std::memory_order_acquire);
    if (head != closed_mark) release_list(head);
  }

  cell_type cell;
  /// Set requests: callers send, the owner receives (Receiver of the same channel, whose
  /// receives skip requests whose callers gave up while they waited in it).
  std::shared_ptr<chan_core<SetRequest<T>>> requests;
  /// For a store whose owner lives elsewhere (another process): set() hands each request to
  /// this, on the caller's thread, instead of queueing it for an owner task, which saves a
  /// thread hand-over per request. It must take the request (and answer it, now or later)
  /// without blocking. Assigned before any view is handed out, never changed afterwards.
  std::function<void(SetRequest<T>&&)> forward_requests;

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  /// Names the store for custody::inspect(): once, before it is shared. An empty name leaves
  /// it unnamed.
  void give_name(std::string name) { name_.give(std::move(name), this, &describe_named); }
  /// The store's name, or "" when unnamed.
  const std::string& name() const noexcept { return name_.name(); }

  // --- consumers (any thread) ---------------------------------------------------------

  /// One set() from the caller's side, shared by the blocking form (set() below) and the
  /// asynchronous one (custody/asio/store.hpp), which run the same steps and differ only in
  /// how they wait: open(), then hand the request over (forward() or a send of request() on
  /// `requests`; unsent() if that failed), then receive from reply(), then finish(). It keeps
  /// its reply cell linked with the store while it lives, so that closing answers it at once.
  class set_call {
   public:
    set_call() noexcept = default;
    set_call(set_call&& other) noexcept
        : store_(std::exchange(other.store_, nullptr)),
          cell_(std::exchange(other.cell_, nullptr)),
          request_(std::move(other.request_)) {}
    set_call& operator=(set_call&&) = delete;
    ~set_call() {
      if (!cell_) return;
      request_access::discard(request_);  // never sent: its caller gives up
      store_->unlink(cell_);
      cell_->release();
    }

    /// Makes the request (conditional on the store being at version `expected`, if given).
    /// Returns the result at once when there is nothing to wait for: the store is closed,
    /// `stop` fired or `deadline` passed. Throws std::bad_alloc, or what moving T throws.
    std::optional<set_result<T>> open(store_state& store, T value, const std::stop_token* stop,
                                      std::optional<steady_clock::time_point> deadline,
                                      std::optional<std::uint64_t> expected = std::nullopt) {
      if (store.closed()) return store.answer_at_once(set_status::owner_gone);
      if (stop && stop->stop_requested()) return store.answer_at_once(set_status::stopped);
      if (deadline && steady_clock::now() >= *deadline) {
        return store.answer_at_once(set_status::timeout);
      }
      cell_ = new reply_cell<T>(std::move(value), expected);
      request_ = request_access::make(cell_);
      store_ = &store;
      if (!store.link(cell_)) return store.answer_at_once(set_status::owner_gone);
      return std::nullopt;
    }

    /// Hands the request to the store's forwarder, if it has one (then true: wait for the
    /// reply); false: send request() on the store's request channel.
    bool forward() {
      if (!store_->forward_requests) return false;
      store_->forward_requests(std::move(request_));
      return true;
    }
    /// The request to send; empty once sent.
    SetRequest<T>& request() noexcept { return request_; }
    /// The send ended with `sent` (not ok): the request never reached the owner.
    set_result<T> unsent(status sent) noexcept {
      request_access::discard(request_);
      return store_->answer_at_once(failure(sent));
    }

    /// Yields one reply_ready once the answer is in.
    chan_core<reply_ready>& reply() noexcept { return cell_->channel(); }
    /// The result, after the receive from reply() ended with `answered`. If it did not end
    /// with ok (stop or deadline) the caller gives up, unless an answer is in or being written
    /// (a move away): that answer is taken instead, so nothing the owner did is lost.
    set_result<T> finish(status answered) {
      if (answered != status::ok) {
        if (cell_->abandon()) return store_->answer_at_once(failure(answered));
        cell_->wait_answered();
      }
      set_result<T> result = cell_->take_result();
      store_->count_answer(result.status());
      return result;
    }

   private:
    store_state* store_ = nullptr;
    reply_cell<T>* cell_ = nullptr;
    SetRequest<T> request_;
  };

  /// `expected`: a conditional set's version (set_if), or nothing.
  set_result<T> set(T value, const std::stop_token* stop,
                    std::optional<steady_clock::time_point> deadline,
                    std::optional<std::uint64_t> expected = std::nullopt) {
    set_call call;
    if (auto at_once = call.open(*this, std::move(value), stop, deadline, expected)) {
      return std::move(*at_once);
    }
    if (!call.forward()) {
      const status sent = send(*requests, call.request(), stop, deadline);
      if (sent != status::ok) return call.unsent(sent);  // the request stayed here
    }
    std::optional<reply_ready> ready;
    return call.finish(receive_value(ready, call.reply(), stop, deadline));
  }

  /// `name`: the subscription's name for custody::inspect(); empty leaves it unnamed.
  std::shared_ptr<chan_core<T>> subscribe(const policy& p, std::string name = {}) {
    auto* core = new sub_core<T>(p.lossless(), p.capacity());
    // If this throws, the deleter runs and frees the core.
    std::shared_ptr<chan_core<T>> handle(core, sub_detacher<T>{});
    if (!name.empty()) core->give_name(std::move(name), this->name());
    core->retain();  // the store's reference
    // Both this push and the owner's take after each commit are read-modify-writes of one
    // word: if the owner's take comes first, the push synchronises with it and the snapshot
    // read below sees that commit; otherwise the owner finds this subscription.
    const bool registered = push_new(core);
    if (p.current_first()) {
      auto [value, version] = cell.load_versioned();
      core->offer_current(make_held<T>(std::move(value)), version);
    }
    if (!registered) {
      core->close_store();
      core->release();
    }
    return handle;
  }

  // --- the owner (one thread at a time) ---------------------------------------------

  /// Offers the committed value to every subscriber without waiting, and remembers the full
  /// lossless ones for wait_blocked().
  /// One copy of the value is made for all of them; if making it (or growing a ring) throws,
  /// every subscriber not yet served is told it missed the update, and the exception goes on.
  void offer_all() {
    blocked_.clear();
    adopt();
    if (subs_.empty()) return;
    const std::uint64_t version = cell.version();
    std::size_t i = 0;
    claimed_waiters wake;  // woken once every subscription is served (or on the way out)
    try {
      offered_ = make_held<T>(cell.current());
      offer_from(i, version, wake);
    } catch (...) {
      for (; i < subs_.size(); ++i) subs_[i]->skip(version);
      for (sub_core<T>* full : blocked_) full->skip(version);
      blocked_.clear();
      offered_ = held_update<T>{};
      throw;
    }
  }

  /// Waits until every subscriber found full by offer_all() took the value in (or went away).
  /// The value is left with each of them, and their receivers put it in their rings as they
  /// make room; the owner waits once, until the last of them has, instead of once per full
  /// subscriber. If it gives up (stop or deadline), those still full miss the update.
  /// The blocking publish's wait; async_publish (custody/asio/store.hpp) runs the same steps,
  /// leave_blocked(), a wait on room_case(), end_blocked(), and waits without a thread.
  status wait_blocked(const std::stop_token* stop,
                      std::optional<steady_clock::time_point> deadline) {
    if (!leave_blocked()) return status::ok;  // the common case: no waiting
    return end_blocked(room_.wait(stop, deadline));
  }

  /// Leaves the committed value with every subscriber offer_all() found full. True when the
  /// owner must wait until they took it in (a thread in wait_blocked(), an asynchronous publish
  /// on room_case()), then call end_blocked().
  bool leave_blocked() noexcept {
    // The rings hold their own references to the value: the owner's one goes now.
    held_update<T> offered = std::exchange(offered_, held_update<T>{});
    if (blocked_.empty()) return false;  // every publish asks: kept to a few instructions
    return leave_with_full(offered);
  }

  /// The owner's wait for room, as a select case: ok once every full subscriber took it in.
  op room_case() noexcept { return room_.as_op(); }

  /// The wait ended with `waited`. If the owner gave up (stopped, timeout), it takes back the
  /// value from those still full, which miss it; ok if none was left by then.
  status end_blocked(status waited) noexcept {
    bool missed = false;
    if (waited != status::ok) {
      for (sub_core<T>* s : blocked_) missed = s->withdraw(room_) || missed;
    }
    blocked_.clear();
    return missed ? waited : status::ok;
  }

 private:
  // leave_blocked() with full subscriptions: out of line, as it is rarely needed.
  [[gnu::noinline]] bool leave_with_full(const held_update<T>& offered) noexcept {
    const std::uint64_t version = cell.version();
    // One more than can arrive, so that no subscription settles the wait before all are left.
    room_.left.store(static_cast<std::uint32_t>(blocked_.size()) + 1, std::memory_order_relaxed);
    std::uint32_t not_left = 1;
    for (sub_core<T>* s : blocked_) {
      if (!s->leave_pending(offered, version, room_)) ++not_left;
    }
    if (room_.left.fetch_sub(not_left, std::memory_order_acq_rel) != not_left) return true;
    blocked_.clear();
    return false;
  }

  void offer_from(std::size_t& i, std::uint64_t version, claimed_waiters& wake) {
    while (i < subs_.size()) {
      sub_core<T>* s = subs_[i];
      switch (s->offer(offered_, version, wake)) {
        case offer_result::ok:
          ++i;
          break;
        case offer_result::full:
          blocked_.push_back(s);
          ++i;
          break;
        case offer_result::gone:
          subs_[i] = subs_.back();
          subs_.pop_back();
          s->release();
          break;
      }
    }
  }

 public:
  std::size_t subscriber_count() {
    adopt();
    for (std::size_t i = 0; i < subs_.size();) {
      if (subs_[i]->gone()) {
        subs_[i]->release();
        subs_[i] = subs_.back();
        subs_.pop_back();
      } else {
        ++i;
      }
    }
    return subs_.size();
  }

  /// Closes the store: callers waiting for an answer or for room in the request channel, and
  /// requests still queued, get owner_gone; subscribers drain, then see closed.
  void close() noexcept {
    closed_.store(true, std::memory_order_release);
    requests->close();
    for (std::optional<SetRequest<T>> r; requests->try_recv(r) == status::ok; r.reset()) {
      request_access::answer(*r, set_status::owner_gone);
    }
    {
      std::lock_guard lock(registry_lock_);
      registry_closed_ = true;
      while (reply_cell<T>* c = waiting_) {
        c->answer(set_status::owner_gone);
        unlink_locked(c);
      }
    }
    for (sub_core<T>* s : subs_) {
      s->close_store();
      s->release();
    }
    subs_.clear();
    // Subscriptions made since the last publish are closed straight from the stack: taking
    // them into subs_ could need memory, and closing must not fail.
    for (sub_core<T>* s = as_sub(new_subs_.exchange(closed_mark, std::memory_order_acq_rel)); s;) {
      sub_core<T>* next = s->next_new;
      s->close_store();
      s->release();
      s = next;
    }
  }

 private:
  static constexpr std::uintptr_t closed_mark = 1;

  /// Every set() result goes through here or count_answer(), so that a named store counts
  /// them all; an unnamed one pays a null test.
  void count_answer(set_status s) noexcept {
    if (store_registration* named = name_.get()) named->count_answer(s);
  }
  set_result<T> answer_at_once(set_status s) noexcept {
    count_answer(s);
    return set_result<T>(s);
  }

  static std::shared_ptr<chan_core<SetRequest<T>>> make_request_channel(std::size_t capacity) {
    std::shared_ptr<chan_core<SetRequest<T>>> queue = make_core<SetRequest<T>>(capacity);
    if (capacity == 0) return queue;  // a caller who gives up withdraws its send
    return std::make_shared<request_core<SetRequest<T>>>(std::move(queue));
  }

  static set_status failure(status s) noexcept {
    return s == status::timeout   ? set_status::timeout
           : s == status::stopped ? set_status::stopped
                                  : set_status::owner_gone;
  }

  bool push_new(sub_core<T>* core) noexcept {
    std::uintptr_t head = new_subs_.load(std::memory_order_relaxed);
    do {
      if (head == closed_mark) return false;
      core->next_new = reinterpret_cast<sub_core<T>*>(head);
    } while (!new_subs_.compare_exchange_weak(head, reinterpret_cast<std::uintptr_t>(core),
                                              std::memory_order_acq_rel,
                                              std::memory_order_relaxed));
    return true;
  }

  // After every commit, even with no subscribers: a read-modify-write, never a plain load,
  // so that a concurrent subscribe() cannot miss the commit while the owner misses it.
  void adopt() {
    if (closed_.load(std::memory_order_relaxed)) return;  // keeps the closed mark in place
    const std::uintptr_t head = new_subs_.exchange(0, std::memory_order_acq_rel);
    if (head != 0) adopt_new(head);
  }

  // adopt() with new subscriptions to take in; out of line, so that the check every publish
  // makes stays a few instructions.
  [[gnu::noinline]] void adopt_new(std::uintptr_t head) {
    std::size_t n = 0;
    for (sub_core<T>* s = as_sub(head); s; s = s->next_new) ++n;
    try {
      // Room for wait_blocked's list too, so that delivering never allocates for it.
      subs_.reserve(subs_.size() + n);
      blocked_.reserve(subs_.capacity());
    } catch (...) {
      give_back(head);  // a later publish (or close) takes them: none is lost
      throw;
    }
    for (sub_core<T>* s = as_sub(head); s; s = s->next_new) subs_.push_back(s);
  }

  /// Puts a chain taken from the stack back onto it.
  void give_back(std::uintptr_t head) noexcept {
    sub_core<T>* tail = as_sub(head);
    while (tail->next_new) tail = tail->next_new;
    std::uintptr_t current = new_subs_.load(std::memory_order_relaxed);
    do {
      tail->next_new = as_sub(current);
    } while (!new_subs_.compare_exchange_weak(current, head, std::memory_order_acq_rel,
                                              std::memory_order_relaxed));
  }

  // The stack's words are the subscriptions' addresses, kept as integers for one CAS.
  static sub_core<T>* as_sub(std::uintptr_t word) noexcept {
    return reinterpret_cast<sub_core<T>*>(word);  // NOLINT(performance-no-int-to-ptr)
  }

  static void release_list(std::uintptr_t head) noexcept {
    for (auto* s = as_sub(head); s;) {
      sub_core<T>* next = s->next_new;
      s->release();
      s = next;
    }
  }

  bool link(reply_cell<T>* c) noexcept {
    std::lock_guard lock(registry_lock_);
    if (registry_closed_) return false;
    c->prev = nullptr;
    c->next = waiting_;
    if (waiting_) waiting_->prev = c;
    waiting_ = c;
    c->linked = true;
    return true;
  }

  void unlink(reply_cell<T>* c) noexcept {
    std::lock_guard lock(registry_lock_);
    unlink_locked(c);
  }

  void unlink_locked(reply_cell<T>* c) noexcept {
    if (!c->linked) return;
    (c->prev ? c->prev->next : waiting_) = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = nullptr;
    c->linked = false;
  }

  static void describe_named(const void* object, const registration& self, inspection& into) {
    const auto& s = *static_cast<const store_state*>(object);
    store_report r;
    r.name = self.name();
    if constexpr (requires { s.cell.sequence(); }) {
      r.version = s.cell.sequence() >> 1;  // a seqlock's word: twice the version, +1 mid-write
    } else {
      r.version = s.cell.version();
    }
    r.publishes = r.version - 1;  // versions start at 1 and grow by one with every publish
    r.pending_sets = s.requests->size();
    // `self` is this object's own registration, made as that type when it was named.
    r.set_answers =
        static_cast<const store_registration&>(self).answers();  // NOLINT(*-static-cast-downcast)
    r.closed = s.closed();
    into.stores.push_back(std::move(r));
  }

  atomic<bool> closed_{false};
  // Read by every set() as it returns: kept off the owner-only line below, which the owner
  // writes on every publish (sharing it cost a set() round trip a fifth of its time).
  basic_name_tag<store_registration> name_;  // null unless named
  // Callers waiting for an answer, so that closing can answer them at once.
  spinlock registry_lock_;
  bool registry_closed_ = false;
  reply_cell<T>* waiting_ = nullptr;
  // New subscriptions: a stack that subscribe() pushes to and the owner takes whole.
  alignas(64) atomic<std::uintptr_t> new_subs_{0};
  // Owner-only.
  std::vector<sub_core<T>*> subs_;
  std::vector<sub_core<T>*> blocked_;
  room_wait room_;            // the owner waiting for the full ones among blocked_
  held_update<T> offered_{};  // the committed value, from offer_all to wait_blocked
};

}  // namespace detail
}  // namespace custody
