#pragma once
// fanout: copy every value from one channel to several, for user pipelines (the seed's
// Fanout[T], without its two defects: it returns promptly when stopped, even while an output
// is full or the input never runs dry, and a slow output holds the others back only in
// lossless mode, when asked for).
//
//   std::jthread t([&](std::stop_token st) { custody::fanout(st, in, screen, logfile); });

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "dynamic_select.hpp"
#include "status.hpp"

namespace custody {

/// What fanout does with a value an output cannot take at once.
enum class fanout_mode : std::uint8_t {
  /// The default. An output with room gets every value, in order. An output that is full
  /// when a value arrives (for an unbuffered output: no receiver is waiting) keeps one value
  /// waiting for it, the newest: a waiting value that a newer one replaces before the output
  /// took it is dropped for that output alone, and counted in its entry of `dropped`. A full
  /// output never holds back the input or the other outputs.
  replace_when_full,
  /// Drops nothing: every output gets every value, in order. The next value is taken from the
  /// input only once every output took the current one (the seed's behaviour: a slow output
  /// holds back the others, and the input).
  lossless,
};

/// Receives values from `in` and sends each to every output, until:
/// - `in` is closed and drained and every waiting value was delivered: returns closed;
/// - every output is closed (by someone else): returns closed;
/// - `stop` is triggered: returns stopped, having passed on at most the one value it was
///   handling (stop is checked between any two values, and wins over a ready input or output
///   in the wait). Values still waiting for full outputs are dropped then, and counted.
/// Before returning it closes every output, so their receivers' loops end. An output that
/// someone else closes is dropped from the fanout (values it did not take are not counted).
/// `dropped`, if not empty, has an entry per output (extra entries are left alone): each
/// value an output did not get is added to its entry, by the fanout's thread; read it once
/// fanout returned. Blocks the calling thread throughout (run it on its own task); wakes when
/// the input or a full output is ready, or when `stop` fires. Throws what copying T throws,
/// and std::bad_alloc (outputs stay open then).
template <class T>
status fanout(std::stop_token stop, Receiver<T> in, std::vector<Sender<T>> outs,
              fanout_mode mode = fanout_mode::replace_when_full,
              std::span<std::uint64_t> dropped = {}) {
  static_assert(std::is_copy_constructible_v<T>, "custody::fanout needs a copyable value type");
  const std::size_t n = outs.size();
  std::vector<std::optional<T>> waiting(n);  // the value each full output still has to take
  std::vector<bool> open(n);
  std::vector<std::size_t> output_of;  // select case -> output
  select_list cases;
  std::optional<T> incoming;
  bool in_open = static_cast<bool>(in);
  std::size_t open_outputs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    open[i] = static_cast<bool>(outs[i]);
    open_outputs += open[i] ? 1 : 0;
  }
  auto count_drop = [&](std::size_t i) {
    if (i < dropped.size()) ++dropped[i];
  };
  auto output_closed = [&](std::size_t i) {
    waiting[i].reset();
    if (open[i]) {
      open[i] = false;
      --open_outputs;
    }
  };
  // Hands the waiting value to output i if it has room now; never waits.
  auto flush = [&](std::size_t i) {
    if (!waiting[i]) return;
    const status s = outs[i].try_send(std::move(*waiting[i]));
    if (s == status::ok) waiting[i].reset();
    if (s == status::closed) output_closed(i);
  };
  auto finish = [&](status s) {
    for (std::size_t i = 0; i < n; ++i) {
      if (waiting[i]) count_drop(i);
      if (outs[i]) outs[i].close();
    }
    return s;
  };
  // A new value: every output with room takes it now, in order after what waited for it.
  auto distribute = [&](T& value) {
    std::size_t last = n;  // the last open output takes the value itself, the others copies
    for (std::size_t i = 0; i < n; ++i) {
      if (open[i]) last = i;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!open[i]) continue;
      flush(i);
      if (!open[i]) continue;
      if (waiting[i]) count_drop(i);  // still full: the newer value replaces it
      if (i == last) {
        waiting[i].emplace(std::move(value));
      } else {
        waiting[i].emplace(value);
      }
      flush(i);
    }
  };

  for (;;) {
    if (stop.stop_requested()) return finish(status::stopped);
    bool any_waiting = false;
    for (std::size_t i = 0; i < n; ++i) any_waiting = any_waiting || waiting[i].has_value();
    const bool take_input =
        in_open && open_outputs > 0 && (mode == fanout_mode::replace_when_full || !any_waiting);
    if (!take_input && !any_waiting) return finish(status::closed);

    cases.clear();
    output_of.clear();
    if (take_input) {
      cases.add_recv(in, incoming);
      output_of.push_back(n);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!waiting[i]) continue;
      cases.add_send(outs[i], *waiting[i]);
      output_of.push_back(i);
    }
    const selected r = cases.select(stop);
    if (r.index == select_list::none) return finish(r.status);  // stopped

    const std::size_t i = output_of[r.index];
    if (i == n) {  // the input
      if (r.status != status::ok) {
        in_open = false;
        continue;
      }
      distribute(*incoming);
      incoming.reset();
      continue;
    }
    if (r.status == status::ok) {
      waiting[i].reset();
    } else {
      output_closed(i);  // closed by someone else
    }
  }
}

/// fanout(stop, in, {outs...}) in the default replace_when_full mode.
template <class T, class... Outs>
requires(std::is_convertible_v<const Outs&, Sender<T>>&&...) status
    fanout(std::stop_token stop, Receiver<T> in, const Sender<T>& first, const Outs&... rest) {
  return fanout(std::move(stop), std::move(in), std::vector<Sender<T>>{first, Sender<T>(rest)...},
                fanout_mode::replace_when_full);
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
