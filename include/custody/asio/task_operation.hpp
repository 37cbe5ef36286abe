#pragma once
// An asynchronous custody operation (a select, the store's set and publish) awaited inside a
// custody::asio::Task with the token use_task: the same select engine and the same Body as the
// allocated operation (operation.hpp), but its state sits in the awaiting coroutine's frame and
// it waits on the task's own word, so nothing is allocated and nothing is posted when the peer
// is a task on the same io_context thread (task_root.hpp). Results, statuses and exceptions are
// those of the allocated operation: what would reach its handler as the std::exception_ptr is
// thrown from the co_await.
//
// Suspending in a step of a named custody::asio::TaskGroup's task marks the task blocked in the
// operation until it completes, as the allocated operation does.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include "../detail/select_engine.hpp"
#include "../detail/timer_service.hpp"
#include "operation.hpp"
#include "task.hpp"
#include "task_identity.hpp"

namespace custody::detail {

/// One run of the select engine over a Body's cases (operation.hpp's Body interface), kept in a
/// task's frame and waiting on the task's word.
template <class Body>
class task_engine_run {
  static constexpr std::size_t n = Body::cases == 0 ? 1 : Body::cases;

 public:
  task_engine_run() = default;
  task_engine_run(const task_engine_run&) = delete;
  task_engine_run& operator=(const task_engine_run&) = delete;
  ~task_engine_run() {
    // Destroyed while waiting: the task is being ended unrun (its context shut down).
    if (run_) run_->abandon();
    cancel_timer();
  }

  /// The first round over `body`'s cases (which must stay in place until the run ends): the
  /// outcome, or nothing when it waits (the word may then be settled, and the task run, at
  /// once). The caller has set the task's step. Throws what a case's move throws, or
  /// std::logic_error when no case could ever commit.
  std::optional<outcome> start(task_root& root, Body& body) {
    body.make_ops(ops_);
    limits_ = body.limits();
    limits_.may_spin = false;
    if (body.stop_first() && limits_.stop && limits_.stop->stop_requested()) {
      return outcome{outcome::none, status::stopped};
    }
    resumable_parker& word = root.word();
    // The word is the task's own, and no peer can reach it between operations.
    word.reset();
    // Marked before the first round: once it waits, the task may run on at once elsewhere.
    task_ = current_coroutine_task;
    if (task_) mark_blocked<Body>(*task_, ops_);
    std::optional<outcome> first;
    try {
      run_.emplace(word, ops_, Body::cases, limits_, order_, waiters_);
      if (limits_.deadline && steady_clock::now() < *limits_.deadline) {
        timer_ = timer_service::instance().schedule(
            *limits_.deadline, [&word] { word.try_settle(parker::make(settled::timed_out, 0)); });
      }
      first = run_->start();
    } catch (...) {
      end();
      throw;
    }
    if (first) end();
    return first;
  }

  /// After the word was settled, on the task's executor: the outcome, or nothing when it was
  /// told to try again and waits once more.
  std::optional<outcome> resume() {
    std::optional<outcome> done;
    try {
      done = run_->resume();
    } catch (...) {
      end();
      throw;
    }
    if (done) end();
    return done;
  }

 private:
  void end() noexcept {
    run_.reset();
    if (task_) task_->running();
    // Before the word serves the task's next operation.
    cancel_timer();
  }

  void cancel_timer() noexcept {
    if (timer_ != timer_service::no_id) {
      timer_service::instance().cancel(timer_);
      timer_ = timer_service::no_id;
    }
  }

  waiter waiters_[n];
  std::uint32_t order_[n + 1];
  op ops_[n];
  select_limits limits_;
  std::optional<select_run> run_;
  timer_service::id timer_ = timer_service::no_id;
  task_record* task_ = nullptr;  // the named group's task it marked blocked, if any
};

/// `co_await op(..., use_task)` for an operation with one Body: its result_type, or what its
/// allocated form would hand its handler as the exception, thrown. Made with a result known at
/// once, it completes without suspending.
template <class Body>
class task_body_awaiter {
 public:
  using result_type = typename Body::result_type;

  explicit task_body_awaiter(Body body) : body_(std::move(body)) {}
  explicit task_body_awaiter(result_type at_once) : result_(std::move(at_once)) {}
  task_body_awaiter(const task_body_awaiter&) = delete;
  task_body_awaiter& operator=(const task_body_awaiter&) = delete;

  bool await_ready() const noexcept { return result_.has_value(); }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    root_ = h.promise().root;
    // Set before the word can be reached: whoever settles it next runs the task on through
    // advance().
    root_->set_step(&task_body_awaiter::advance, this);
    std::optional<outcome> first;
    try {
      first = run_.start(*root_, *body_);
    } catch (...) {
      root_->set_step(nullptr, nullptr);
      throw;
    }
    if (!first) return true;
    root_->set_step(nullptr, nullptr);
    finish(*first);
    return false;
  }

  result_type await_resume() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*result_);
  }

 private:
  // On the task's executor, after the word was settled: true when the operation completed.
  static bool advance(void* self_ptr) noexcept {
    auto* self = static_cast<task_body_awaiter*>(self_ptr);
    // Set again before the engine can wait once more: a loop takes the step off the task
    // before calling it.
    self->root_->set_step(&task_body_awaiter::advance, self);
    std::optional<outcome> done;
    try {
      done = self->run_.resume();
      if (!done) return false;
    } catch (...) {
      self->error_ = std::current_exception();
      self->root_->set_step(nullptr, nullptr);
      return true;
    }
    self->root_->set_step(nullptr, nullptr);
    self->finish(*done);
    return true;
  }

  void finish(const outcome& o) noexcept {
    try {
      result_.emplace(body_->result(o));
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  std::optional<Body> body_;
  task_engine_run<Body> run_;
  task_root* root_ = nullptr;
  std::optional<result_type> result_;
  std::exception_ptr error_;
};

}  // namespace custody::detail
