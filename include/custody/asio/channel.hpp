#pragma once
// Asynchronous send and receive on custody channels, for coroutines and callbacks on Asio
// executors:
//
//   asio::awaitable<void> consume(custody::Receiver<int> rx) {
//     for (;;) {
//       custody::received<int> r = co_await custody::async_recv(rx, asio::use_awaitable);
//       if (!r) co_return;  // closed and drained
//       use(*r);
//     }
//   }
//
// Semantics are the blocking forms' (channel.hpp), with a completion token in place of the
// waiting thread; threads and asynchronous operations meet on the same channels freely.
// - Completion token last (Asio's universal model): asio::use_awaitable, a plain callback,
//   asio::experimental::deferred and asio::use_future all work. The handler is called as
//     receive: handler(std::exception_ptr, custody::received<T>)
//     send:    handler(std::exception_ptr, custody::status)
//   so that `co_await` yields the received<T> or the status, and rethrows the exception.
// - What completes it: the value handed over (ok), close() (closed, at once for a pending
//   operation; a receive first drains buffered values), the stop token (stopped), the deadline
//   (timeout), or Asio cancellation through the handler's cancellation slot (stopped; every
//   cancellation type is honoured, since nothing happens to the channel before the commit).
//   An operation that had committed completes with ok even when a stop, deadline or
//   cancellation raced it: nothing is lost.
// - As in the blocking forms, a stop token already triggered wins over a ready channel.
// - Where it completes: always through a post to the handler's associated executor (use
//   asio::bind_executor to choose one for a plain callback; without one it is Asio's system
//   executor), never on the thread or stack of whoever completed it, and never inside the
//   initiating call. While pending it counts as outstanding work on that executor.
// - Asio's cancellation slot must be signalled from the operation's executor (Asio's rule for
//   every operation), not concurrently with its completion.
// - Exceptions: std::bad_alloc from the initiating call when the operation cannot be allocated
//   (it then never completes); std::logic_error on a nil handle, from the initiating call.
//   A send that does not complete with ok destroys its value with the operation.
// - A receive needs a T whose move constructor cannot throw: the value moves once more, into
//   the handler's argument, after the channel gave it up.
// - Inside a custody::asio::Task, the token custody::asio::use_task awaits the operation in the
//   task's frame, without an allocation, and without a post when the peer is a task on the same
//   io_context thread (asio/task.hpp); the results and statuses are the same. The plain forms
//   then refer to the channel through the handle given, which must outlive the operation (as
//   an Asio I/O object must outlive its operations): `co_await async_recv(rx, use_task)`
//   guarantees it.
// - Thread-safety: as for the blocking forms; initiate from any thread.

#include <asio/async_result.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "../channel.hpp"
#include "../status.hpp"
#include "operation.hpp"
#include "task_channel.hpp"

namespace custody {

namespace detail {

/// The channel state behind a handle that can receive: Receiver<T> and Channel<T>.
template <class Handle>
struct receiving_handle {
  static constexpr bool value = false;
};
template <class T>
struct receiving_handle<Receiver<T>> {
  static constexpr bool value = true;
  using element = T;
};
template <class T>
struct receiving_handle<Channel<T>> {
  static constexpr bool value = true;
  using element = T;
};

template <class Handle>
concept async_receivable =
    receiving_handle<std::remove_cvref_t<Handle>>::value && std::is_nothrow_move_constructible_v<
        typename receiving_handle<std::remove_cvref_t<Handle>>::element>;

template <class Handle>
using received_element = typename receiving_handle<std::remove_cvref_t<Handle>>::element;

/// The channel state behind a handle, for an operation that refers to it through the handle.
template <class T>
chan_core<T>& checked_core_ref(const std::shared_ptr<chan_core<T>>& core) {
  if (!core) throw std::logic_error("custody: operation on a nil channel handle");
  return *core;
}

/// The same, for an operation that shares the state.
template <class T>
std::shared_ptr<chan_core<T>> checked_core(std::shared_ptr<chan_core<T>> core) {
  checked_core_ref(core);
  return core;
}

/// One receive, as the operation's only case.
template <class T>
struct recv_body {
  static constexpr std::size_t cases = 1;
  using result_type = received<T>;

  std::shared_ptr<chan_core<T>> core;
  std::stop_token stop;
  std::optional<time_point> deadline;
  received<T> value{};

  void make_ops(op* ops) { ops[0] = make_recv_op(core.get(), &received_access::value(value)); }
  select_limits limits() const { return {false, &stop, deadline}; }
  bool stop_first() const noexcept { return true; }
  received<T> result(const outcome& o) {
    received_access::set_status(value, o.status);
    return std::move(value);
  }
};

/// One send, as the operation's only case; the value lives in the operation.
template <class T>
struct send_body {
  static constexpr std::size_t cases = 1;
  using result_type = status;

  std::shared_ptr<chan_core<T>> core;
  T value;
  std::stop_token stop;
  std::optional<time_point> deadline;

  void make_ops(op* ops) { ops[0] = make_send_op(core.get(), &value); }
  select_limits limits() const { return {false, &stop, deadline}; }
  bool stop_first() const noexcept { return true; }
  status result(const outcome& o) const noexcept { return o.status; }
};

template <class T, class Token>
auto initiate_recv(std::shared_ptr<chan_core<T>> core, std::stop_token stop,
                   std::optional<time_point> deadline, Token&& token) {
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    // Inside a custody::asio::Task: in the coroutine's frame, without an allocation.
    return task_recv_awaiter<T, task_select_op<T>>(checked_core(std::move(core)), std::move(stop),
                                                   deadline);
  } else {
    return ::asio::async_initiate<Token, void(std::exception_ptr, received<T>)>(
        [](auto handler, recv_body<T> body) {
          async_operation<recv_body<T>, std::decay_t<decltype(handler)>>::start(std::move(handler),
                                                                                std::move(body));
        },
        token, recv_body<T>{checked_core(std::move(core)), std::move(stop), deadline});
  }
}

template <class T, class Token>
auto initiate_send(std::shared_ptr<chan_core<T>> core, T value, std::stop_token stop,
                   std::optional<time_point> deadline, Token&& token) {
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    return task_send_awaiter<T, task_select_op<T>>(std::move(value), checked_core(std::move(core)),
                                                   std::move(stop), deadline);
  } else {
    return ::asio::async_initiate<Token, void(std::exception_ptr, status)>(
        [](auto handler, send_body<T> body) {
          async_operation<send_body<T>, std::decay_t<decltype(handler)>>::start(std::move(handler),
                                                                                std::move(body));
        },
        token,
        send_body<T>{checked_core(std::move(core)), std::move(value), std::move(stop), deadline});
  }
}

/// The plain forms (no stop token, no deadline): inside a Task, the direct kind.
template <class T, class Token>
auto initiate_plain_recv(const std::shared_ptr<chan_core<T>>& core, Token&& token) {
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    return task_recv_awaiter<T, task_direct_op<T>>(checked_core_ref(core));
  } else {
    return initiate_recv(core, {}, std::nullopt, std::forward<Token>(token));
  }
}

template <class T, class Token>
auto initiate_plain_send(const std::shared_ptr<chan_core<T>>& core, T value, Token&& token) {
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    return task_send_awaiter<T, task_direct_op<T>>(std::move(value), checked_core_ref(core));
  } else {
    return initiate_send(core, std::move(value), {}, std::nullopt, std::forward<Token>(token));
  }
}

}  // namespace detail

/// Receives from `rx` (a Receiver<T> or Channel<T>): completes with ok and the value, or with
/// closed once the channel is closed and drained (see the top of this header).
template <class Rx, class Token>
requires detail::async_receivable<Rx>
auto async_recv(const Rx& rx, Token&& token) {
  return detail::initiate_plain_recv(rx.core_ptr(), std::forward<Token>(token));
}
/// As async_recv(), and completes with stopped once `stop` is triggered.
template <class Rx, class Token>
requires detail::async_receivable<Rx>
auto async_recv(const Rx& rx, std::stop_token stop, Token&& token) {
  return detail::initiate_recv(rx.core_ptr(), std::move(stop), std::nullopt,
                               std::forward<Token>(token));
}
/// As async_recv(), and completes with timeout once `deadline` passes (stopped once `stop`
/// is triggered).
template <class Rx, class Token>
requires detail::async_receivable<Rx>
auto async_recv_until(const Rx& rx, std::chrono::steady_clock::time_point deadline,
                      std::stop_token stop, Token&& token) {
  return detail::initiate_recv(rx.core_ptr(), std::move(stop), deadline,
                               std::forward<Token>(token));
}
template <class Rx, class Token>
requires detail::async_receivable<Rx>
auto async_recv_until(const Rx& rx, std::chrono::steady_clock::time_point deadline, Token&& token) {
  return detail::initiate_recv(rx.core_ptr(), {}, deadline, std::forward<Token>(token));
}
/// As async_recv_until(), with the deadline `timeout` from now.
template <class Rx, class Rep, class Period, class Token>
requires detail::async_receivable<Rx>
auto async_recv_for(const Rx& rx, std::chrono::duration<Rep, Period> timeout, std::stop_token stop,
                    Token&& token) {
  return detail::initiate_recv(rx.core_ptr(), std::move(stop), detail::deadline_after(timeout),
                               std::forward<Token>(token));
}
template <class Rx, class Rep, class Period, class Token>
requires detail::async_receivable<Rx>
auto async_recv_for(const Rx& rx, std::chrono::duration<Rep, Period> timeout, Token&& token) {
  return detail::initiate_recv(rx.core_ptr(), {}, detail::deadline_after(timeout),
                               std::forward<Token>(token));
}

/// Sends `value` on `tx` (a Sender<T> or Channel<T>): completes with ok once a receiver took
/// it (or the buffer did), or with closed (see the top of this header).
template <class T, class Token>
auto async_send(const Sender<T>& tx, std::type_identity_t<T> value, Token&& token) {
  return detail::initiate_plain_send(tx.core_ptr(), std::move(value), std::forward<Token>(token));
}
/// As async_send(), and completes with stopped once `stop` is triggered.
template <class T, class Token>
auto async_send(const Sender<T>& tx, std::type_identity_t<T> value, std::stop_token stop,
                Token&& token) {
  return detail::initiate_send(tx.core_ptr(), std::move(value), std::move(stop), std::nullopt,
                               std::forward<Token>(token));
}
/// As async_send(), and completes with timeout once `deadline` passes (stopped once `stop` is
/// triggered).
template <class T, class Token>
auto async_send_until(const Sender<T>& tx, std::type_identity_t<T> value,
                      std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                      Token&& token) {
  return detail::initiate_send(tx.core_ptr(), std::move(value), std::move(stop), deadline,
                               std::forward<Token>(token));
}
template <class T, class Token>
auto async_send_until(const Sender<T>& tx, std::type_identity_t<T> value,
                      std::chrono::steady_clock::time_point deadline, Token&& token) {
  return detail::initiate_send(tx.core_ptr(), std::move(value), {}, deadline,
                               std::forward<Token>(token));
}
/// As async_send_until(), with the deadline `timeout` from now.
template <class T, class Rep, class Period, class Token>
auto async_send_for(const Sender<T>& tx, std::type_identity_t<T> value,
                    std::chrono::duration<Rep, Period> timeout, std::stop_token stop,
                    Token&& token) {
  return detail::initiate_send(tx.core_ptr(), std::move(value), std::move(stop),
                               detail::deadline_after(timeout), std::forward<Token>(token));
}
template <class T, class Rep, class Period, class Token>
auto async_send_for(const Sender<T>& tx, std::type_identity_t<T> value,
                    std::chrono::duration<Rep, Period> timeout, Token&& token) {
  return detail::initiate_send(tx.core_ptr(), std::move(value), {}, detail::deadline_after(timeout),
                               std::forward<Token>(token));
}

}  // namespace custody
