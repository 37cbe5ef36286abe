#pragma once
// fanout: copy every value from one channel to several, for user pipelines (the seed's
// Fanout[T], without its two defects: it returns promptly when stopped even while an output
// is full, and a slow output holds the others back only in lockstep mode, when asked for).
//
//   std::jthread t([&](std::stop_token st) { custody::fanout(st, in, screen, logfile); });

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "detail/select_engine.hpp"
#include "status.hpp"

namespace custody {

/// How fanout treats an output that is not ready.
enum class fanout_mode : std::uint8_t {
  /// The default. Each output has one pending value; when a new value arrives before a slow
  /// output took the previous one, that output's pending value is replaced by the newer one
  /// (the older is dropped for that output alone). Values keep coming from the input and
  /// reach every ready output at once: a slow output never holds back the others.
  conflate,
  /// Every output gets every value, in order: the next value is taken from the input only
  /// once every output took the current one (the seed's behaviour: a slow output holds back
  /// the others, and the input).
  lockstep,
};

/// Receives values from `in` and sends each to every output, until:
/// - `in` is closed and drained and every pending value was delivered: returns closed;
/// - every output is closed (by someone else): returns closed;
/// - `stop` is triggered: returns stopped at once, even while an output is full (pending
///   values are dropped).
/// Before returning it closes every output, so their receivers' loops end. An output that
/// someone else closes is dropped from the fanout. Blocks the calling thread throughout
/// (run it on its own task). Throws what copying T throws, and std::bad_alloc.
template <class T>
status fanout(std::stop_token stop, Receiver<T> in, std::vector<Sender<T>> outs,
              fanout_mode mode = fanout_mode::conflate) {
  static_assert(std::is_copy_constructible_v<T>, "custody::fanout needs a copyable value type");
  const std::size_t n = outs.size();
  std::vector<std::optional<T>> pending(n);
  std::vector<bool> open(n, true);
  std::vector<detail::op> ops(n + 1);
  std::optional<T> incoming;
  detail::wait_state wait;
  bool in_open = static_cast<bool>(in);
  std::size_t open_outputs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    open[i] = static_cast<bool>(outs[i]);
    open_outputs += open[i] ? 1 : 0;
  }
  auto finish = [&](status s) {
    for (std::size_t i = 0; i < n; ++i) {
      if (outs[i]) outs[i].close();
    }
    return s;
  };

  for (;;) {
    bool any_pending = false;
    for (std::size_t i = 0; i < n; ++i) any_pending = any_pending || pending[i].has_value();
    const bool take_input =
        in_open && open_outputs > 0 && (mode == fanout_mode::conflate || !any_pending);
    if (!take_input && !any_pending) return finish(status::closed);

    ops[0] = take_input ? detail::make_recv_op(in.core_ptr().get(), &incoming) : detail::op{};
    for (std::size_t i = 0; i < n; ++i) {
      ops[i + 1] =
          pending[i] ? detail::make_send_op(outs[i].core_ptr().get(), &*pending[i]) : detail::op{};
    }
    const detail::outcome o =
        detail::run_select(wait, ops.data(), ops.size(), false, &stop, std::nullopt);
    if (o.index == detail::outcome::none) return finish(o.status);  // stopped

    if (o.index == 0) {
      if (o.status != status::ok) {
        in_open = false;
        continue;
      }
      // Copies for all but the last open output, which takes the value itself.
      std::size_t last = n;
      for (std::size_t i = 0; i < n; ++i) {
        if (open[i]) last = i;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (!open[i]) continue;
        if (i == last) {
          pending[i].emplace(std::move(*incoming));
        } else {
          pending[i].emplace(*incoming);
        }
      }
      incoming.reset();
      continue;
    }
    const std::size_t i = o.index - 1;
    pending[i].reset();
    if (o.status != status::ok && open[i]) {  // this output was closed by someone else
      open[i] = false;
      --open_outputs;
    }
  }
}

/// fanout(stop, in, {outs...}) in the default conflate mode.
template <class T, class... Outs>
requires(std::is_convertible_v<const Outs&, Sender<T>>&&...) status
    fanout(std::stop_token stop, Receiver<T> in, const Sender<T>& first, const Outs&... rest) {
  return fanout(std::move(stop), std::move(in), std::vector<Sender<T>>{first, Sender<T>(rest)...},
                fanout_mode::conflate);
}

/// fanout(stop, in, {outs...}) in the given mode.
template <class T, class... Outs>
requires(std::is_convertible_v<const Outs&, Sender<T>>&&...) status
    fanout(std::stop_token stop, fanout_mode mode, Receiver<T> in, const Sender<T>& first,
           const Outs&... rest) {
  return fanout(std::move(stop), std::move(in), std::vector<Sender<T>>{first, Sender<T>(rest)...},
                mode);
}

}  // namespace custody
