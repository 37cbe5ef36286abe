#pragma once
// What a task of a named TaskGroup is doing, for custody::inspect(); and which task the current
// thread runs, for the notes of its blocked operations (block_note.hpp).
//
// Only tasks of a named group have a record. A task marks itself blocked before it sleeps and
// running when it wakes, under the record's own mutex: the only cost, paid by named groups'
// tasks and only on the way to sleep.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../inspection.hpp"
#include "block_note.hpp"
#include "mutex.hpp"
#include "registry.hpp"
#include "thread_annotations.hpp"

namespace custody::detail {

/// One channel a blocked task waits on: its registration (null: unnamed) and the direction.
struct waited_channel {
  const registration* channel = nullptr;
  bool sending = false;
};

class task_record {
 public:
  /// The channels a record keeps of one blocked select; the report counts the others.
  static constexpr std::size_t kept_waits = 8;

  explicit task_record(std::string name) : name_(std::move(name)) {}

  const std::string& name() const noexcept { return name_; }

  /// The name's number in task_names once the task interned it (0 before; current_task_id),
  /// kept across a coroutine task's steps (task_identity_scope). Only the task's own steps, one
  /// at a time and while it runs, touch it.
  std::uint32_t name_number = 0;

  /// The task sleeps in `operation` ("send on", "recv on", "select of", or with `cases` 0 one
  /// that names no channel) on `on` (a channel's registration, null for an unnamed one), a
  /// select of `cases` cases, from `since`. `on` must stay alive until running() is called: a
  /// blocked thread holds its channel.
  void blocked(const char* operation, const registration* on, std::size_t cases,
               std::chrono::steady_clock::time_point since) {
    const waited_channel only{on, std::strcmp(operation, "send on") == 0};
    blocked(operation, &only, cases == 1 ? 1 : 0, cases, since);
  }
  /// As above for a select of `cases` cases waiting on `waits[0..n)` (every channel case; at
  /// most kept_waits are kept). The registrations must stay alive until running().
  void blocked(const char* operation, const waited_channel* waits, std::size_t n, std::size_t cases,
               std::chrono::steady_clock::time_point since) {
    std::lock_guard lock(mutex_);
    state_ = task_state::blocked;
    operation_ = operation;
    on_ = cases == 1 && n == 1 ? waits[0].channel : nullptr;
    cases_ = cases;
    since_ = since;
    waits_count_ = n < kept_waits ? n : kept_waits;
    for (std::size_t i = 0; i < waits_count_; ++i) waits_[i] = waits[i];
  }
  void running() { set(task_state::running); }
  void finished() { set(task_state::finished); }

  task_report report(std::chrono::steady_clock::time_point now) const {
    task_report r;
    r.name = name_;
    std::lock_guard lock(mutex_);
    r.state = state_;
    if (state_ == task_state::blocked) {
      r.operation = operation_;
      if (cases_ == 0) {
        // No channel: the operation says it all.
      } else if (cases_ > 1) {
        r.operation += " " + std::to_string(cases_) + " cases";
      } else {
        r.operation += on_ ? " \"" + on_->name() + "\"" : std::string(" an unnamed channel");
      }
      r.blocked_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - since_).count();
      r.blocked_since = since_;
      for (std::size_t i = 0; i < waits_count_; ++i) {
        r.waits_on.push_back(
            {waits_[i].channel ? waits_[i].channel->name() : std::string(), waits_[i].sending});
      }
    }
    return r;
  }

 private:
  void set(task_state s) {
    std::lock_guard lock(mutex_);
    state_ = s;
    on_ = nullptr;
    waits_count_ = 0;
  }

  const std::string name_;
  mutable mutex mutex_;
  task_state state_ CUSTODY_GUARDED_BY(mutex_) = task_state::running;
  const char* operation_ CUSTODY_GUARDED_BY(mutex_) = "";
  const registration* on_ CUSTODY_GUARDED_BY(mutex_) = nullptr;
  std::size_t cases_ CUSTODY_GUARDED_BY(mutex_) = 1;
  std::chrono::steady_clock::time_point since_ CUSTODY_GUARDED_BY(mutex_);
  waited_channel waits_[kept_waits] CUSTODY_GUARDED_BY(mutex_);
  std::size_t waits_count_ CUSTODY_GUARDED_BY(mutex_) = 0;
};

/// A named TaskGroup's registration: the records of its tasks, in spawn order, guarded by the
/// group's mutex. Kept here so that an unnamed group holds nothing but a null pointer.
class task_group_registration : public registration {
 public:
  using registration::registration;
  std::vector<std::unique_ptr<task_record>> records;
};

/// The task the current thread runs: its name (any TaskGroup task) and its record (a named
/// group's task only). Both null outside a task. `id` is the name's number in task_names,
/// set the first time the task completes an operation on a named channel (0 until then).
struct task_identity {
  const std::string* name = nullptr;
  task_record* record = nullptr;
  std::uint32_t id = 0;
};

inline thread_local task_identity current_task;

/// Marks the current task blocked, from `since`, for the rest of one wait, when it has a
/// record: made when the thread falls asleep (parker::wait's going_to_sleep), so a wait that
/// ends while spinning leaves the record alone.
class blocked_scope {
 public:
  blocked_scope(const char* operation, const waited_channel* waits, std::size_t n,
                std::size_t cases, std::chrono::steady_clock::time_point since)
      : record_(current_task.record) {
    if (!record_) return;
    record_->blocked(operation, waits, n, cases, since);
  }
  ~blocked_scope() {
    if (record_) record_->running();
  }
  blocked_scope(const blocked_scope&) = delete;
  blocked_scope& operator=(const blocked_scope&) = delete;

 private:
  task_record* record_;
};

}  // namespace custody::detail
