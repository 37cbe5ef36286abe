#pragma once
// The reply slot of one set() request: shared by the waiting caller and the request the owner
// holds, answered exactly once.
//
// States: pending -> writing -> answered, or pending -> abandoned (the caller stopped waiting).
// Whoever moves it out of `pending` decides: an answer after the caller gave up is discarded,
// and a caller that gives up while an answer is being written takes that answer instead.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "chan_core.hpp"
#include "interleave.hpp"
#include "parker.hpp"
#include "set_result.hpp"
#include "snapshot.hpp"
#include "spin.hpp"
#include "waiter.hpp"

namespace custody::detail {

/// What the reply channel delivers: only the news that the answer is in.
struct reply_ready {};

template <class T>
class reply_cell final : public chan_core<reply_ready> {
  enum : std::uint8_t { pending, writing, answered, abandoned };

 public:
  /// `expected`: the store's version the caller's value is based on (set_if), if any.
  reply_cell(T&& requested, std::optional<std::uint64_t> expected)
      : expected_(expected), value_(std::move(requested)) {}

  reply_cell(const reply_cell&) = delete;
  reply_cell& operator=(const reply_cell&) = delete;

  /// One reference for the caller, one for the request.
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // --- answering (the owner, or the store when it closes) -------------------------------

  /// The value asked for. Stable until the request is answered.
  const T& requested() const noexcept { return value_; }
  /// The version the request expects the store to be at (set_if), or nothing (set).
  std::optional<std::uint64_t> expected() const noexcept { return expected_; }

  /// `version`: the store's version holding `stored`, when the answering code knows it.
  bool answer_accepted(T&& stored, std::uint64_t version = 0) {
    if (!claim()) return false;
    version_ = version;
    try {
      value_ = std::move(stored);
    } catch (...) {
      status_ = set_status::dropped;
      publish();
      throw;
    }
    status_ = set_status::accepted;
    publish();
    return true;
  }

  bool answer_rejected(std::error_code code, std::string message) noexcept {
    if (!claim()) return false;
    code_ = code;
    message_ = std::move(message);
    status_ = set_status::rejected;
    publish();
    return true;
  }

  /// A status without a value: dropped, owner_gone, conflict, ...
  bool answer(set_status s) noexcept {
    if (!claim()) return false;
    status_ = s;
    publish();
    return true;
  }

  bool is_abandoned() const noexcept { return state_.load(std::memory_order_relaxed) == abandoned; }

  // --- the caller -----------------------------------------------------------------------

  /// Gives up waiting. False if an answer is in, or being written (then wait_answered()).
  bool abandon() noexcept {
    std::uint8_t expected = pending;
    return state_.compare_exchange_strong(expected, abandoned, std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  }

  void wait_answered() const noexcept {
    commit_backoff b;
    while (state_.load(std::memory_order_acquire) != answered) b.wait();
  }

  /// After the answer is in.
  set_result<T> take_result() {
    if (status_ == set_status::accepted) {
      auto r = set_result<T>::accepted_with(std::move(value_));
      result_access::set_version(r, version_);
      return r;
    }
    if (status_ == set_status::rejected) {
      return set_result<T>::rejected_with(code_, std::move(message_));
    }
    return set_result<T>(status_);
  }

  /// The caller waits for the answer by receiving from this channel: it yields one
  /// reply_ready once the answer is in.
  chan_core<reply_ready>& channel() noexcept { return *this; }

  // Links in the store's list of waiting callers; guarded by the store's lock.
  reply_cell* prev = nullptr;
  reply_cell* next = nullptr;
  bool linked = false;

 private:
  bool claim() noexcept {
    std::uint8_t expected = pending;
    return state_.compare_exchange_strong(expected, writing, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  // Wakes the caller if it sleeps. Its waiter is unlinked (under the lock) before it is
  // settled: the select engine does not unlink a waiter that was settled as notified.
  // A caller that is still spinning on the state has not registered: the answer then costs no
  // lock. The answer's store and the look at `registered_`, and the caller's store to
  // `registered_` and its look at the state, are sequentially consistent: either the caller
  // sees the answer, or the owner sees the caller registered and settles it.
  void publish() noexcept {
    state_.store(answered, std::memory_order_seq_cst);
    if (!registered_.load(std::memory_order_seq_cst)) return;
    wake_list wakes;  // declared first: wakes after the lock is released
    std::lock_guard lock(lock_);
    if (waiter* w = std::exchange(waiting_, nullptr)) {
      w->owner->try_settle(parker::make(settled::notified, w->index), wakes);
    }
  }

  // --- chan_core<reply_ready>: the caller's side ------------------------------------------

  status try_recv(std::optional<reply_ready>& out) override {
    if (state_.load(std::memory_order_acquire) != answered) return status::would_block;
    out.emplace();
    return status::ok;
  }

  enqueued enqueue_recv(waiter& w, std::optional<reply_ready>&) override {
    std::unique_lock lock(lock_);
    registered_.store(true, std::memory_order_seq_cst);
    if (state_.load(std::memory_order_seq_cst) == answered) {
      lock.unlock();
      return w.owner->try_settle_self(parker::make(settled::restart, w.index))
                 ? enqueued::restart
                 : enqueued::settled_elsewhere;
    }
    waiting_ = &w;
    return enqueued::waiting;
  }

  void dequeue_recv(waiter& w) noexcept override {
    std::lock_guard lock(lock_);
    if (waiting_ == &w) waiting_ = nullptr;
  }

  // Nobody sends on a reply channel.
  status try_send(reply_ready&) override { return status::closed; }
  enqueued enqueue_send(waiter& w, reply_ready&) override {
    return w.owner->try_settle_self(parker::make(settled::closed, w.index))
               ? enqueued::committed_closed
               : enqueued::settled_elsewhere;
  }
  void dequeue_send(waiter&) noexcept override {}
  bool close() noexcept override { return false; }
  bool is_closed() const noexcept override { return false; }
  std::size_t size() const noexcept override {
    return state_.load(std::memory_order_acquire) == answered ? 1 : 0;
  }
  std::size_t capacity() const noexcept override { return 1; }

  atomic<std::uint32_t> refs_{2};
  atomic<std::uint8_t> state_{pending};
  set_status status_ = set_status::dropped;
  std::uint64_t version_ = 0;
  const std::optional<std::uint64_t> expected_;
  atomic<bool> registered_{false};  // a caller registered to sleep (set once, under lock_)
  spinlock lock_;
  waiter* waiting_ CUSTODY_GUARDED_BY(lock_) = nullptr;
  T value_;
  std::error_code code_;
  std::string message_;
};

}  // namespace custody::detail
