#pragma once
// Task names as small numbers, so that a named channel can remember which task last used each
// end in one relaxed atomic store, and a snapshot can turn the number back into a name even
// after the task (and its own copy of the name) is gone.
//
// A name is interned the first time its task completes an operation on a named channel, and
// kept for the life of the process: one copy per distinct name, so a program that names its
// tasks from a fixed set keeps a fixed set.

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mutex.hpp"
#include "task_record.hpp"
#include "thread_annotations.hpp"

namespace custody::detail {

class task_names {
 public:
  /// Never destroyed, as the registry (registry.hpp): a task may be named while the process
  /// exits.
  static task_names& instance() {
    static task_names* const the_names = new task_names();
    return *the_names;
  }

  /// The number of `name`, 0 for an empty one. Throws std::bad_alloc.
  std::uint32_t id_of(const std::string& name) {
    if (name.empty()) return 0;
    std::lock_guard lock(mutex_);
    if (const auto it = ids_.find(name); it != ids_.end()) return it->second;
    names_.push_back(name);
    const auto id = static_cast<std::uint32_t>(names_.size());
    try {
      ids_.emplace(names_.back(), id);  // a view of the deque's copy: never moves
    } catch (...) {
      names_.pop_back();
      throw;
    }
    return id;
  }

  /// The name numbered `id`; "" for 0. Throws std::bad_alloc.
  std::string name_of(std::uint32_t id) const {
    if (id == 0) return {};
    std::lock_guard lock(mutex_);
    return id <= names_.size() ? names_[id - 1] : std::string();
  }

 private:
  mutable mutex mutex_;
  std::deque<std::string> names_ CUSTODY_GUARDED_BY(mutex_);
  std::unordered_map<std::string_view, std::uint32_t> ids_ CUSTODY_GUARDED_BY(mutex_);
};

/// Interns the current task's name and returns its number: current_task_id()'s first call in
/// a named task. 0 if interning cannot allocate.
[[gnu::noinline]] inline std::uint32_t intern_current_task() noexcept {
  task_identity& self = current_task;
  try {
    self.id = task_names::instance().id_of(*self.name);
  } catch (...) {
    return 0;
  }
  // Kept in the task's record for its next steps: a coroutine task's identity is set again
  // at each step (asio/task_identity.hpp). Written while the task runs, never after.
  if (self.record) self.record->name_number = self.id;
  return self.id;
}

/// The current task's number (0 outside a task), interned on first use by this thread's task.
/// If interning cannot allocate, the task goes unnamed (0) rather than failing the operation.
/// Forced inline, the interning out of line: a named channel asks at every operation, and the
/// call cost it 5 to 6 instructions more each time.
[[gnu::always_inline]] inline std::uint32_t current_task_id() noexcept {
  const task_identity& self = current_task;
  if (self.id != 0 || !self.name || self.name->empty()) [[likely]]
    return self.id;
  return intern_current_task();
}

}  // namespace custody::detail
