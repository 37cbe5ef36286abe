// custody/timer.hpp — Go-style timers that deliver into custody channels: after() and at()
// (Go's time.After), Ticker (time.Ticker) and Timer (time.Timer).
//
//   custody::Ticker ticker(std::chrono::milliseconds(100));
//   auto ticks = ticker.receiver();
//   auto give_up = custody::after(std::chrono::seconds(5));
//   for (bool done = false; !done;) {
//     custody::select(custody::on_recv(ticks, [&](auto now) { poll(now); }),
//                     custody::on_recv(give_up, [&](auto) { done = true; }),
//                     custody::on_stop(token, [&] { done = true; }));
//   }
//
// Every value delivered is the steady_clock time at which the timer fired, which is never
// earlier than the deadline it fired for.
//
// All timers share one process-wide timer thread (see detail/timer_service.hpp); a timer costs a
// queue entry and a one-slot channel, not a thread. Delivery is a non-blocking try_send, so a
// slow receiver never holds up other timers: a tick that finds the slot still full is dropped
// and counted, as in Go.
//
// Timers never close their channels: a receiver of a stopped or destroyed timer simply never
// gets another value, as in Go. Wait on such a receiver in a select with another way out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "channel.hpp"
#include "detail/mutex.hpp"
#include "detail/timer_service.hpp"
#include "status.hpp"

namespace custody {

namespace detail {

using timer_clock = std::chrono::steady_clock;

// `d` in steady_clock ticks. Rounds up, so that a positive duration never becomes zero. Zero,
// negative and NaN durations become zero. Anything from half the clock's range (about 146
// years) up becomes duration::max(), that is, never; the margin keeps the rounding of
// floating-point durations clear of overflow.
template <class Rep, class Period>
timer_clock::duration to_timer_duration(std::chrono::duration<Rep, Period> d) {
  using wide = std::chrono::duration<long double>;
  const long double seconds = std::chrono::duration_cast<wide>(d).count();
  if (!(seconds > 0)) return timer_clock::duration::zero();
  if (seconds >= wide(timer_clock::duration::max()).count() / 2) {
    return timer_clock::duration::max();
  }
  return std::chrono::ceil<timer_clock::duration>(d);
}

// now + d, saturating at time_point::max() (which never comes due).
inline timer_clock::time_point timer_deadline(timer_clock::duration d) {
  const auto now = timer_clock::now();
  return d > timer_clock::time_point::max() - now ? timer_clock::time_point::max() : now + d;
}

// Sends the fire time into `tx` once, at `due`. A deadline already passed is delivered at once
// on the calling thread, without involving the timer thread.
inline timer_service::id deliver_at(timer_clock::time_point due,
                                    Sender<timer_clock::time_point> tx) {
  if (due <= timer_clock::now()) {
    (void)tx.try_send(timer_clock::now());
    return timer_service::no_id;
  }
  return timer_service::instance().schedule(
      due, [tx = std::move(tx)]() mutable { (void)tx.try_send(timer_clock::now()); });
}

// Empties a timer's one-slot channel. Returns whether a value was discarded.
inline bool discard_pending(Channel<timer_clock::time_point>& ch) {
  bool discarded = false;
  while (ch.try_recv()) discarded = true;
  return discarded;
}

}  // namespace detail

/// A receiver that gets exactly one value, the fire time, once `deadline` has passed, and
/// nothing after that (Go's time.After with an absolute deadline). A deadline already passed
/// delivers at once. Thread-safe.
/// Throws std::bad_alloc, or std::system_error if the timer thread cannot be started.
/// The pending timer holds a small amount of memory until it fires, even if the receiver is
/// dropped; prefer a Timer when a long deadline is usually abandoned early.
template <class Duration>
Receiver<std::chrono::steady_clock::time_point> at(
    std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) {
  Channel<std::chrono::steady_clock::time_point> ch(1);
  // Round up: firing a fraction of a tick early would break "never earlier than the deadline".
  (void)detail::deliver_at(std::chrono::ceil<detail::timer_clock::duration>(deadline), ch.sender());
  return ch.receiver();
}

/// A receiver that gets exactly one value, the fire time, once `d` has elapsed, and nothing
/// after that (Go's time.After). A zero or negative `d` delivers at once. Thread-safe.
/// Throws as at() does; the same note about abandoned deadlines applies.
template <class Rep, class Period>
Receiver<std::chrono::steady_clock::time_point> after(std::chrono::duration<Rep, Period> d) {
  return at(detail::timer_deadline(detail::to_timer_duration(d)));
}

/// Delivers the current time into a one-slot channel every `period` (Go's time.Ticker).
///
/// Ticks are due at start + k * period, so they do not drift. If the slot still holds an unread
/// tick when the next one is due, the new tick is dropped and counted in missed(); a receiver
/// that falls behind gets one stale tick and then the ticks from where it catches up, never a
/// burst. Ticks that the timer thread itself passes over (because it was held up, for example
/// on an overloaded machine or while the process was stopped) are counted in missed() too.
///
/// Move-only. A moved-from Ticker is stopped: receiver() returns a nil receiver, missed()
/// returns 0, stop() does nothing and reset() throws std::logic_error.
///
/// Thread-safety: receiver(), missed(), stop() and reset() may be called concurrently from any
/// threads on the same Ticker. Moving, assigning or destroying it must not race with other
/// calls on it.
class Ticker {
 public:
  /// The clock that schedules the ticks.
  using clock = std::chrono::steady_clock;
  /// The type of the values delivered: the time each tick fired.
  using time_point = clock::time_point;

  /// Starts ticking: the first tick is due one `period` from now.
  /// Throws std::invalid_argument if `period` is not positive, std::bad_alloc, or
  /// std::system_error if the timer thread cannot be started.
  template <class Rep, class Period>
  explicit Ticker(std::chrono::duration<Rep, Period> period) : impl_(std::make_unique<impl>()) {
    impl_->start(checked(period));
  }

  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  /// Takes over `other`'s ticking and channel; `other` is left stopped. Never throws.
  Ticker(Ticker&& other) noexcept = default;

  /// Stops this ticker (as stop() does), then takes over `other`'s ticking and channel.
  Ticker& operator=(Ticker&& other) noexcept {
    if (this != &other) {
      stop();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }

  /// Stops ticking (as stop() does).
  ~Ticker() { stop(); }

  /// The receiving end of the tick channel. Every call returns a handle to the same channel,
  /// which stays the same across stop() and reset(). Never throws.
  Receiver<time_point> receiver() const noexcept {
    return impl_ ? impl_->ch.receiver() : Receiver<time_point>();
  }

  /// How many ticks were not delivered since construction (dropped because the slot was full,
  /// or passed over by a late timer thread). Never decreases; reset() does not clear it.
  /// Never throws.
  std::uint64_t missed() const noexcept {
    return impl_ ? impl_->missed.load(std::memory_order_relaxed) : 0;
  }

  /// Stops ticking. Once stop() returns, no tick is delivered, and a tick that was waiting
  /// unread in the slot has been discarded, so a receiver sees nothing stale. Waits for a
  /// delivery that is in progress on the timer thread. Calling it again does nothing; reset()
  /// starts the ticker again. Never throws.
  void stop() noexcept {
    if (!impl_) return;
    std::lock_guard lock(impl_->mutex);
    impl_->halt();
  }

  /// Restarts ticking with `period`: the old schedule ends and its unread tick is discarded
  /// (as with stop()), and the first new tick is due one `period` from now. Once reset()
  /// returns, no tick of the old schedule is delivered.
  /// Throws std::invalid_argument if `period` is not positive (the ticker is then unchanged),
  /// std::logic_error on a moved-from Ticker, or std::bad_alloc / std::system_error if the new
  /// schedule cannot be set up (the ticker is then left stopped).
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> period) {
    const clock::duration p = checked(period);
    if (!impl_) throw std::logic_error("custody::Ticker::reset: the ticker was moved from");
    std::lock_guard lock(impl_->mutex);
    impl_->halt();
    impl_->start(p);
  }

 private:
  // Heap-allocated so that its address, which the timer callback holds, survives moves.
  struct impl {
    Channel<time_point> ch{1};
    std::atomic<std::uint64_t> missed{0};
    detail::mutex mutex;  // serialises stop() and reset()
    detail::timer_service::id id CUSTODY_GUARDED_BY(mutex) = detail::timer_service::no_id;

    void start(clock::duration period) CUSTODY_REQUIRES(mutex) {
      // The raw pointer is safe: halt() cancels the callback, and waits for a running one,
      // before this impl can be destroyed.
      id = detail::timer_service::instance().schedule_every(
          detail::timer_deadline(period), period,
          [self = this, tx = ch.sender()](std::uint64_t skipped) mutable {
            std::uint64_t lost = skipped;
            if (tx.try_send(clock::now()) != status::ok) ++lost;
            if (lost != 0) self->missed.fetch_add(lost, std::memory_order_relaxed);
          });
    }

    void halt() CUSTODY_REQUIRES(mutex) {
      if (id != detail::timer_service::no_id) {
        (void)detail::timer_service::instance().cancel(id);
        id = detail::timer_service::no_id;
      }
      (void)detail::discard_pending(ch);
    }
  };

  template <class Rep, class Period>
  static clock::duration checked(std::chrono::duration<Rep, Period> period) {
    const clock::duration p = detail::to_timer_duration(period);
    if (p <= clock::duration::zero()) {
      throw std::invalid_argument("custody::Ticker: period must be positive");
    }
    return p;
  }

  std::unique_ptr<impl> impl_;
};

/// Delivers the current time once, into a one-slot channel, after a delay (Go's time.Timer).
/// Unlike after(), it can be stopped, which frees its timer entry at once, and re-armed.
///
/// Move-only. A moved-from Timer is stopped: receiver() returns a nil receiver, stop() returns
/// false and reset() throws std::logic_error.
///
/// Thread-safety: receiver(), stop() and reset() may be called concurrently from any threads on
/// the same Timer. Moving, assigning or destroying it must not race with other calls on it.
class Timer {
 public:
  /// The clock that schedules the timer.
  using clock = std::chrono::steady_clock;
  /// The type of the value delivered: the time the timer fired.
  using time_point = clock::time_point;

  /// Arms the timer to fire once `d` has elapsed. A zero or negative `d` fires at once.
  /// Throws std::bad_alloc, or std::system_error if the timer thread cannot be started.
  template <class Rep, class Period>
  explicit Timer(std::chrono::duration<Rep, Period> d) : impl_(std::make_unique<impl>()) {
    impl_->arm(detail::to_timer_duration(d));
  }

  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Takes over `other`'s deadline and channel; `other` is left stopped. Never throws.
  Timer(Timer&& other) noexcept = default;

  /// Stops this timer (as stop() does), then takes over `other`'s deadline and channel.
  Timer& operator=(Timer&& other) noexcept {
    if (this != &other) {
      stop();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }

  /// Stops the timer (as stop() does).
  ~Timer() { stop(); }

  /// The receiving end of the timer's channel; the same channel across stop() and reset().
  /// Never throws.
  Receiver<time_point> receiver() const noexcept {
    return impl_ ? impl_->ch.receiver() : Receiver<time_point>();
  }

  /// Disarms the timer. Once stop() returns, no value is delivered, and a value that was
  /// waiting unread in the slot has been discarded. Returns true if this call kept a value
  /// from being received (the timer had not fired yet, or its value was still unread); false if
  /// the value was already received or the timer was already stopped. Waits for a delivery
  /// that is in progress on the timer thread. Never throws.
  bool stop() noexcept {
    if (!impl_) return false;
    std::lock_guard lock(impl_->mutex);
    return impl_->halt();
  }

  /// Re-arms the timer to fire once `d` has elapsed from now, after stopping it as stop() does
  /// (so no value of the earlier deadline is received after reset() returns). Returns what
  /// stop() would have returned.
  /// Throws std::logic_error on a moved-from Timer, or std::bad_alloc / std::system_error if
  /// the timer cannot be armed (it is then left stopped).
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    const clock::duration delay = detail::to_timer_duration(d);
    if (!impl_) throw std::logic_error("custody::Timer::reset: the timer was moved from");
    std::lock_guard lock(impl_->mutex);
    const bool prevented = impl_->halt();
    impl_->arm(delay);
    return prevented;
  }

 private:
  struct impl {
    Channel<time_point> ch{1};
    detail::mutex mutex;  // serialises stop() and reset()
    detail::timer_service::id id CUSTODY_GUARDED_BY(mutex) = detail::timer_service::no_id;

    void arm(clock::duration d) CUSTODY_REQUIRES(mutex) {
      id = detail::deliver_at(detail::timer_deadline(d), ch.sender());
    }

    bool halt() CUSTODY_REQUIRES(mutex) {
      bool prevented = false;
      if (id != detail::timer_service::no_id) {
        prevented = detail::timer_service::instance().cancel(id);
        id = detail::timer_service::no_id;
      }
      return detail::discard_pending(ch) || prevented;
    }
  };

  std::unique_ptr<impl> impl_;
};

}  // namespace custody
