#pragma once
// The blocking send and receive behind every channel handle, on a chan_core: what Sender,
// Receiver and the store's internals share. Each is a select of one case, with fast paths.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>

#include "chan_core.hpp"
#include "select_engine.hpp"
#include "status.hpp"

namespace custody::detail {

using time_point = std::chrono::steady_clock::time_point;

template <class T>
std::shared_ptr<chan_core<T>> make_core(std::size_t capacity) {
  if (capacity == 0) return std::make_shared<rendezvous_core<T>>();
  if constexpr (std::is_nothrow_move_constructible_v<T>) {
    return std::make_shared<buffered_core<T, lockfree_ring<T>>>(capacity);
  } else {
    return std::make_shared<buffered_core<T, locked_ring<T>>>(capacity);
  }
}

template <class Rep, class Period>
time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  const auto now = std::chrono::steady_clock::now();
  // Saturate: a huge timeout means "no timeout", not an overflowed past deadline.
  if (d > std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(time_point::max() - now)) {
    return time_point::max();
  }
  return now + std::chrono::ceil<std::chrono::steady_clock::duration>(d);
}

/// Receives into `value` (what it held is destroyed first); ok when it holds a value.
template <class T>
status receive_value(std::optional<T>& value, chan_core<T>& core, const std::stop_token* stop,
                     std::optional<time_point> deadline) {
  value.reset();
  // A fired stop wins over a ready value, so that a loop of receives stops even while its
  // channel never runs dry.
  if (stop && stop->stop_requested()) return status::stopped;
  if (!core.hands_over()) {
    const status s = core.try_recv(value);
    if (s != status::would_block) return s;
  } else if (const std::optional<status> s = core.recv_alone(value, stop, deadline)) {
    return *s;
  }
  alignas(64) wait_state state;
  op o = make_recv_op(&core, &value);
  return run_select(state, &o, 1, {false, stop, deadline}).status;
}

/// Sends `value`, moving from it only when the result is ok.
template <class T>
status send(chan_core<T>& core, T& value, const std::stop_token* stop,
            std::optional<time_point> deadline) {
  // As for receive_value: a fired stop wins over room in the channel.
  if (stop && stop->stop_requested()) return status::stopped;
  if (!core.hands_over()) {
    if (const status s = core.try_send(value); s != status::would_block) return s;
  } else if (core.try_send_to_lone(value)) {
    return status::ok;
  }
  alignas(64) wait_state state;
  op o = make_send_op(&core, &value);
  return run_select(state, &o, 1, {false, stop, deadline}).status;
}

}  // namespace custody::detail
