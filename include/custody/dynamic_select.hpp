#pragma once
// select_list: a select over cases chosen at run time (Go's reflect.Select), for code whose
// number of channels is known only at run time (fanout is one).
//
//   custody::select_list cases;
//   std::vector<std::optional<Job>> got(inputs.size());
//   for (std::size_t i = 0; i < inputs.size(); ++i) cases.add_recv(inputs[i], got[i]);
//   const custody::selected r = cases.select(stop);
//   if (r.status == custody::status::ok) handle(std::move(*got[r.index]));
//
// It commits exactly one case, with the same rules as custody::select (select.hpp): a uniform
// choice among the ready cases, a fired stop token included; nothing taken from or given to
// any other case; a disabled case (or one on a nil handle) never fires. It runs no callables:
// the caller looks at the returned index.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <vector>

#include "channel.hpp"
#include "detail/select_engine.hpp"
#include "status.hpp"

namespace custody {

/// Which case of a select committed, and how.
struct selected {
  std::size_t index;       ///< the committed case's position among the select's cases
  custody::status status;  ///< ok, closed, stopped, timeout, or would_block (default case)
};

/// A list of send and receive cases, built at run time, to select over. Adding a case
/// allocates (std::bad_alloc); selecting reuses the list's storage and allocates nothing once
/// it has run. The list refers to the handles' channels and to the caller's values: they must
/// outlive every select over it. One thread uses a list at a time.
class select_list {
 public:
  /// The index of a select that ended without a case: stopped, timeout or would_block.
  static constexpr std::size_t none = detail::outcome::none;

  /// A receive case: on status::ok the value is in `into` (replacing what it held); on
  /// status::closed (closed and drained) `into` is untouched. Returns the case's index.
  template <class T>
  std::size_t add_recv(const Receiver<T>& rx, std::optional<T>& into) {
    return add(rx.core_ptr() ? detail::make_recv_op(rx.core_ptr().get(), &into) : detail::op{});
  }
  /// A send case: `value` is moved from only when the case commits with status::ok; on
  /// status::closed it is untouched. Returns the case's index.
  template <class T>
  std::size_t add_send(const Sender<T>& tx, T& value) {
    return add(tx.core_ptr() ? detail::make_send_op(tx.core_ptr().get(), &value) : detail::op{});
  }

  /// Enables or disables case `index`; a disabled case never fires (Go's nil channel).
  void enable(std::size_t index, bool enabled) {
    ops_.at(index).core = enabled ? cores_.at(index) : nullptr;
  }
  /// The number of cases.
  std::size_t size() const noexcept { return ops_.size(); }
  /// Removes every case; keeps the storage for the next ones.
  void clear() noexcept {
    ops_.clear();
    cores_.clear();
  }

  /// Blocks until a case commits: status ok or closed, and its index. Throws std::logic_error
  /// if no case is enabled (nothing could ever wake it), and what a moved value's move
  /// constructor throws (the value then stays where it was).
  selected select() { return run({}); }
  /// As select(), but also ends with {none, stopped} once `stop` is triggered: a triggered
  /// token is a ready case, chosen uniformly among the ready cases.
  selected select(std::stop_token stop) { return run({false, &stop, std::nullopt}); }
  /// As select(stop), but also ends with {none, timeout} once `deadline` passes.
  selected select_until(std::chrono::steady_clock::time_point deadline, std::stop_token stop = {}) {
    return run({false, &stop, deadline});
  }
  /// As select(stop), but also ends with {none, timeout} after `timeout`.
  template <class Rep, class Period>
  selected select_for(std::chrono::duration<Rep, Period> timeout, std::stop_token stop = {}) {
    return select_until(detail::deadline_after(timeout), std::move(stop));
  }
  /// Never blocks: commits a ready case, or returns {none, would_block} (or {none, stopped}
  /// when `stop` is triggered and chosen among the ready cases).
  selected try_select(std::stop_token stop = {}) { return run({true, &stop, std::nullopt}); }

 private:
  std::size_t add(const detail::op& o) {
    cores_.push_back(o.core);
    try {
      ops_.push_back(o);
    } catch (...) {
      cores_.pop_back();
      throw;
    }
    return ops_.size() - 1;
  }

  selected run(const detail::select_limits& limits) {
    const std::size_t n = ops_.size();
    if (const auto alone = detail::select_alone(ops_.data(), n, limits)) {
      return {alone->index, alone->status};
    }
    order_.resize(n + 1);
    waiters_.resize(n);
    detail::parker self;
    const detail::outcome o =
        detail::select_run(self, ops_.data(), n, limits, order_.data(), waiters_.data()).run();
    return {o.index, o.status};
  }

  std::vector<detail::op> ops_;
  std::vector<void*> cores_;  // each case's channel, to enable it again
  std::vector<std::uint32_t> order_;
  std::vector<detail::waiter> waiters_;
};

}  // namespace custody
