#pragma once
// Asynchronous select over custody channels, for coroutines and callbacks on Asio executors:
//
//   for (;;) {
//     custody::selected s = co_await custody::async_select(
//         custody::on_recv(updates, [&](Update u) { show(u); }),
//         custody::on_recv(requests, [&](Request q) { answer(q); }),
//         custody::on_stop(stop),
//         custody::on_timeout(1s, [&] { idle(); }),
//         asio::use_awaitable);
//     if (s.status == custody::status::stopped) break;
//   }
//
// The cases are select()'s (select.hpp) and mean the same: exactly one commits, chosen
// uniformly among those ready at once, and nothing is taken from or given to any other case,
// so a value is never lost when a timeout, stop, close or cancellation races it.
// - Completion token last (Asio's universal model); the handler is called as
//   handler(std::exception_ptr, custody::selected). The committed case's callable runs first,
//   on the handler's executor, after the commit; what it throws reaches the handler as the
//   std::exception_ptr (use_awaitable rethrows it), as does std::logic_error when no case could
//   ever commit.
// - Asio cancellation through the handler's cancellation slot completes it with status::stopped,
//   unless a case had committed first. It acts as the on_stop case when there is one (its
//   callable runs, its index is reported); without one no callable runs and the index is the
//   number of cases.
// - Where it completes, outstanding work, and the slot's threading rule: as for async_recv
//   (custody/asio/channel.hpp).
// - The cases are moved into the operation, but they refer to their channels and to the values
//   of send cases: the handles and those values must outlive the operation (in a coroutine,
//   locals of the awaiting frame do).

#include <asio/async_result.hpp>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../select.hpp"
#include "operation.hpp"
#include "task_operation.hpp"

namespace custody {

namespace detail {

template <class... Cases>
struct select_body {
  static constexpr std::size_t cases = sizeof...(Cases);
  using result_type = selected;

  std::tuple<Cases...> list;
  std::optional<case_layout> layout;  // points into `list`: made once the body is in place

  void make_ops(op* ops) {
    std::apply(
        [&](auto&... c) {
          std::size_t i = 0;
          ((ops[i++] = c.make_op()), ...);
          layout.emplace(c...);
        },
        list);
  }
  select_limits limits() const { return layout->limits; }
  bool stop_first() const noexcept { return false; }
  selected result(const outcome& o) {
    return std::apply([&](auto&... c) { return layout->fire(o, c...); }, list);
  }
};

}  // namespace detail

/// Commits exactly one of the cases (every argument but the last) and completes through the
/// completion token (the last argument); see the top of this header.
template <class... Args>
auto async_select(Args&&... args) {
  static_assert(sizeof...(Args) >= 1, "custody::async_select: the completion token comes last");
  constexpr std::size_t n = sizeof...(Args) - 1;
  std::tuple<Args&&...> all(std::forward<Args>(args)...);
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    using body = detail::select_body<std::decay_t<std::tuple_element_t<I, std::tuple<Args...>>>...>;
    static_assert(
        detail::check_cases<std::decay_t<std::tuple_element_t<I, std::tuple<Args...>>>...>());
    using token = std::tuple_element_t<n, std::tuple<Args...>>;
    if constexpr (std::is_same_v<std::decay_t<token>, asio::use_task_t>) {
      // Inside a custody::asio::Task: the operation's state in the task's frame.
      return detail::task_body_awaiter<body>(
          body{{std::forward<std::tuple_element_t<I, std::tuple<Args...>>>(std::get<I>(all))...},
               std::nullopt});
    } else {
      return ::asio::async_initiate<token, void(std::exception_ptr, selected)>(
          [](auto handler, body b) {
            detail::async_operation<body, std::decay_t<decltype(handler)>>::start(
                std::move(handler), std::move(b));
          },
          std::get<n>(all),
          body{{std::forward<std::tuple_element_t<I, std::tuple<Args...>>>(std::get<I>(all))...},
               std::nullopt});
    }
  }
  (std::make_index_sequence<n>{});
}

}  // namespace custody
