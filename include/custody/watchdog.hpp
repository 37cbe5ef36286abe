#pragma once
// custody::Watchdog: reports the wait-for graph (wait_for.hpp) of a stalled task group.
//
//   custody::TaskGroup group("pipeline");                 // a named group: only it is inspected
//   custody::Watchdog watchdog(group, std::chrono::seconds(2), custody::log_wait_for());
//   group.spawn(...);
//
// A stall: the group has at least one live (not finished) task and every live task has been
// blocked in a channel operation for longer than the threshold. The watchdog's thread takes a
// custody::inspect() snapshot every threshold/4 (at least every millisecond) and, on a stall,
// calls its action once with the graph of that snapshot. It calls it again only for a new
// stall: after a snapshot in which the group was not stalled, or when some task began its wait
// after the reported ones (it ran in between, even if no snapshot saw it running). It runs
// beside the group and touches nothing of it but its snapshots, so it may be made before or
// after the tasks are spawned, and destroyed before or after the group.
//
// Actions: log_wait_for() writes the report to stderr; abort_with_wait_for() writes it and calls
// std::abort(); any callable taking `const custody::wait_for_graph&` gets the graph itself.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "inspect.hpp"
#include "task_group.hpp"
#include "wait_for.hpp"

namespace custody {

/// What a Watchdog does on a stall; called on the watchdog's thread.
using watchdog_action = std::function<void(const wait_for_graph&)>;

/// The report a Watchdog's built-in actions write: a heading, then wait_for_graph::to_text().
inline std::string wait_for_report(const wait_for_graph& graph) {
  return "custody watchdog: every task of the group is blocked; wait-for report:\n" +
         graph.to_text();
}

/// An action writing wait_for_report() to stderr.
inline watchdog_action log_wait_for() {
  return [](const wait_for_graph& graph) {
    std::fputs(wait_for_report(graph).c_str(), stderr);
    std::fflush(stderr);
  };
}

/// An action writing wait_for_report() to stderr, then calling std::abort().
inline watchdog_action abort_with_wait_for() {
  return [](const wait_for_graph& graph) {
    std::fputs(wait_for_report(graph).c_str(), stderr);
    std::fflush(stderr);
    std::abort();
  };
}

namespace detail {
/// stalled() for the group's own report.
inline bool stalled(const task_group_report& group, std::chrono::milliseconds threshold) {
  bool live = false;
  for (const task_report& t : group.tasks) {
    if (t.state == task_state::finished) continue;
    if (t.state != task_state::blocked || t.blocked_ms <= threshold.count()) return false;
    live = true;
  }
  return live;
}
}  // namespace detail

/// Whether the task group named `group` is stalled in `snapshot`: it has a live task, and every
/// live task is blocked and has been for longer than `threshold`. False when no group of that
/// name is in the snapshot (the first one of that name is judged).
inline bool stalled(const inspection& snapshot, std::string_view group,
                    std::chrono::milliseconds threshold) {
  const task_group_report* g = detail::find_named(snapshot.task_groups, group);
  return g && detail::stalled(*g, threshold);
}

/// Watches one named task group for stalls (see the top of this header).
class Watchdog {
 public:
  /// Starts watching `group`, which must be named (its name is what the snapshots list). The
  /// action runs on the watchdog's thread; an exception it throws is dropped (that stall counts
  /// as reported), and the destructor waits for an action that is running.
  /// `threshold` must be positive. Throws std::invalid_argument for an unnamed group, a
  /// threshold that is not positive or an empty action; std::system_error if the thread cannot
  /// start; std::bad_alloc.
  Watchdog(const TaskGroup& group, std::chrono::milliseconds threshold, watchdog_action action)
      : group_(group.name()), threshold_(threshold), action_(std::move(action)) {
    if (group_.empty()) {
      throw std::invalid_argument("custody::Watchdog: the task group has no name to inspect");
    }
    if (threshold <= std::chrono::milliseconds::zero()) {
      throw std::invalid_argument("custody::Watchdog: the threshold must be positive");
    }
    if (!action_) throw std::invalid_argument("custody::Watchdog: no action");
    period_ = std::max(threshold / 4, std::chrono::milliseconds(1));
    thread_ = std::jthread([this](std::stop_token stop) { watch(stop); });
  }

  /// Stops the watchdog's thread and joins it: promptly, as the thread waits on a condition
  /// that the stop wakes, unless it is inside the action (which is then awaited).
  ~Watchdog() {
    thread_.request_stop();
    thread_.join();
  }

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  Watchdog(Watchdog&&) = delete;
  Watchdog& operator=(Watchdog&&) = delete;

 private:
  void watch(const std::stop_token& stop) {
    // The reported stall, by the latest start of its tasks' waits; none when not stalled.
    std::optional<std::chrono::steady_clock::time_point> reported;
    for (;;) {
      {
        // Nothing notifies it but the stop: a deadline wait that a stop cuts short.
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, stop, period_, [&stop] { return stop.stop_requested(); })) {
          return;
        }
      }
      // A snapshot that ran out of memory is retried at the next look; an action that threw
      // has had its stall (it stays reported). Either way the watchdog goes on.
      try {
        look(reported);
      } catch (...) {
      }
    }
  }

  // One look at the group: `reported` is the stall reported last, if the group has stayed
  // stalled since. A stall whose latest wait began later is a new one: a task ran after the
  // last report, even if no snapshot caught it running (a loaded machine may delay this
  // thread for longer than the threshold). An exception from the action propagates (the stall
  // stays reported).
  void look(std::optional<std::chrono::steady_clock::time_point>& reported) {
    const inspection snapshot = inspect();
    const task_group_report* group = detail::find_named(snapshot.task_groups, group_);
    if (!group || !detail::stalled(*group, threshold_)) {
      reported.reset();
      return;
    }
    const std::chrono::steady_clock::time_point began = latest_wait(*group);
    if (reported && began <= *reported) return;
    reported = began;
    action_(wait_for_graph(snapshot));
  }

  // When the last of a stalled group's live tasks began its wait.
  static std::chrono::steady_clock::time_point latest_wait(const task_group_report& group) {
    std::chrono::steady_clock::time_point latest{};
    for (const task_report& t : group.tasks) {
      if (t.state == task_state::blocked) latest = std::max(latest, t.blocked_since);
    }
    return latest;
  }

  const std::string group_;
  const std::chrono::milliseconds threshold_;
  const watchdog_action action_;
  std::chrono::milliseconds period_{};
  std::mutex mutex_;  // only for wake_'s wait
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: stopped and joined before the members it uses go
};

}  // namespace custody
