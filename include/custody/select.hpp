#pragma once
// select: wait on several channel operations at once and commit exactly one of them.
//
//   for (;;) {
//     auto r = custody::select(
//         custody::on_recv(updates, [&](Update u) { show(u); }),
//         custody::on_recv(requests, [&](Request q) { answer(q); }, [&] { /* closed */ }),
//         custody::on_send(out, pending, [&] { /* pending was sent */ }),
//         custody::on_stop(stop),
//         custody::on_timeout(1s, [&] { idle(); }));
//     if (r.status == custody::status::stopped) break;
//   }
//
// - Exactly one case commits, and its callable runs after the select has committed it (outside
//   every lock, so it may use channels freely). Nothing is taken from, or given to, any other
//   case: a value is never lost when a timeout or stop races it.
// - Among cases ready at the same time the choice is uniformly random.
// - A receive case commits with a value, or when its channel is closed and drained (its second
//   callable runs then, if given). A send case commits when its value is handed over (the
//   value is moved from only then), or when its channel is closed (the value stays).
// - on_stop: a triggered token is a ready case like any other (Go's closed `done` channel):
//   among the ready cases, the stop included, the choice is uniform. So a loop whose inputs
//   never run dry still stops: each round commits the stop with probability 1/(ready cases).
//   on_timeout / on_deadline: commits with status::timeout once the time passes and no other
//   case is ready.
//   on_default: makes the select non-blocking; commits with status::would_block.
//   At most one of each of these.
// - A case built with `.when(false)`, or on a nil Sender/Receiver, never fires (Go's nil chan).
// - Blocks (spinning briefly, then sleeping) until a case commits. Throws std::logic_error if
//   no case could ever commit, and whatever a moved value's move constructor throws (the value
//   then stays with its owner). Thread-safe in the same way as the channel operations.
// - A list of cases built at run time: select_list (dynamic_select.hpp).
// - Happens-before: as for the plain send and receive operations.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "channel.hpp"
#include "detail/select_engine.hpp"
#include "dynamic_select.hpp"
#include "status.hpp"

namespace custody {

namespace detail {

struct nothing {
  void operator()() const noexcept {}
};

template <class T>
inline constexpr bool always_false = false;

/// Base of every case: carries the enabled flag and `.when()`.
template <class Derived>
class case_base {
 public:
  /// Enables or disables the case; a disabled case never fires.
  Derived&& when(bool enabled) && noexcept {
    enabled_ = enabled;
    return static_cast<Derived&&>(*this);
  }
  bool enabled() const noexcept { return enabled_; }

 private:
  bool enabled_ = true;
};

/// The type of the only parameter of a callable with one non-template call operator (or a
/// function pointer); nothing for a generic callable, whose parameter cannot be looked at.
template <class F>
struct sole_parameter {};
template <class R, class A>
struct sole_parameter<R (*)(A)> {
  using type = A;
};
template <class R, class A>
struct sole_parameter<R (*)(A) noexcept> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A)> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) const> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) noexcept> {
  using type = A;
};
template <class C, class R, class A>
struct sole_parameter<R (C::*)(A) const noexcept> {
  using type = A;
};

/// True when `F` visibly takes a T by value (a generic callable cannot be looked at).
template <class T, class F>
constexpr bool takes_by_value() {
  if constexpr (requires { typename sole_parameter<F>::type; }) {
    return std::is_same_v<std::remove_cv_t<typename sole_parameter<F>::type>, T>;
  } else if constexpr (requires { typename sole_parameter<decltype(&F::operator())>::type; }) {
    return std::is_same_v<std::remove_cv_t<typename sole_parameter<decltype(&F::operator())>::type>,
                          T>;
  } else {
    return false;
  }
}

/// A receive case hands its value to the callable as T&&, straight from where the select
/// received it. A by-value parameter then moves it once more, after the commit: for a T whose
/// move constructor may throw, that move could lose the value, so such a callable does not
/// compile (take T&& or const T& instead). A generic callable taking `auto` by value cannot be
/// told apart and is the caller's responsibility.
template <class T, class OnValue>
constexpr bool check_recv_callable() {
  static_assert(std::is_invocable_v<OnValue&, T&&>,
                "custody::on_recv: the callable must accept the channel's value type");
  static_assert(std::is_nothrow_move_constructible_v<T> || !takes_by_value<T, OnValue>(),
                "custody::on_recv: this value type's move constructor may throw, so the "
                "callable must take it by reference, as T&& or const T& (a by-value parameter "
                "would move it after the select committed, and a throwing move would lose it)");
  return true;
}

template <class T, class OnValue, class OnClosed>
class recv_case : public case_base<recv_case<T, OnValue, OnClosed>> {
  static_assert(check_recv_callable<T, OnValue>());
  static_assert(std::is_invocable_v<OnClosed&>,
                "custody::on_recv: the on-closed callable must take no arguments");

 public:
  recv_case(chan_core<T>* core, OnValue on_value, OnClosed on_closed)
      : core_(core), on_value_(std::move(on_value)), on_closed_(std::move(on_closed)) {}

  op make_op() noexcept { return this->enabled() && core_ ? make_recv_op(core_, &slot_) : op{}; }
  void fire(status s) {
    if (s == status::ok) {
      std::invoke(on_value_, std::move(*slot_));
    } else {
      std::invoke(on_closed_);
    }
  }

 private:
  chan_core<T>* core_;
  std::optional<T> slot_;
  OnValue on_value_;
  OnClosed on_closed_;
};

template <class T, class OnSent, class OnClosed>
class send_case : public case_base<send_case<T, OnSent, OnClosed>> {
  static_assert(std::is_invocable_v<OnSent&>, "custody::on_send: the callable takes no arguments");
  static_assert(std::is_invocable_v<OnClosed&>,
                "custody::on_send: the on-closed callable takes no arguments");

 public:
  send_case(chan_core<T>* core, T& value, OnSent on_sent, OnClosed on_closed)
      : core_(core),
        value_(&value),
        on_sent_(std::move(on_sent)),
        on_closed_(std::move(on_closed)) {}

  op make_op() noexcept { return this->enabled() && core_ ? make_send_op(core_, value_) : op{}; }
  void fire(status s) {
    if (s == status::ok) {
      std::invoke(on_sent_);
    } else {
      std::invoke(on_closed_);
    }
  }

 private:
  chan_core<T>* core_;
  T* value_;
  OnSent on_sent_;
  OnClosed on_closed_;
};

template <class F>
class stop_case : public case_base<stop_case<F>> {
 public:
  stop_case(std::stop_token token, F fn) : token_(std::move(token)), fn_(std::move(fn)) {}
  op make_op() noexcept { return {}; }
  void fire(status) { std::invoke(fn_); }
  const std::stop_token* token() const noexcept { return this->enabled() ? &token_ : nullptr; }

 private:
  std::stop_token token_;
  F fn_;
};

template <class F>
class deadline_case : public case_base<deadline_case<F>> {
 public:
  deadline_case(steady_clock::time_point deadline, F fn)
      : deadline_(deadline), fn_(std::move(fn)) {}
  op make_op() noexcept { return {}; }
  void fire(status) { std::invoke(fn_); }
  std::optional<steady_clock::time_point> deadline() const noexcept {
    return this->enabled() ? std::optional(deadline_) : std::nullopt;
  }

 private:
  steady_clock::time_point deadline_;
  F fn_;
};

template <class F>
class default_case : public case_base<default_case<F>> {
 public:
  explicit default_case(F fn) : fn_(std::move(fn)) {}
  op make_op() noexcept { return {}; }
  void fire(status) { std::invoke(fn_); }

 private:
  F fn_;
};

template <class C>
struct case_kind {
  static constexpr bool is_case = false;
};
template <class T, class A, class B>
struct case_kind<recv_case<T, A, B>> {
  static constexpr bool is_case = true;
};
template <class T, class A, class B>
struct case_kind<send_case<T, A, B>> {
  static constexpr bool is_case = true;
};
template <class F>
struct case_kind<stop_case<F>> {
  static constexpr bool is_case = true, is_stop = true;
};
template <class F>
struct case_kind<deadline_case<F>> {
  static constexpr bool is_case = true, is_deadline = true;
};
template <class F>
struct case_kind<default_case<F>> {
  static constexpr bool is_case = true, is_default = true;
};

template <class C>
concept stop_kind = requires {
  requires case_kind<C>::is_stop;
};
template <class C>
concept deadline_kind = requires {
  requires case_kind<C>::is_deadline;
};
template <class C>
concept default_kind = requires {
  requires case_kind<C>::is_default;
};

}  // namespace detail

/// Receive case: `on_value(T&&)` runs with the received value; `on_closed()` (optional) runs
/// when the channel is closed and drained. For a T whose move constructor may throw,
/// `on_value` must take it by reference (see check_recv_callable): a by-value parameter would
/// move it after the select committed, and a throwing move would lose it.
template <class T, class OnValue, class OnClosed = detail::nothing>
auto on_recv(const Receiver<T>& rx, OnValue on_value, OnClosed on_closed = {}) {
  return detail::recv_case<T, OnValue, OnClosed>(rx.core_ptr().get(), std::move(on_value),
                                                 std::move(on_closed));
}
/// Receive case on a Channel<T>, as on its Receiver<T>.
template <class T, class OnValue, class OnClosed = detail::nothing>
auto on_recv(const Channel<T>& ch, OnValue on_value, OnClosed on_closed = {}) {
  return detail::recv_case<T, OnValue, OnClosed>(ch.core_ptr().get(), std::move(on_value),
                                                 std::move(on_closed));
}
/// Not a case: a Sender<T> cannot receive. Fails to compile, saying so.
template <class T, class OnValue, class OnClosed = detail::nothing>
auto on_recv(const Sender<T>&, OnValue, OnClosed = {}) {
  static_assert(detail::always_false<T>,
                "custody::on_recv needs a Receiver<T> or Channel<T>; a Sender<T> can only be used "
                "with custody::on_send");
}

/// Send case: moves from `value` only if the case commits; `on_sent()` runs then. `on_closed()`
/// (optional) runs if the channel is closed; `value` is untouched then.
template <class T, class OnSent = detail::nothing, class OnClosed = detail::nothing>
auto on_send(const Sender<T>& tx, T& value, OnSent on_sent = {}, OnClosed on_closed = {}) {
  return detail::send_case<T, OnSent, OnClosed>(tx.core_ptr().get(), value, std::move(on_sent),
                                                std::move(on_closed));
}
/// Not a case: a Receiver<T> cannot send. Fails to compile, saying so.
template <class T, class... Rest>
auto on_send(const Receiver<T>&, Rest&&...) {
  static_assert(detail::always_false<T>,
                "custody::on_send needs a Sender<T> or Channel<T>; a Receiver<T> can only be used "
                "with custody::on_recv");
}

/// Stop case: fires once `token` is triggered.
template <class F = detail::nothing>
auto on_stop(std::stop_token token, F fn = {}) {
  return detail::stop_case<F>(std::move(token), std::move(fn));
}

/// Deadline case: fires once `deadline` has passed.
template <class F = detail::nothing>
auto on_deadline(std::chrono::steady_clock::time_point deadline, F fn = {}) {
  return detail::deadline_case<F>(deadline, std::move(fn));
}

/// Timeout case: fires once `timeout` has elapsed, counted from this call.
template <class Rep, class Period, class F = detail::nothing>
auto on_timeout(std::chrono::duration<Rep, Period> timeout, F fn = {}) {
  return detail::deadline_case<F>(detail::deadline_after(timeout), std::move(fn));
}

/// Default case: fires when no other case is ready; makes the select non-blocking.
template <class F = detail::nothing>
auto on_default(F fn = {}) {
  return detail::default_case<F>(std::move(fn));
}

namespace detail {

/// Where a select's stop, deadline and default cases sit among its cases, and the limits they
/// set: what the blocking select and the asynchronous one (custody/asio/select.hpp) share.
struct case_layout {
  select_limits limits;
  std::size_t count = 0;  // all cases
  std::size_t stop_index = 0, deadline_index = 0, default_index = 0;
  bool has_stop = false;

  template <class... Cases>
  explicit case_layout(Cases&... cases) {
    std::size_t position = 0;
    auto inspect = [&]<class C>(C& c) {
      if constexpr (stop_kind<C>) {
        limits.stop = c.token();
        stop_index = position;
        has_stop = true;
      } else if constexpr (deadline_kind<C>) {
        limits.deadline = c.deadline();
        deadline_index = position;
      } else if constexpr (default_kind<C>) {
        limits.nonblocking = c.enabled();
        default_index = position;
      }
      ++position;
    };
    (inspect(cases), ...);
    count = position;
  }

  /// Runs the callable of the case that `o` committed, and says which it was. An asynchronous
  /// select cancelled without an on_stop case runs none: its index is then `count`.
  template <class... Cases>
  selected fire(const outcome& o, Cases&... cases) const {
    std::size_t fired = o.index;
    if (fired == outcome::none) {
      if (o.status == status::stopped && !has_stop) return {count, o.status};
      fired = o.status == status::stopped   ? stop_index
              : o.status == status::timeout ? deadline_index
                                            : default_index;
    }
    std::size_t position = 0;
    auto fire_one = [&](auto& c) {
      if (position++ == fired) c.fire(o.status);
    };
    (fire_one(cases), ...);
    return {fired, o.status};
  }
};

template <class... Cases>
constexpr bool check_cases() {
  static_assert((case_kind<std::remove_cvref_t<Cases>>::is_case && ...),
                "custody::select: every argument must be a case made by on_recv, on_send, "
                "on_stop, on_timeout, on_deadline or on_default");
  static_assert((0 + ... + stop_kind<std::remove_cvref_t<Cases>>) <= 1,
                "custody::select: at most one on_stop case");
  static_assert((0 + ... + deadline_kind<std::remove_cvref_t<Cases>>) <= 1,
                "custody::select: at most one on_timeout or on_deadline case");
  static_assert((0 + ... + default_kind<std::remove_cvref_t<Cases>>) <= 1,
                "custody::select: at most one on_default case");
  return true;
}

}  // namespace detail

/// Commits exactly one of `cases` (see the top of this header) and runs its callable.
template <class... Cases>
selected select(Cases&&... cases) {
  static_assert(detail::check_cases<Cases...>());

  constexpr std::size_t n = sizeof...(Cases);
  detail::op ops[n == 0 ? 1 : n] = {cases.make_op()...};
  const detail::case_layout layout(cases...);

  const detail::outcome o = [&] {
    if (const auto alone = detail::select_alone(ops, n, layout.limits)) return *alone;
    alignas(64) detail::wait_state state;
    return detail::run_select(state, ops, n, layout.limits);
  }();
  return layout.fire(o, cases...);
}

}  // namespace custody
