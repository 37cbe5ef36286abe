#pragma once
// A channel send or receive awaited inside a custody::asio::Task (the token use_task), with the
// operation's state in the coroutine frame and the task's own word to wait on. Nothing is
// allocated, and nothing is posted when the peer is a task on the same io_context thread
// (task_root.hpp).
//
// Two kinds, chosen by the form called:
// - task_direct_op: the plain forms (no stop token, no deadline) have one way to end, so the
//   task registers on the channel itself: a waiter in the frame, no select engine.
// - task_select_op: the stop-token and deadline forms run the blocking forms' select engine,
//   whose single compare-exchange decides between the value, the stop and the deadline.
//
// Either kind, suspending in a step of a named custody::asio::TaskGroup's task (a Task spawned
// on that task's executor, asio/task_identity.hpp), marks the task blocked in it until it
// completes; anywhere else this costs one null test per suspension.

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>

#include "../channel.hpp"
#include "../detail/channel_ops.hpp"
#include "../detail/select_engine.hpp"
#include "../detail/timer_service.hpp"
#include "task.hpp"
#include "task_identity.hpp"

namespace custody::detail {

/// One send or receive of a task, registered on the channel directly. It refers to the channel
/// through the caller's handle, as an Asio operation refers to its I/O object: in
/// `co_await async_recv(rx, use_task)` the handle outlives the operation.
template <class T>
class task_direct_op {
 public:
  explicit task_direct_op(chan_core<T>& core) : core_(&core) {}
  task_direct_op(const task_direct_op&) = delete;
  task_direct_op& operator=(const task_direct_op&) = delete;

  ~task_direct_op() {
    // Destroyed while waiting: the task is being ended unrun (its context shut down).
    if (root_ && !done_) unlink();
  }

  chan_core<T>& core() const noexcept { return *core_; }
  bool stop_requested() const noexcept { return false; }

  /// Completes at once or waits for `slot` (the value sent, or the optional received into) to
  /// be handed over; true when the task must suspend.
  template <class Promise>
  bool suspend(std::coroutine_handle<Promise> h, void* slot, bool sending) {
    task_root& root = *h.promise().root;
    // Set before the word can be reached: whoever settles it next runs the task on through
    // advance().
    root.set_step(&task_direct_op::advance, this);
    // await_ready() has just attempted: register, which completes at once if a peer arrived
    // meanwhile.
    return !begin(root, slot, sending, /*attempt=*/false);
  }

  /// As a step of another operation of the task, which has set the task's step and calls
  /// resume() from it: attempts (when `attempt`) and registers; true when completed, false
  /// when it waits (the word may be settled, and the task run, at once). Throws what moving
  /// the value throws, std::bad_alloc.
  bool begin(task_root& root, void* slot, bool sending, bool attempt) {
    root_ = &root;
    slot_ = slot;
    sending_ = sending;
    // Marked before the first round: once it waits, the task may run on at once elsewhere, and
    // nothing of this operation is touched after.
    task_record* const task = task_ = current_coroutine_task;
    if (task) {
      task->blocked(sending ? "send on" : "recv on", core_->name_registration(), 1,
                    steady_clock::now());
    }
    bool completed = false;
    try {
      completed = round(attempt);
    } catch (...) {
      if (task) task->running();
      throw;
    }
    if (completed && task) task->running();
    return completed;
  }

  /// After the word was settled, for an operation that called begin(): true when completed,
  /// false when it waits once more. Throws as begin() does.
  bool resume() {
    const bool completed = settled(root_->word().load()) || round(/*attempt=*/true);
    if (completed && task_) task_->running();
    return completed;
  }

  status result() {
    if (error_) std::rethrow_exception(error_);
    return status_;
  }

  void finish_now(status s) noexcept { status_ = s; }

 private:
  // Completes at once, or registers on the channel: true when completed (the task goes on),
  // false when it waits (the word may be settled, and the task run, at once). Attempts first
  // when `attempt`, and after every registration that found the channel ready meanwhile.
  bool round(bool attempt) {
    parker& word = root_->word();
    for (;; attempt = true) {
      if (attempt) {
        const status s = sending_ ? core_->try_send(*static_cast<T*>(slot_))
                                  : core_->try_recv(*static_cast<std::optional<T>*>(slot_));
        if (s != status::would_block) return complete(s);
      }
      // The word is the task's own, and no peer can reach it between operations.
      word.reset();
      waiter_.owner = &word;
      waiter_.index = 0;
      enqueued e;
      try {
        e = sending_ ? core_->enqueue_send(waiter_, *static_cast<T*>(slot_))
                     : core_->enqueue_recv(waiter_, *static_cast<std::optional<T>*>(slot_));
      } catch (...) {
        root_->set_step(nullptr, nullptr);
        done_ = true;
        throw;
      }
      switch (e) {
        case enqueued::committed_ok:
          return complete(status::ok);
        case enqueued::committed_closed:
          return complete(status::closed);
        case enqueued::restart:  // ready meanwhile: look again, unregistered
          unlink();
          continue;
        case enqueued::waiting:
          if (word.suspend()) return false;
          [[fallthrough]];
        case enqueued::settled_elsewhere:
          if (settled(word.load())) return true;
          continue;
      }
    }
  }

  // The word was settled: completes and returns true, or false to register again.
  bool settled(std::uint32_t state) {
    switch (parker::how(state)) {
      case settled::done:
        return complete(status::ok);
      case settled::closed:
        return complete(status::closed);
      case settled::stopped:  // the context's shutdown
        unlink();
        return complete(status::stopped);
      default:
        // Told to try again: whoever did so took the waiter off its list before settling the
        // word, which this thread has read since.
        if (waiter_.linked) unlink();
        return false;
    }
  }

  // On the task's executor, after the word was settled.
  static bool advance(void* self_ptr) noexcept {
    auto* self = static_cast<task_direct_op*>(self_ptr);
    task_record* const task = self->task_;
    // Set again before the operation can wait once more: a loop takes the step off the task
    // before calling it, and a wait without it would resume the task with nothing received.
    self->root_->set_step(&task_direct_op::advance, self);
    try {
      return self->resume();
    } catch (...) {
      self->root_->set_step(nullptr, nullptr);
      self->error_ = std::current_exception();
      if (task) task->running();
      return true;
    }
  }

  void unlink() noexcept {
    if (sending_) {
      core_->dequeue_send(waiter_);
    } else {
      core_->dequeue_recv(waiter_);
    }
  }

  bool complete(status s) noexcept {
    root_->set_step(nullptr, nullptr);
    done_ = true;
    status_ = s;
    return true;
  }

  chan_core<T>* core_;
  task_root* root_ = nullptr;
  task_record* task_ = nullptr;  // the named group's task it marked blocked, if any
  void* slot_ = nullptr;
  waiter waiter_;
  std::exception_ptr error_;
  status status_ = status::would_block;
  bool sending_ = false;
  bool done_ = false;
};

/// One send or receive of a task with a stop token or deadline, run by the select engine.
template <class T>
class task_select_op {
 public:
  task_select_op(std::shared_ptr<chan_core<T>> core, std::stop_token stop,
                 std::optional<time_point> deadline)
      : core_(std::move(core)), stop_(std::move(stop)), deadline_(deadline) {}
  task_select_op(const task_select_op&) = delete;
  task_select_op& operator=(const task_select_op&) = delete;

  ~task_select_op() {
    // Destroyed while waiting: the task is being ended unrun (its context shut down).
    if (run_ && !done_) run_->abandon();
    cancel_timer();
  }

  chan_core<T>& core() const noexcept { return *core_; }
  bool stop_requested() const noexcept { return stop_.stop_requested(); }

  /// Runs the first round with `o` as the only case; true when the task must suspend.
  template <class Promise>
  bool suspend(std::coroutine_handle<Promise> h, op o) {
    root_ = h.promise().root;
    parker& word = root_->word();
    // The word is the task's own, and no peer can reach it between operations.
    word.reset();
    op_ = o;
    limits_.stop = &stop_;
    limits_.deadline = deadline_;
    limits_.may_spin = false;
    // Set before the first round can make the word reachable: whoever settles it next runs the
    // task on through advance().
    root_->set_step(&task_select_op::advance, this);
    // As in task_direct_op::suspend(): marked before the first round.
    task_record* const task = task_ = current_coroutine_task;
    if (task) {
      task->blocked(o.sending ? "send on" : "recv on", o.name, 1, steady_clock::now());
    }
    std::optional<outcome> first;
    try {
      run_.emplace(word, &op_, 1, limits_, order_, waiters_);
      if (deadline_ && steady_clock::now() < *deadline_) {
        timer_ = timer_service::instance().schedule(
            *deadline_, [&word] { word.try_settle(parker::make(settled::timed_out, 0)); });
      }
      first = run_->start();
    } catch (...) {
      if (task) task->running();
      root_->set_step(nullptr, nullptr);
      done_ = true;
      cancel_timer();
      throw;
    }
    if (!first) return true;  // waiting: the word may be settled, and the task run, at once
    if (task) task->running();
    complete(*first);
    return false;
  }

  status result() {
    if (error_) std::rethrow_exception(error_);
    return status_;
  }

  void finish_now(status s) noexcept { status_ = s; }

 private:
  // On the task's executor, after the word was settled.
  static bool advance(void* self_ptr) noexcept {
    auto* self = static_cast<task_select_op*>(self_ptr);
    // As in task_direct_op::advance(): set again before the engine can wait once more.
    self->root_->set_step(&task_select_op::advance, self);
    std::optional<outcome> done;
    try {
      done = self->run_->resume();
      if (!done) return false;  // told to try again, and waiting once more
    } catch (...) {
      self->error_ = std::current_exception();
      done = outcome{outcome::none, status::would_block};
    }
    if (self->task_) self->task_->running();
    self->complete(*done);
    return true;
  }

  void complete(const outcome& o) noexcept {
    root_->set_step(nullptr, nullptr);
    done_ = true;
    status_ = o.status;
    // Before the word serves the task's next operation.
    cancel_timer();
  }

  void cancel_timer() noexcept {
    if (timer_ != timer_service::no_id) {
      timer_service::instance().cancel(timer_);
      timer_ = timer_service::no_id;
    }
  }

  std::shared_ptr<chan_core<T>> core_;
  std::stop_token stop_;
  std::optional<time_point> deadline_;
  task_root* root_ = nullptr;
  task_record* task_ = nullptr;  // the named group's task it marked blocked, if any
  op op_{};
  waiter waiters_[1];
  std::uint32_t order_[2];
  select_limits limits_;
  std::optional<select_run> run_;
  timer_service::id timer_ = timer_service::no_id;
  std::exception_ptr error_;
  status status_ = status::would_block;
  bool done_ = false;
};

/// `co_await async_recv(rx, ..., use_task)`: a received<T>.
template <class T, class Op>
class task_recv_awaiter {
 public:
  template <class... Args>
  explicit task_recv_awaiter(Args&&... args) : op_(std::forward<Args>(args)...) {}

  bool await_ready() {
    // As the blocking receive: a fired stop wins over a ready value.
    if (op_.stop_requested()) return finish_now(status::stopped);
    // Every kind, unbuffered too: a try that finds nobody waiting answers without the lock, and
    // one that finds a peer completes without arming the task's word or registering.
    const status s = op_.core().try_recv(slot());
    if (s != status::would_block) return finish_now(s);
    return false;
  }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    if constexpr (std::is_same_v<Op, task_direct_op<T>>) {
      return op_.suspend(h, &slot(), /*sending=*/false);
    } else {
      return op_.suspend(h, make_recv_op(&op_.core(), &slot()));
    }
  }

  received<T> await_resume() {
    received_access::set_status(value_, op_.result());
    return std::move(value_);
  }

 private:
  std::optional<T>& slot() noexcept { return received_access::value(value_); }
  bool finish_now(status s) noexcept {
    op_.finish_now(s);
    return true;
  }

  Op op_;
  received<T> value_{};
};

/// `co_await async_send(tx, value, ..., use_task)`: the status; the value moves only on ok.
template <class T, class Op>
class task_send_awaiter {
 public:
  template <class... Args>
  explicit task_send_awaiter(T value, Args&&... args)
      : op_(std::forward<Args>(args)...), value_(std::move(value)) {}

  bool await_ready() {
    // As the blocking send: a fired stop wins over room in the channel.
    if (op_.stop_requested()) return finish_now(status::stopped);
    // As in task_recv_awaiter::await_ready(); an unbuffered channel's try also hands the value
    // to a thread waiting in its lone slot.
    const status s = op_.core().try_send(value_);
    if (s != status::would_block) return finish_now(s);
    return false;
  }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    if constexpr (std::is_same_v<Op, task_direct_op<T>>) {
      return op_.suspend(h, &value_, /*sending=*/true);
    } else {
      return op_.suspend(h, make_send_op(&op_.core(), &value_));
    }
  }

  status await_resume() { return op_.result(); }

 private:
  bool finish_now(status s) noexcept {
    op_.finish_now(s);
    return true;
  }

  Op op_;
  T value_;
};

}  // namespace custody::detail
