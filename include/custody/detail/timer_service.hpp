#pragma once
// The process-wide timer thread behind custody's timers.
//
// One thread serves every timer in the process, so ten thousand live tickers cost ten thousand
// queue entries and one thread. The thread sleeps on a condition variable until the earliest
// deadline and is woken early only when a newly scheduled entry becomes the earliest one, so an
// idle process with pending timers does no work at all between deadlines.
//
// Callbacks run on the timer thread, one at a time, in deadline order. They must be short and
// must not block (custody's timers only ever call try_send), because a slow callback delays
// every other timer in the process. They must not throw: there is no caller on the timer
// thread to report to, so an escaping exception ends the program.
//
// The thread starts on the first schedule() and is joined during static destruction. A program
// that never uses a timer never starts it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "mutex.hpp"
#include "thread_annotations.hpp"

namespace custody::detail {

class timer_service {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = clock::duration;

  /// Names one scheduled entry. Ids are never reused within a process; 0 names nothing.
  using id = std::uint64_t;
  static constexpr id no_id = 0;

  /// The service of this process. Thread-safe. The first call allocates the service (it is
  /// never freed, so that a timer destroyed late in static destruction can still cancel safely)
  /// and registers the join of the timer thread to run at exit.
  static timer_service& instance() {
    static timer_service* const service = new timer_service();
    static const shutdown_guard guard{service};
    return *service;
  }

  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  /// Runs `fn` once on the timer thread at or after `due`. A `due` in the past runs it as soon
  /// as the timer thread gets to it. Thread-safe; may be called from a callback.
  /// Throws std::invalid_argument if `fn` is empty, std::bad_alloc, or std::system_error if the
  /// timer thread cannot be started; nothing is scheduled then.
  id schedule(time_point due, std::function<void()> fn) {
    if (!fn) throw std::invalid_argument("custody::detail::timer_service: empty callback");
    return add(due, duration::zero(),
               [f = std::move(fn)](std::uint64_t /*skipped*/) mutable { f(); });
  }

  /// Runs `fn` on the timer thread at `first`, `first + period`, `first + 2 * period`, ...
  /// until cancelled. Deadlines stay on that grid (no drift). If the timer thread reaches an
  /// entry so late that later deadlines have passed too, it runs `fn` once and skips to the
  /// next deadline still in the future, rather than running a burst; `fn` receives how many
  /// deadlines were skipped that way.
  /// Thread-safety and exceptions as for schedule(); also throws std::invalid_argument if
  /// `period` is not positive.
  id schedule_every(time_point first, duration period, std::function<void(std::uint64_t)> fn) {
    if (!fn) throw std::invalid_argument("custody::detail::timer_service: empty callback");
    if (period <= duration::zero()) {
      throw std::invalid_argument("custody::detail::timer_service: period must be positive");
    }
    return add(first, period, std::move(fn));
  }

  /// Removes entry `which`. When cancel returns, the entry's callback is not running and will
  /// not run again, except when cancel is called from that very callback (it cannot wait for
  /// itself): then the current run finishes normally and no further run happens.
  /// Returns true if the entry was still scheduled, that is, if this call prevented at least
  /// one run; false if it had already run (one-shot), was cancelled before, or never existed.
  /// Thread-safe. Blocks only while the callback is running on the timer thread.
  bool cancel(id which) {
    if (which == no_id) return false;  // also keeps the wait below from matching an idle thread
    callback doomed;  // destroyed after the lock is released, in case a destructor reenters
    std::unique_lock lock(mutex_);
    bool removed = false;
    if (auto it = entries_.find(which); it != entries_.end()) {
      // An entry whose callback is running is out of the queue; the timer thread sees the entry
      // gone when the callback returns and neither requeues nor runs it again.
      queue_.erase({it->second.due, which});
      doomed = std::move(it->second.fn);
      entries_.erase(it);
      removed = true;
    }
    if (std::this_thread::get_id() != thread_id_) {
      while (running_ == which) done_.wait(lock);
    }
    return removed;
  }

  /// Number of scheduled entries (one-shots that have not run yet, and periodic entries).
  /// For tests and diagnostics; the value may be stale as soon as it is returned.
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  using callback = std::function<void(std::uint64_t)>;

  struct entry {
    time_point due;
    duration period;  // zero for a one-shot entry
    callback fn;      // empty while the timer thread is running it
  };

  // Stops and joins the timer thread at static destruction. The service itself stays: timers
  // destroyed after this point may still cancel; anything scheduled after it never runs.
  struct shutdown_guard {
    timer_service* service;
    ~shutdown_guard() { service->shutdown(); }
  };

  timer_service() = default;

  id add(time_point due, duration period, callback fn) {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable() && !stopping_) {
      thread_ = std::thread([this] { run(); });
      thread_id_ = thread_.get_id();
    }
    const id which = ++last_id_;
    entries_.emplace(which, entry{due, period, std::move(fn)});
    try {
      const auto pos = queue_.emplace(due, which).first;
      // Only a new earliest deadline shortens the timer thread's sleep.
      if (pos == queue_.begin()) wake_.notify_one();
    } catch (...) {
      entries_.erase(which);
      throw;
    }
    return which;
  }

  // noexcept: an exception escaping a callback ends the program (see the file comment).
  void run() noexcept {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (queue_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto [due, which] = *queue_.begin();
      const time_point now = clock::now();
      if (now < due) {
        wake_.wait_until(lock, due);
        continue;
      }
      queue_.erase(queue_.begin());
      auto it = entries_.find(which);
      entry& e = it->second;
      callback fn = std::move(e.fn);
      std::uint64_t skipped = 0;
      if (e.period == duration::zero()) {
        entries_.erase(it);
      } else {
        e.due = next_due(due, e.period, now, skipped);
      }
      running_ = which;
      lock.unlock();
      fn(skipped);
      lock.lock();
      if (auto again = entries_.find(which); again != entries_.end()) {
        // Still scheduled (periodic and not cancelled meanwhile): hand the callback back.
        again->second.fn = std::move(fn);
        queue_.emplace(again->second.due, which);
      } else {
        // Destroy the callback, and whatever it captured, before a waiting cancel() returns,
        // but without holding the lock in case a destructor schedules or cancels.
        lock.unlock();
        fn = nullptr;
        lock.lock();
      }
      running_ = no_id;
      done_.notify_all();
    }
  }

  // The first deadline on the grid `due + k * period` (k >= 1) that is still in the future.
  // Each grid point passed over is counted in `skipped`.
  static time_point next_due(time_point due, duration period, time_point now,
                             std::uint64_t& skipped) {
    const auto behind = (now - due) / period;  // due <= now, so behind >= 0
    skipped = static_cast<std::uint64_t>(behind);
    const time_point base = due + behind * period;  // <= now, cannot overflow
    // Saturate: an entry parked at time_point::max() never comes due.
    return period > time_point::max() - base ? time_point::max() : base + period;
  }

  void shutdown() {
    std::thread thread;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;  // also keeps add() from starting a new thread
      thread = std::move(thread_);
      wake_.notify_one();
    }
    if (!thread.joinable()) return;
    // exit() called from a callback runs this on the timer thread, which cannot join itself.
    if (std::this_thread::get_id() == thread.get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }

  mutable mutex mutex_;
  std::condition_variable_any wake_;  // the timer thread sleeps here
  std::condition_variable_any done_;  // cancel() waits here for a running callback
  std::unordered_map<id, entry> entries_ CUSTODY_GUARDED_BY(mutex_);
  // Deadline order; equal deadlines in id order.
  std::set<std::pair<time_point, id>> queue_ CUSTODY_GUARDED_BY(mutex_);
  std::thread thread_ CUSTODY_GUARDED_BY(mutex_);
  std::thread::id thread_id_ CUSTODY_GUARDED_BY(mutex_);
  id last_id_ CUSTODY_GUARDED_BY(mutex_) = no_id;
  id running_ CUSTODY_GUARDED_BY(mutex_) = no_id;
  bool stopping_ CUSTODY_GUARDED_BY(mutex_) = false;
};

}  // namespace custody::detail
