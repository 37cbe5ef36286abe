#pragma once
// custody::asio::TaskGroup: named coroutines on Asio executors, sharing one std::stop_source.
// The first task to throw stops the others, and wait() (or async_wait()) rethrows its exception.
// The coroutine counterpart of custody::TaskGroup (<custody/task_group.hpp>), which runs each
// task on a thread of its own; here a task is an asio::awaitable<void> and costs a coroutine
// frame, not a thread.
//
//   asio::io_context io;
//   custody::asio::TaskGroup group;
//   group.spawn(io, "reader", [&](std::stop_token st) -> asio::awaitable<void> { ... });
//   group.spawn(io, "writer", [&]() -> asio::awaitable<void> { ... });
//   std::jthread runner([&] { io.run(); });
//   group.wait();  // from a thread that does not run `io`; or co_await group.async_wait(...)
//
// Stopping. request_stop() (or a failing task, or custody::SignalStop on stop_source()) does two
// things: every task's std::stop_token reports stop, and every task's pending Asio operation is
// cancelled (a terminal cancellation through the cancellation slot the task was spawned with), so
// a task suspended on a timer or socket that would never complete wakes with
// asio::error::operation_aborted. That error, thrown out of a task after the group was stopped,
// is the task obeying the stop and is not recorded as a failure.
//
// Strands. Each task runs on its own strand of the executor it was spawned on, so the group can
// deliver that cancellation from any thread (a cancellation slot must not be used concurrently
// with the operation it cancels). Tasks spawned on a multi-threaded pool therefore still run one
// step at a time each, while different tasks run in parallel.
//
// Lifecycle. A group is single-use:
//   open     — from construction until wait(), async_wait() or the destructor starts; anyone
//              may spawn().
//   joining  — a wait has started and tasks are still running; spawn() still works (a task may
//              start helpers, and whoever spawns is counted before the group can finish).
//   finished — a wait has started and no task is left; spawn() always throws.
//
// Inspection. A group given a name (TaskGroup group("car")) appears in custody::inspect() with
// each task's state, as a custody::TaskGroup does: running, blocked (in which custody operation,
// for how long) or finished. A coroutine counts as blocked while it is suspended in a custody
// operation it started (a channel send or receive, a select, a store's set, a subscription's
// receive), with asio::use_awaitable or, in a custody::asio::Task it awaits, with use_task; it is
// running again once that operation completes. Suspended in any other awaitable (an Asio timer or
// socket) it shows as running: only custody's operations say what they wait on. Each task of a
// named group runs on its strand wrapped in a task_executor (asio/task_identity.hpp), which names
// the task to the operations each of its steps starts; a group without a name runs its tasks on
// the plain strand and pays nothing for it. The group leaves the inspection when it is destroyed,
// or, if its destructor could not wait (see ~TaskGroup), once its last task has ended.
//
// Tasks dropped by their executor. An io_context destroyed while tasks are suspended on it
// destroys their frames without finishing them. The group counts such a task as ended and
// records a custody::asio::task_abandoned failure for it (unless a failure came first), so no
// wait hangs on a task that can no longer run.

#include <algorithm>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/system_error.hpp>
#include <asio/system_executor.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <custody/detail/mutex.hpp>
#include <custody/detail/registry.hpp>
#include <custody/detail/task_record.hpp>
#include <custody/detail/thread_annotations.hpp>

#include "task_identity.hpp"

namespace custody::asio {

/// Recorded as a task's failure when its executor destroyed the task before it finished (for
/// example an io_context destroyed while the task was suspended on it).
class task_abandoned : public std::runtime_error {
 public:
  /// `task`: the name the task was spawned with, which the message names.
  explicit task_abandoned(const std::string& task)
      : std::runtime_error("custody::asio::TaskGroup: task '" + task +
                           "' was destroyed by its executor before it finished") {}
};

namespace detail {

template <class T>
struct is_void_awaitable : std::false_type {};
template <class Executor>
struct is_void_awaitable<::asio::awaitable<void, Executor>> : std::true_type {};

template <class F, class... Args>
concept returns_void_awaitable =
    std::invocable<F&, Args...> && is_void_awaitable<std::invoke_result_t<F&, Args...>>::value;

// A callable spawn() stores (decay-copied) and calls with the group's token, or with nothing.
template <class F, class Fn = std::decay_t<F>>
concept coroutine_function = std::move_constructible<Fn> && std::constructible_from<Fn, F> &&
    (returns_void_awaitable<Fn, std::stop_token> || returns_void_awaitable<Fn>);

/// What TaskGroup::spawn() accepts: an asio::awaitable<void> (an rvalue: it is move-only), or a
/// callable returning one, invoked with the group's std::stop_token if it takes one, else with
/// no argument.
template <class F>
concept coroutine_task = (is_void_awaitable<std::remove_cvref_t<F>>::value &&
                          !std::is_lvalue_reference_v<F>) ||
                         coroutine_function<F>;

// Waits for the group to finish: a suspended async_wait(), completed by whoever ends the group
// or by its own cancellation slot, whichever takes it out of the group's list first.
struct group_waiter {
  explicit group_waiter(std::uint64_t waiter_id) : id(waiter_id) {}
  virtual ~group_waiter() = default;
  virtual void complete(std::exception_ptr result) = 0;

  // Names the waiter to its cancellation handler; never reused, unlike an address.
  const std::uint64_t id;
};

// Holds an async_wait() handler and keeps its executor from running out of work meanwhile.
template <class Handler, class WorkExecutor>
class group_waiter_for final : public group_waiter {
 public:
  group_waiter_for(std::uint64_t waiter_id, Handler handler, WorkExecutor work)
      : group_waiter(waiter_id),
        slot_(::asio::get_associated_cancellation_slot(handler)),
        handler_(std::move(handler)),
        work_(std::move(work)) {}

  // Posted, never run inline: the caller may be any task's strand, the waiter's initiator, or
  // the slot's own cancellation handler, which must not be destroyed while it runs. The slot is
  // cleared on the handler's executor, where cancellations are emitted, before the handler runs
  // (and may reuse the slot).
  void complete(std::exception_ptr result) override {
    ::asio::post(work_, [handler = std::move(handler_), slot = slot_, result]() mutable {
      slot.clear();
      std::move(handler)(result);
    });
  }

 private:
  ::asio::cancellation_slot slot_;
  Handler handler_;
  WorkExecutor work_;
};

// One running task. Type-erased over its strand, which only the derived class knows.
struct task_record {
  explicit task_record(std::string task_name) : name(std::move(task_name)) {}
  virtual ~task_record() = default;
  // Emits a terminal cancellation into the task's slot, on the task's strand.
  virtual void post_cancel(std::shared_ptr<task_record> self) = 0;
  // True if the calling thread runs the task's executor (waiting there would deadlock).
  [[nodiscard]] virtual bool runs_on_this_thread() const = 0;

  const std::string name;
  // Touched on the task's strand only (the slot is bound to the task's co_spawn).
  ::asio::cancellation_signal cancel;
  std::list<std::shared_ptr<task_record>>::iterator position;  // in group_state::live
  bool started = false;  // co_spawn returned: the stop callback may post cancellations
  // What inspection shows of the task: null in an unnamed group. Owned by the group's
  // registration, which outlives every task (each holds the group's state).
  custody::detail::task_record* inspected = nullptr;
};

template <class Strand>
class task_record_on final : public task_record {
 public:
  task_record_on(std::string task_name, Strand strand)
      : task_record(std::move(task_name)), strand_(std::move(strand)) {}

  void post_cancel(std::shared_ptr<task_record> self) override {
    ::asio::post(strand_, [self = std::move(self)] {
      self->cancel.emit(::asio::cancellation_type::terminal);
    });
  }

  [[nodiscard]] bool runs_on_this_thread() const override {
    // The thread that runs the underlying context, not just this strand: any handler of that
    // context blocking in wait() holds a thread the tasks need.
    return runs_context_of(strand_.get_inner_executor()) || strand_.running_in_this_thread();
  }

 private:
  using io_executor = ::asio::io_context::executor_type;
  using pool_executor = ::asio::thread_pool::executor_type;

  template <class Executor>
  static bool runs_context_of(const Executor& executor) {
    if constexpr (std::is_same_v<Executor, io_executor> ||
                  std::is_same_v<Executor, pool_executor>) {
      return executor.running_in_this_thread();  // true on every thread running the context
    } else if constexpr (requires { executor.template target<io_executor>(); }) {
      // Type-erased (asio::any_io_executor): look for the two contexts it may hold. target<T>()
      // casts without checking, so the held type is compared first.
#if !defined(ASIO_NO_TYPEID)
      if (executor.target_type() == typeid(io_executor)) {
        return executor.template target<io_executor>()->running_in_this_thread();
      }
      if (executor.target_type() == typeid(pool_executor)) {
        return executor.template target<pool_executor>()->running_in_this_thread();
      }
#endif
      return false;
    } else if constexpr (requires { executor.get_inner_executor(); }) {
      return runs_context_of(executor.get_inner_executor());  // a strand given to spawn()
    } else {
      return false;
    }
  }

  Strand strand_;
};

// The group's state, shared with its tasks' completion handlers so that a task ending after the
// TaskGroup object is gone (see ~TaskGroup) still finds it.
class group_state {
 public:
  enum class phase { open, joining, finished };

  /// An empty `name` leaves the group out of custody::inspect(). Throws std::bad_alloc.
  explicit group_state(std::string name) : stop_callback_(source_.get_token(), cancel_all{this}) {
    name_.give(std::move(name), this, &describe);
  }
  group_state(const group_state&) = delete;
  group_state& operator=(const group_state&) = delete;
  // First thing: a running snapshot, which reads the records, is waited for.
  ~group_state() { name_.leave(); }

  std::stop_source& source() noexcept { return source_; }

  // Registers a task about to be spawned, and in a named group gives it a record in the
  // inspection (record->inspected); throws if the group is finished, or std::bad_alloc.
  void add(const std::shared_ptr<task_record>& record) CUSTODY_EXCLUDES(mutex_) {
    std::unique_ptr<custody::detail::task_record> inspected;
    if (name_) inspected = std::make_unique<custody::detail::task_record>(record->name);
    std::lock_guard lock(mutex_);
    if (phase_ == phase::finished) {
      throw std::logic_error("custody::asio::TaskGroup::spawn: cannot spawn task '" + record->name +
                             "': the group has finished waiting");
    }
    if (inspected) {
      auto& records = name_.get()->records;
      records.reserve(records.size() + 1);  // so that nothing below throws
      record->inspected = inspected.get();
      records.push_back(std::move(inspected));
    }
    record->position = live_.insert(live_.end(), record);
  }

  // co_spawn() threw: the task never existed, nor does its record.
  void remove_unstarted(const std::shared_ptr<task_record>& record) CUSTODY_EXCLUDES(mutex_) {
    std::lock_guard lock(mutex_);
    live_.erase(record->position);
    if (record->inspected) {
      auto& records = name_.get()->records;
      records.erase(std::find_if(records.begin(), records.end(),
                                 [&](const auto& r) { return r.get() == record->inspected; }));
      record->inspected = nullptr;
    }
  }

  // co_spawn() returned. A stop requested before the stop callback could see this task is
  // delivered now; a second cancellation of the same task does nothing.
  void mark_started(const std::shared_ptr<task_record>& record) CUSTODY_EXCLUDES(mutex_) {
    {
      std::lock_guard lock(mutex_);
      record->started = true;
    }
    if (source_.stop_requested()) record->post_cancel(record);
  }

  // A task ended: returned, threw (`error`), or was destroyed unfinished (`abandoned`).
  void task_ended(task_record& record, std::exception_ptr error, bool abandoned)
      CUSTODY_EXCLUDES(mutex_) {
    if (error && !abandoned && obeyed_stop(error)) error = nullptr;
    bool first_failure = false;
    std::vector<std::unique_ptr<group_waiter>> to_complete;
    std::exception_ptr result;
    bool finished = false;
    if (record.inspected) record.inspected->finished();
    {
      std::lock_guard lock(mutex_);
      live_.erase(record.position);
      if (error && !error_) {
        error_ = error;
        failed_task_ = record.name;
        first_failure = true;
      }
      if (live_.empty() && phase_ == phase::joining) {
        phase_ = phase::finished;
        to_complete.swap(waiters_);
        result = error_;
        finished = true;
      }
    }
    // An abandoned task's executor is being torn down: cancellations posted to its other tasks
    // now could reach a context that is going away, so only a real failure stops the group.
    if (first_failure && !abandoned) source_.request_stop();
    if (finished) {
      finished_.notify_all();
      for (auto& w : to_complete) w->complete(result);
    }
  }

  // Blocks until finished; returns the first failure. Throws std::logic_error instead when the
  // calling thread runs a live task's executor.
  std::exception_ptr wait() CUSTODY_EXCLUDES(mutex_) {
    std::unique_lock lock(mutex_);
    for (const auto& record : live_) {
      if (record->runs_on_this_thread()) {
        throw std::logic_error(
            "custody::asio::TaskGroup::wait: called from a thread that runs task '" + record->name +
            "' (it would wait for itself); use async_wait()");
      }
    }
    start_joining();
    while (phase_ != phase::finished) finished_.wait(lock);
    return error_;
  }

  // A fresh id for the next waiter.
  std::uint64_t next_waiter_id() noexcept { return next_waiter_id_.fetch_add(1) + 1; }

  // Completes `waiter` once the group is finished (at once, posted, if it already is).
  void add_waiter(std::unique_ptr<group_waiter> waiter) CUSTODY_EXCLUDES(mutex_) {
    std::exception_ptr result;
    {
      std::lock_guard lock(mutex_);
      start_joining();
      if (phase_ != phase::finished) {
        waiters_.push_back(std::move(waiter));
        return;
      }
      result = error_;
    }
    waiter->complete(result);
  }

  // The waiter's cancellation slot fired: completes it with operation_aborted, unless the group
  // already took it to complete it.
  void cancel_waiter(std::uint64_t id) CUSTODY_EXCLUDES(mutex_) {
    std::unique_ptr<group_waiter> cancelled;
    {
      std::lock_guard lock(mutex_);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if ((*it)->id == id) {
          cancelled = std::move(*it);
          waiters_.erase(it);
          break;
        }
      }
    }
    if (cancelled) {
      cancelled->complete(std::make_exception_ptr(
          std::system_error(std::error_code(::asio::error::operation_aborted))));
    }
  }

  std::optional<std::string> failed_task() const CUSTODY_EXCLUDES(mutex_) {
    std::lock_guard lock(mutex_);
    return failed_task_;
  }

 private:
  // The registry's view of a named group: each task's record, in spawn order.
  static void describe(const void* object, const custody::detail::registration& self,
                       inspection& into) {
    const auto& state = *static_cast<const group_state*>(object);
    // A named group registers itself with a task_group_registration, and only it calls this.
    // NOLINTNEXTLINE(*-static-cast-downcast)
    const auto& named = static_cast<const custody::detail::task_group_registration&>(self);
    task_group_report r;
    r.name = self.name();
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(state.mutex_);
      r.tasks.reserve(named.records.size());
      for (const auto& record : named.records) r.tasks.push_back(record->report(now));
    }
    into.task_groups.push_back(std::move(r));
  }

  // Stop callback: cancels every started task's pending operation, on its strand.
  struct cancel_all {
    group_state* state;
    void operator()() const noexcept { state->cancel_started(); }
  };

  void cancel_started() noexcept CUSTODY_EXCLUDES(mutex_) {
    std::vector<std::shared_ptr<task_record>> started;
    try {
      {
        std::lock_guard lock(mutex_);
        started.reserve(live_.size());
        for (const auto& record : live_) {
          if (record->started) started.push_back(record);
        }
      }
      for (auto& record : started) record->post_cancel(record);
    } catch (...) {
      // Out of memory while posting: the tasks still see their stop tokens, and a task that
      // ignores its token was never promised more than the token.
    }
  }

  // Called only with mutex_ held.
  void start_joining() CUSTODY_REQUIRES(mutex_) {
    if (phase_ == phase::open) phase_ = phase::joining;
    if (phase_ == phase::joining && live_.empty()) phase_ = phase::finished;
  }

  // Whether `error` is asio::error::operation_aborted thrown after the group's stop: the task
  // obeying the cancellation the stop delivered, not a failure.
  bool obeyed_stop(const std::exception_ptr& error) const noexcept {
    if (!source_.stop_requested()) return false;
    try {
      std::rethrow_exception(error);
    } catch (const std::system_error& e) {
      return e.code() == std::error_code(::asio::error::operation_aborted);
    } catch (...) {
      return false;
    }
  }

  std::stop_source source_;
  mutable custody::detail::mutex mutex_;
  std::condition_variable_any finished_;
  phase phase_ CUSTODY_GUARDED_BY(mutex_) = phase::open;
  std::list<std::shared_ptr<task_record>> live_ CUSTODY_GUARDED_BY(mutex_);
  std::vector<std::unique_ptr<group_waiter>> waiters_ CUSTODY_GUARDED_BY(mutex_);
  std::atomic<std::uint64_t> next_waiter_id_{0};
  std::exception_ptr error_ CUSTODY_GUARDED_BY(mutex_);
  std::optional<std::string> failed_task_ CUSTODY_GUARDED_BY(mutex_);
  // Null unless named; then its records (one per task spawned) are guarded by mutex_.
  custody::detail::basic_name_tag<custody::detail::task_group_registration> name_;
  // Last member: destroyed first, so it never runs on a half-destroyed state.
  std::stop_callback<cancel_all> stop_callback_;
};

// Installed in an async_wait()'s cancellation slot. Every cancellation type applies: giving up
// a wait has no side effect to undo.
struct cancel_group_wait {
  std::weak_ptr<group_state> state;
  std::uint64_t id;

  void operator()(::asio::cancellation_type type) const {
    constexpr auto handled = ::asio::cancellation_type::terminal |
                             ::asio::cancellation_type::partial | ::asio::cancellation_type::total;
    if ((type & handled) == ::asio::cancellation_type::none) return;
    if (auto live = state.lock()) live->cancel_waiter(id);
  }
};

// co_spawn's completion handler. Destroyed without having been called, it reports the task as
// abandoned: its executor dropped the coroutine frame that held it.
class task_end {
 public:
  task_end(std::shared_ptr<group_state> state, std::shared_ptr<task_record> record)
      : state_(std::move(state)), record_(std::move(record)) {}
  task_end(task_end&& other) noexcept = default;
  task_end& operator=(task_end&&) = delete;
  task_end(const task_end&) = delete;

  ~task_end() {
    if (state_) {
      state_->task_ended(*record_, std::make_exception_ptr(task_abandoned(record_->name)), true);
    }
  }

  // Runs on the task's strand, where its cancellation slot may be touched.
  void operator()(std::exception_ptr error) {
    record_->cancel.slot().clear();  // a cancellation posted late now does nothing
    std::exchange(state_, nullptr)->task_ended(*record_, std::move(error), false);
  }

 private:
  std::shared_ptr<group_state> state_;  // null once called or moved from
  std::shared_ptr<task_record> record_;
};

}  // namespace detail

/// Named coroutines on Asio executors sharing one std::stop_source; the first task to throw stops
/// the others and wait() / async_wait() rethrow its exception. Single-use: see the lifecycle at
/// the top of this header.
class TaskGroup {
 public:
  TaskGroup() : TaskGroup(std::string()) {}
  /// A group named for custody::inspect(), which then lists its tasks and their states (see the
  /// top of this header). An empty name makes an unnamed group, as TaskGroup(). Throws
  /// std::bad_alloc.
  explicit TaskGroup(std::string name)
      : state_(std::make_shared<detail::group_state>(std::move(name))) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  TaskGroup(TaskGroup&&) = delete;
  TaskGroup& operator=(TaskGroup&&) = delete;

  /// Requests stop (which cancels every task's pending operation), then blocks until every task
  /// has ended. Never throws: an exception that no wait reported is dropped.
  ///
  /// On a thread that runs one of the live tasks' executors it cannot wait (those tasks need the
  /// thread), so there it only requests stop and returns; the tasks then end on their own when
  /// their executor next runs, keeping the group's shared state alive until they do, and must
  /// not use anything that died with the caller. Must not run concurrently with another member
  /// call.
  ~TaskGroup() {
    request_stop();
    try {
      (void)state_->wait();
    } catch (const std::logic_error&) {
      // This thread runs a live task's executor: it cannot wait (see above).
    }
  }

  /// Starts `task` on its own strand of `executor` (in a named group, that strand wrapped in a
  /// custody::detail::task_executor, which asio::this_coro::executor then yields: see the top of
  /// this header). `task` is an asio::awaitable<void>, or a
  /// callable returning one, invoked on that strand as `task(stop_token())` if that is
  /// well-formed, otherwise as `task()`; the callable (decay-copied on the calling thread) lives
  /// until the coroutine ends, so a lambda coroutine's captures stay valid.
  ///
  /// If stop has already been requested the task still starts, with a stopped token, and its
  /// first pending operation is cancelled.
  ///
  /// An exception escaping the task is captured, recorded if it is the group's first failure,
  /// and requests stop of every task; asio::error::operation_aborted thrown after the group's
  /// stop is not a failure.
  ///
  /// Does not wait for the task and never runs it inline: it starts when its executor runs.
  /// Thread-safe: may be called from any thread, including from inside the group's tasks.
  /// Throws std::logic_error if the group is finished (a wait started and no task was left);
  /// whatever co_spawn throws (std::bad_alloc) leaves the group unchanged.
  template <class Executor, class F>
  requires(::asio::execution::is_executor<Executor>::value ||
           ::asio::is_executor<Executor>::value) &&
      detail::coroutine_task<F> void spawn(const Executor& executor, std::string name, F&& task) {
    auto strand = ::asio::make_strand(executor);
    auto record =
        std::make_shared<detail::task_record_on<decltype(strand)>>(std::move(name), strand);
    state_->add(record);
    try {
      auto done =
          ::asio::bind_cancellation_slot(record->cancel.slot(), detail::task_end(state_, record));
      if (record->inspected) {
        start(custody::detail::task_executor(strand, record->inspected), std::forward<F>(task),
              std::move(done));
      } else {
        start(strand, std::forward<F>(task), std::move(done));
      }
    } catch (...) {
      state_->remove_unstarted(record);
      throw;
    }
    state_->mark_started(record);
  }

  /// As above, on `context.get_executor()` (e.g. an asio::io_context or asio::thread_pool).
  template <class Context, class F>
  requires std::derived_from<Context, ::asio::execution_context> && detail::coroutine_task<F>
  void spawn(Context& context, std::string name, F&& task) {
    spawn(context.get_executor(), std::move(name), std::forward<F>(task));
  }

  /// Requests stop of every task, present and future: their tokens report stop and their
  /// pending Asio operations are cancelled (posted to each task's strand). Thread-safe,
  /// non-blocking (apart from stop callbacks registered on the token, run on the calling
  /// thread), idempotent.
  void request_stop() noexcept { state_->source().request_stop(); }

  /// The token every task receives.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return state_->source().get_token(); }

  /// The shared stop source, e.g. for custody::SignalStop (SIGINT/SIGTERM then stop the group)
  /// or to create stop callbacks. Calling its member functions is thread-safe; assigning a
  /// different source to it is not allowed.
  [[nodiscard]] std::stop_source& stop_source() noexcept { return state_->source(); }

  /// Blocks until every task has ended, including tasks spawned meanwhile. Does not request
  /// stop: it returns when the tasks end on their own, or stop because one failed, someone
  /// called request_stop() or a signal arrived through SignalStop. A task ends when its
  /// coroutine returns or throws, or when its executor destroys it (task_abandoned); while its
  /// executor is stopped and not destroyed, the task and so wait() stay pending.
  ///
  /// Afterwards the group is finished. If any task failed, rethrows the first failure (in time)
  /// as the original exception object; failed_task() names the task. A later wait() returns at
  /// once and rethrows the same exception.
  ///
  /// Must be called from a thread that does not run the executor of any live task: there the
  /// tasks could never run, so it would wait forever. Detected (for executors of an
  /// asio::io_context or asio::thread_pool, strands of them, and either held in an
  /// asio::any_io_executor): throws std::logic_error
  /// instead. Inside a coroutine use async_wait(). Thread-safe; concurrent waits all return once
  /// the group is finished.
  void wait() {
    if (std::exception_ptr error = state_->wait()) std::rethrow_exception(error);
  }

  /// Asynchronous wait(): completes with signature void(std::exception_ptr) once every task has
  /// ended, the pointer holding the first failure or null. So
  /// `co_await group.async_wait(asio::use_awaitable)` returns, or throws the first failure;
  /// asio::use_future, asio::deferred and plain callbacks work too.
  ///
  /// The handler is invoked as if by asio::post to its associated executor (asio's
  /// system_executor if it has none), never inside async_wait(), and that executor is kept from
  /// running out of work until then.
  ///
  /// Per-operation cancellation: a cancellation (terminal, partial or total) emitted on the
  /// handler's associated slot before the group finishes completes the wait at once with
  /// std::system_error(asio::error::operation_aborted) and changes nothing in the group; one
  /// emitted after the group finished is too late and does nothing. So
  /// `co_await (group.async_wait(asio::use_awaitable) || timer.async_wait(asio::use_awaitable))`
  /// waits with a deadline. As with every Asio operation, emit on the handler's executor.
  ///
  /// Thread-safe; may start while other waits are in progress. Throws only what allocating the
  /// waiter throws.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) {
    return ::asio::async_initiate<CompletionToken, void(std::exception_ptr)>(
        [state = state_](auto handler) {
          auto work =
              ::asio::prefer(::asio::get_associated_executor(handler, ::asio::system_executor()),
                             ::asio::execution::outstanding_work_t::tracked);
          const std::uint64_t id = state->next_waiter_id();
          // Installed before the waiter is listed, so no completion can clear the slot first.
          if (auto slot = ::asio::get_associated_cancellation_slot(handler); slot.is_connected()) {
            slot.template emplace<detail::cancel_group_wait>(
                detail::cancel_group_wait{std::weak_ptr<detail::group_state>(state), id});
          }
          using Waiter = detail::group_waiter_for<decltype(handler), decltype(work)>;
          state->add_waiter(std::make_unique<Waiter>(id, std::move(handler), std::move(work)));
        },
        token);
  }

  /// The name of the first task that failed, or nullopt if none has (yet). Available as soon as
  /// the failure is recorded, before any wait returns. Thread-safe, non-blocking.
  [[nodiscard]] std::optional<std::string> failed_task() const { return state_->failed_task(); }

 private:
  // co_spawn on `executor`, with the group's token for a callable that takes one.
  template <class SpawnExecutor, class F, class Done>
  void start(const SpawnExecutor& executor, F&& task, Done&& done) {
    if constexpr (detail::is_void_awaitable<std::remove_cvref_t<F>>::value) {
      ::asio::co_spawn(executor, std::forward<F>(task), std::forward<Done>(done));
    } else {
      using Fn = std::decay_t<F>;
      ::asio::co_spawn(
          executor,
          [fn = Fn(std::forward<F>(task)), token = state_->source().get_token()]() mutable {
            if constexpr (detail::returns_void_awaitable<Fn, std::stop_token>) {
              return std::invoke(fn, token);
            } else {
              return std::invoke(fn);
            }
          },
          std::forward<Done>(done));
    }
  }

  std::shared_ptr<detail::group_state> state_;
};

}  // namespace custody::asio
