#pragma once
// Which task of a named custody::asio::TaskGroup a coroutine step belongs to, for
// custody::inspect().
//
// A coroutine has no thread of its own, so a thread_local set once per task (as a TaskGroup
// thread does) cannot name it across suspensions. Instead every step of the task runs through
// its executor: a named group spawns the task on task_executor, its strand wrapped so that each
// handler it runs (each resumption of the coroutine, whatever completed it) runs with
// detail::current_task naming the task, and restores what was there after. The custody
// operations a step starts read it there: the channel's list of blocked cases names the task
// (block_note.hpp), and the operation marks the task blocked until it completes.
//
// An unnamed group's tasks run on the plain strand: nothing is wrapped and nothing is set.

#include <asio/execution/execute.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <type_traits>
#include <utility>

#include "../detail/task_record.hpp"

namespace custody::detail {

/// The record of the coroutine task whose step this thread runs; null outside such a step. Only
/// a coroutine's own operations mark it blocked: a thread's asynchronous operation, started
/// with a callback, does not block the thread.
inline thread_local task_record* current_coroutine_task = nullptr;

/// Names `record`'s task as the current one for one handler, and restores the previous names
/// after: a handler may run inline inside another (asio::dispatch), or on a thread that runs a
/// TaskGroup task of its own.
class task_identity_scope {
 public:
  explicit task_identity_scope(task_record* record) noexcept
      : outer_(std::exchange(current_task,
                             task_identity{&record->name(), record, record->name_number})),
        outer_coroutine_(std::exchange(current_coroutine_task, record)) {}
  ~task_identity_scope() {
    current_task = outer_;
    current_coroutine_task = outer_coroutine_;
  }
  task_identity_scope(const task_identity_scope&) = delete;
  task_identity_scope& operator=(const task_identity_scope&) = delete;

 private:
  task_identity outer_;
  task_record* outer_coroutine_;
};

/// `T` itself for a reference, else `T` without const or volatile.
template <class T>
using plain_t = std::conditional_t<std::is_reference_v<T>, T, std::remove_cv_t<T>>;

/// `Inner` (a task's strand) with every function it executes run inside a task_identity_scope.
/// Queries, requirements and preferences go to `Inner`; a requirement or preference yields the
/// same wrapper around its result, so the identity survives what Asio does to the executor.
template <class Inner>
class task_executor {
 public:
  task_executor(Inner inner, task_record* record) noexcept
      : inner_(std::move(inner)), record_(record) {}

  /// What `Inner` answers; a value comes back as a plain (non-const) value.
  template <class Property>
  requires ::asio::can_query<const Inner&, Property>::value auto query(const Property& p) const
      noexcept(::asio::is_nothrow_query<const Inner&, Property>::value)
          -> plain_t<decltype(::asio::query(std::declval<const Inner&>(), p))> {
    return ::asio::query(inner_, p);
  }

  template <class Property>
  requires ::asio::can_require<const Inner&, Property>::value auto require(
      const Property& p) const {
    using result = std::decay_t<decltype(::asio::require(inner_, p))>;
    return task_executor<result>(::asio::require(inner_, p), record_);
  }

  template <class Property>
  requires ::asio::can_prefer<const Inner&, Property>::value auto prefer(const Property& p) const {
    using result = std::decay_t<decltype(::asio::prefer(inner_, p))>;
    return task_executor<result>(::asio::prefer(inner_, p), record_);
  }

  template <class Function>
  void execute(Function&& f) const {
    ::asio::execution::execute(
        inner_,
        [record = record_, f = std::decay_t<Function>(std::forward<Function>(f))]() mutable {
          const task_identity_scope scope(record);
          std::move(f)();
        });
  }

  /// The wrapped executor.
  const Inner& inner() const noexcept { return inner_; }

  friend bool operator==(const task_executor& a, const task_executor& b) noexcept {
    return a.record_ == b.record_ && a.inner_ == b.inner_;
  }
  friend bool operator!=(const task_executor& a, const task_executor& b) noexcept {
    return !(a == b);
  }

 private:
  Inner inner_;
  task_record* record_;
};

}  // namespace custody::detail
