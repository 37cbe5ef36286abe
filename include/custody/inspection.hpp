#pragma once
// What custody::inspect() reports: plain values copied from the live named objects at one
// moment, safe to keep, print and compare after those objects are gone.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "detail/set_result.hpp"

namespace custody {

/// One blocked case on a channel: a plain send or receive (cases == 1) or one case of a select.
struct blocked_report {
  std::string task;            ///< the blocked thread's task name; empty outside a task
  std::size_t case_index = 0;  ///< the case's position in its select (0 for a plain operation)
  std::size_t cases = 1;       ///< the cases of its select; 1 for a plain send or receive
  /// How long its thread has been asleep on it when the snapshot was taken; 0 while the wait
  /// still spins (every wait spins briefly before it sleeps).
  std::int64_t blocked_ms = 0;
};

/// A named channel.
struct channel_report {
  std::string name;          ///< the name given where it was made
  std::size_t capacity = 0;  ///< 0 for an unbuffered channel
  std::size_t length = 0;    ///< values buffered
  bool closed = false;       ///< close() was called
  /// Blocked senders, in the order they queued.
  std::vector<blocked_report> senders;
  /// Blocked receivers: an unbuffered channel's lone-slot receiver first, then in queue order.
  std::vector<blocked_report> receivers;
  /// Blocked cases beyond the ones listed: a snapshot lists a bounded number per list.
  std::size_t unlisted = 0;
  /// The task that last completed a send on it; empty when that was not a task, or before any.
  std::string last_sender;
  /// The task that last completed a receive on it; empty as for last_sender.
  std::string last_receiver;
  std::uint64_t sends = 0;     ///< sends completed since it was made
  std::uint64_t receives = 0;  ///< receives completed since it was made
  /// Time its waiters slept on it (after their brief spin), summed once each woke.
  std::int64_t blocked_ms_total = 0;
};

/// How many set() calls of one store have returned each set_status, since it was made.
struct set_answer_counts {
  /// Indexed by the status's value; operator[] reads it by status.
  std::array<std::uint64_t, set_status_count> by_status{};

  /// The count of `s`.
  std::uint64_t operator[](set_status s) const noexcept {
    return by_status[static_cast<std::size_t>(s)];
  }
  /// The count of `s`, to change.
  std::uint64_t& operator[](set_status s) noexcept {
    return by_status[static_cast<std::size_t>(s)];
  }
};

/// `s` as a key: its enumerator's name ("accepted", ..., "owner_gone", ...), as the JSON
/// rendering and the metrics' status label write it.
constexpr std::string_view set_status_key(set_status s) noexcept {
  return s == set_status::owner_gone ? "owner_gone" : to_string(s);
}

/// A named store.
struct store_report {
  std::string name;           ///< the name given in store_options
  std::uint64_t version = 0;  ///< grows by one with every publish
  /// Values published since the store was made (publish, update, accept, joint changes): a
  /// count from 0, where version starts at 1 and is this plus one.
  std::uint64_t publishes = 0;
  std::size_t pending_sets = 0;  ///< set requests queued for the owner, not yet taken
  /// What the store's set() calls (set, set_if and their timed forms, blocking or
  /// asynchronous) returned, by status, counted as they return.
  set_answer_counts set_answers;
  bool closed = false;  ///< the owner is gone
};

/// A named subscription.
struct subscriber_report {
  std::string name;          ///< the name given to subscribe()
  std::string store;         ///< the store's name; empty for an unnamed store
  std::string policy;        ///< "block(256)", "buffer(8)" or "latest"
  std::size_t backlog = 0;   ///< updates delivered and not yet received
  std::uint64_t missed = 0;  ///< Subscription::missed() at the snapshot
  bool closed = false;       ///< the store is closed (what it holds can still be received)
};

/// One channel a blocked task waits on.
struct wait_report {
  std::string channel;   ///< its name; empty for an unnamed channel
  bool sending = false;  ///< true: waits to send on it; false: waits to receive from it
};

/// What a task of a named task group is doing.
enum class task_state { running, blocked, finished };

/// One task of a named task group. A thread task is blocked once it falls asleep in a custody
/// operation (after the brief spin it starts with), a coroutine task once the operation
/// suspends it.
struct task_report {
  std::string name;                        ///< the name it was spawned with
  task_state state = task_state::running;  ///< running, blocked or finished
  /// While blocked: "send on <channel>", "recv on <channel>", "select of <n> cases" or
  /// "wait for a stop or a deadline" (a select with no channel case); a channel without a name
  /// is shown as "an unnamed channel".
  std::string operation;
  std::int64_t blocked_ms = 0;  ///< while blocked: for how long
  /// While blocked: every channel it waits on (each case of a select, at most 8 kept), in
  /// case order; empty when it waits for a stop or a deadline only.
  std::vector<wait_report> waits_on;
  /// While blocked: when this wait began. Each wait has its own, so a later one here means
  /// the task ran since (not rendered; a watchdog tells stalls apart by it).
  std::chrono::steady_clock::time_point blocked_since{};
};

/// A named task group and its tasks, in the order they were spawned.
struct task_group_report {
  std::string name;                ///< the name given to the group
  std::vector<task_report> tasks;  ///< in the order they were spawned
};

/// A snapshot of every live named object (custody::inspect()).
struct inspection {
  std::vector<channel_report> channels;        ///< every live named channel
  std::vector<store_report> stores;            ///< every live named store
  std::vector<subscriber_report> subscribers;  ///< every live named subscription
  std::vector<task_group_report> task_groups;  ///< every live named task group

  /// Readable lines, one object per paragraph.
  std::string to_text() const;
  /// One JSON object: {"channels":[...],"stores":[...],"subscribers":[...],"task_groups":[...]}.
  std::string to_json() const;
};

/// "running", "blocked" or "finished".
constexpr std::string_view to_string(task_state s) noexcept {
  switch (s) {
    case task_state::running:
      return "running";
    case task_state::blocked:
      return "blocked";
    case task_state::finished:
      return "finished";
  }
  return "running";
}

namespace detail {
/// The first report named `name` in `reports` (channels, stores, task groups, ...), or null.
template <class Report>
const Report* find_named(const std::vector<Report>& reports, std::string_view name) noexcept {
  for (const Report& r : reports) {
    if (r.name == name) return &r;
  }
  return nullptr;
}
}  // namespace detail

}  // namespace custody

#include "detail/inspection_render.hpp"
