#pragma once
// TaskGroup: named tasks, each on its own std::jthread, sharing one std::stop_source. The first
// task to throw stops the others, and wait() rethrows its exception.
// The C++ counterpart of Go's errgroup.Group (with errgroup.WithContext's cancellation).
//
//   custody::TaskGroup group;
//   group.spawn("reader", [&](std::stop_token st) { ... });
//   group.spawn("writer", [&](std::stop_token st) { ... });
//   group.wait();  // joins both; rethrows whatever the first failing task threw
//
// Lifecycle. A group is single-use and moves through three phases:
//   open     — from construction until wait() or the destructor starts; anyone may spawn().
//   joining  — wait() (or the destructor) is joining threads; only the group's own tasks may
//              spawn(), and the tasks they start are joined by the same wait().
//   finished — every task ever spawned has been joined; spawn() always throws.
// A finished task's thread handle is kept until wait() joins it, so a group suits a bounded set
// of tasks rather than an unbounded stream of short-lived ones.
//
// Thread names. On Linux a task's thread carries the task's name (its first 15 bytes, the
// kernel's limit), so that `top -H`, /proc/<pid>/task/*/comm and debuggers show it. An empty
// name leaves the thread unnamed and costs nothing.
//
// Inspection. A group given a name (TaskGroup group("car")) appears in custody::inspect(), with
// each task's state: running, blocked (in which operation, for how long) or finished. Its tasks
// mark themselves blocked and running around each sleep in a channel operation; a group
// without a name keeps no such record and its tasks pay nothing for it.

#if defined(__linux__)
#include <pthread.h>
#endif

#include <chrono>
#include <concepts>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/registry.hpp"
#include "detail/task_record.hpp"

namespace custody {

namespace detail {

// The group whose task the current thread runs (nullptr on other threads). Lets spawn() and
// wait() tell a call from inside the group's own tasks from an outside call.
inline thread_local const void* current_task_group = nullptr;

// Gives `thread` the name `name`, cut to the 15 bytes Linux keeps. Elsewhere does nothing.
inline void name_thread(std::thread::native_handle_type thread, const std::string& name) noexcept {
#if defined(__linux__)
  if (name.empty()) return;
  char kept[16] = {};
  name.copy(kept, sizeof kept - 1);
  (void)pthread_setname_np(thread, kept);
#else
  (void)thread;
  (void)name;
#endif
}

// The same for the calling thread.
inline void name_this_thread(const std::string& name) noexcept {
#if defined(__linux__)
  name_thread(pthread_self(), name);
#else
  (void)name;
#endif
}

template <class F>
concept task_function = std::move_constructible<std::decay_t<F>> &&
    std::constructible_from<std::decay_t<F>, F> &&
    (std::invocable<std::decay_t<F>, std::stop_token> || std::invocable<std::decay_t<F>>);

}  // namespace detail

/// Named tasks, each on its own std::jthread, sharing one std::stop_source; the first task to
/// throw stops the others and wait() rethrows its exception (Go's errgroup.Group with
/// errgroup.WithContext). Single-use: see the lifecycle at the top of this header.
class TaskGroup {
 public:
  TaskGroup() = default;
  /// A group named for custody::inspect(), which then lists its tasks and their states. An
  /// empty name makes an unnamed group, as TaskGroup(). Throws std::bad_alloc.
  explicit TaskGroup(std::string name) { name_.give(std::move(name), this, &describe_named); }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  TaskGroup(TaskGroup&&) = delete;
  TaskGroup& operator=(TaskGroup&&) = delete;

  /// Requests stop, then blocks until every task (including tasks spawned by tasks meanwhile) has
  /// returned and its thread has been joined. Never throws: an exception that wait() did not
  /// report is dropped. Must not run concurrently with any other member call from outside the
  /// group, nor from one of the group's own tasks (that task would join itself).
  ~TaskGroup() {
    request_stop();
    join_all();
    // Once no task runs (they use their records), and before the members a snapshot reads go.
    name_.leave();
  }

  /// Starts `fn` on a new std::jthread. `fn` (decay-copied on the calling thread) is invoked as
  /// `fn(stop_token())` if that is well-formed, otherwise as `fn()`; a return value is discarded.
  /// `name` identifies the task in failed_task() and, on Linux, names its thread (cut to 15
  /// bytes; an empty name leaves the thread unnamed).
  ///
  /// If stop has already been requested the task still starts; it simply observes a stopped
  /// token from its first instruction, so cancellation-aware tasks return promptly. This keeps
  /// spawn() free of races with a concurrent request_stop().
  ///
  /// An exception escaping `fn` is captured (not propagated to std::terminate), recorded if it is
  /// the group's first, and requests stop of every task.
  ///
  /// Does not wait for the task: returns once its thread has been started and named. Thread-safe:
  /// may be called from any thread, including from inside the group's tasks. Throws
  /// std::logic_error if the group is finished, or if wait()/the destructor has started and the
  /// caller is not one of the group's tasks (its task would be missed by that wait()). Throws
  /// std::system_error if the thread cannot be started; the group is then unchanged.
  template <class F>
  requires detail::task_function<F>
  void spawn(std::string name, F&& fn) {
    using Fn = std::decay_t<F>;
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::finished ||
        (phase_ == Phase::joining && detail::current_task_group != this)) {
      throw std::logic_error("custody::TaskGroup::spawn: cannot spawn task '" + name +
                             "': the group's wait() or destructor has already started");
    }
    // A named group records what each task does; kept until the group is destroyed.
    detail::task_record* record = nullptr;
    detail::task_group_registration* const named = name_.get();
    if (named) {
      named->records.reserve(named->records.size() + 1);  // the push below cannot throw
      record = new detail::task_record(name);
    }
    std::unique_ptr<detail::task_record> owned(record);
    // Constructed under the lock so that a wait() cannot finish between the phase check and
    // the thread becoming visible to it.
    threads_.emplace_back([this, name, fn = Fn(std::forward<F>(fn)),
                           token = stop_source_.get_token(), record]() mutable {
      // Named here too: the thread may run before spawn() names it, and the task must see
      // its name from its first instruction.
      detail::name_this_thread(name);
      detail::current_task_group = this;
      detail::current_task = {&name, record};
      struct finish {
        detail::task_record* record;
        ~finish() {
          detail::current_task = {};
          if (record) record->finished();
        }
      } on_exit{record};
      try {
        if constexpr (std::is_invocable_v<Fn, std::stop_token>) {
          std::invoke(std::move(fn), std::move(token));
        } else {
          std::invoke(std::move(fn));
        }
      } catch (...) {
        record_failure(std::move(name), std::current_exception());
      }
    });
    // Named here as well, so the name is in place once spawn() returns, run or not.
    detail::name_thread(threads_.back().native_handle(), name);
    if (named) named->records.push_back(std::move(owned));
  }

  /// Requests stop of every task, present and future. Thread-safe, non-blocking (apart from
  /// running stop callbacks registered on the token, on the calling thread), idempotent.
  void request_stop() noexcept { stop_source_.request_stop(); }

  /// The name given at construction; "" for an unnamed group.
  [[nodiscard]] const std::string& name() const noexcept { return name_.name(); }

  /// The token every task receives.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_source_.get_token(); }

  /// The shared stop source, e.g. for custody::SignalStop or to create stop callbacks. Calling
  /// its member functions is thread-safe; assigning a different source to it is not allowed.
  [[nodiscard]] std::stop_source& stop_source() noexcept { return stop_source_; }

  /// Blocks until every task has returned and its thread has been joined. Tasks that spawn
  /// further tasks meanwhile extend the wait to those too. wait() itself does not request stop:
  /// it returns when the tasks finish on their own, or stop because one failed or someone called
  /// request_stop().
  ///
  /// Afterwards the group is finished. If any task threw, rethrows the first exception recorded
  /// (the first task to fail, in time), as the original exception object; failed_task() names
  /// that task. A later wait() returns immediately and rethrows the same exception again.
  ///
  /// Thread-safe: concurrent calls from several threads are serialised and all return once the
  /// group is finished. Throws std::logic_error if called from one of the group's own tasks,
  /// which would otherwise wait for itself.
  void wait() {
    if (detail::current_task_group == this) {
      throw std::logic_error(
          "custody::TaskGroup::wait: called from one of the group's own tasks; it would wait "
          "for itself");
    }
    join_all();
    std::exception_ptr error;
    {
      std::lock_guard lock(mutex_);
      error = error_;
    }
    if (error) std::rethrow_exception(error);
  }

  /// The name of the first task that threw, or nullopt if none has (yet). Available as soon as
  /// the failure is recorded, before wait() returns. Thread-safe, non-blocking.
  [[nodiscard]] std::optional<std::string> failed_task() const {
    std::lock_guard lock(mutex_);
    return failed_task_;
  }

 private:
  enum class Phase { open, joining, finished };

  static void describe_named(const void* object, const detail::registration& self,
                             inspection& into) {
    const auto& group = *static_cast<const TaskGroup*>(object);
    // A named group registers itself with a task_group_registration, and only it calls this.
    // NOLINTNEXTLINE(*-static-cast-downcast)
    const auto& records = static_cast<const detail::task_group_registration&>(self).records;
    task_group_report r;
    r.name = self.name();
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(group.mutex_);
    for (const auto& record : records) r.tasks.push_back(record->report(now));
    into.task_groups.push_back(std::move(r));
  }

  void record_failure(std::string name, std::exception_ptr error) noexcept {
    {
      std::lock_guard lock(mutex_);
      if (!error_) {
        error_ = std::move(error);
        failed_task_ = std::move(name);  // move: no allocation, so noexcept holds
      }
    }
    stop_source_.request_stop();
  }

  // Joins in batches: tasks may append new threads while earlier ones are being joined, and the
  // group is finished only once a batch comes back empty — at that point no task is running,
  // so nothing can spawn any more.
  void join_all() {
    std::lock_guard serialise(join_mutex_);
    for (;;) {
      std::vector<std::jthread> batch;
      {
        std::lock_guard lock(mutex_);
        if (threads_.empty()) {
          phase_ = Phase::finished;
          return;
        }
        phase_ = Phase::joining;
        batch.swap(threads_);
      }
      for (std::jthread& t : batch) t.join();
    }
  }

  std::stop_source stop_source_;
  std::mutex join_mutex_;     // serialises wait() callers and the destructor
  mutable std::mutex mutex_;  // guards everything below
  Phase phase_ = Phase::open;
  std::vector<std::jthread> threads_;  // spawned and not yet taken by join_all()
  std::exception_ptr error_;
  std::optional<std::string> failed_task_;
  // Null unless named; a named group's task records live in it, guarded by mutex_.
  // Unregistered by the destructor once every task has ended.
  detail::basic_name_tag<detail::task_group_registration> name_;
};

}  // namespace custody
