#pragma once
// A channel send or receive awaited inside a custody::asio::Task (the token use_task): the
// blocking forms' select engine run over the task's own word, with the operation's state in the
// coroutine frame. Nothing is allocated and nothing is posted when the peer is a task on the
// same io_context thread (task_root.hpp).

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>

#include "../channel.hpp"
#include "../detail/channel_ops.hpp"
#include "../detail/select_engine.hpp"
#include "../detail/timer_service.hpp"
#include "task.hpp"

namespace custody::detail {

/// What a send and a receive share: one case run by the engine on the task's word.
template <class T>
class task_channel_op {
 public:
  task_channel_op(std::shared_ptr<chan_core<T>> core, std::stop_token stop,
                  std::optional<time_point> deadline)
      : core_(std::move(core)), stop_(std::move(stop)), deadline_(deadline) {}
  task_channel_op(const task_channel_op&) = delete;
  task_channel_op& operator=(const task_channel_op&) = delete;

  ~task_channel_op() {
    // Destroyed while waiting: the task is being ended unrun (its context shut down).
    if (!done_) {
      if (run_) run_->abandon();
      if (direct_) unlink();
    }
    cancel_timer();
  }

 protected:
  /// Runs the first round with `o` as the only case (`slot` its value, sent or received into);
  /// true when the task must suspend.
  template <class Promise>
  bool suspend(std::coroutine_handle<Promise> h, op o, void* slot, bool sending) {
    root_ = h.promise().root;
    slot_ = slot;
    sending_ = sending;
    // Without a stop token or deadline there is one case only: the task registers on the
    // channel itself, without the engine's rounds.
    direct_ = !stop_.stop_possible() && !deadline_;
    if (direct_) {
      root_->set_step(&task_channel_op::advance_direct, this);
      return !direct_round(/*attempt_first=*/false);  // await_ready() attempted
    }
    parker& word = root_->word();
    // The word is the task's own, and no peer can reach it between operations.
    word.reset();
    op_ = o;
    limits_.stop = &stop_;
    limits_.deadline = deadline_;
    limits_.may_spin = false;
    // Set before the first round can make the word reachable: whoever settles it next runs the
    // task on through advance().
    root_->set_step(&task_channel_op::advance, this);
    std::optional<outcome> first;
    try {
      run_.emplace(word, &op_, 1, limits_, order_, waiters_);
      if (deadline_ && steady_clock::now() < *deadline_) {
        timer_ = timer_service::instance().schedule(
            *deadline_, [&word] { word.try_settle(parker::make(settled::timed_out, 0)); });
      }
      first = run_->start();
    } catch (...) {
      root_->set_step(nullptr, nullptr);
      done_ = true;
      cancel_timer();
      throw;
    }
    if (!first) return true;  // waiting: the word may be settled, and the task run, at once
    complete(*first);
    return false;
  }

  status result_status() {
    if (error_) std::rethrow_exception(error_);
    return status_;
  }

  std::shared_ptr<chan_core<T>> core_;
  std::stop_token stop_;
  status status_ = status::would_block;

 private:
  // On the task's executor, after the word was settled.
  static bool advance(void* self_ptr) noexcept {
    auto* self = static_cast<task_channel_op*>(self_ptr);
    std::optional<outcome> done;
    try {
      done = self->run_->resume();
      if (!done) return false;  // told to try again, and waiting once more
    } catch (...) {
      self->error_ = std::current_exception();
      done = outcome{outcome::none, status::would_block};
    }
    self->complete(*done);
    return true;
  }

  // Completes at once, or registers on the channel: true when completed (the task goes on),
  // false when it waits (the word may be settled, and the task run, at once). A buffered
  // channel is attempted first; an unbuffered one completes while registering if a peer waits.
  bool direct_round(bool attempt_first) {
    parker& word = root_->word();
    for (;; attempt_first = true) {
      if (attempt_first && !core_->hands_over()) {
        const status s = sending_ ? core_->try_send(*static_cast<T*>(slot_))
                                  : core_->try_recv(*static_cast<std::optional<T>*>(slot_));
        if (s != status::would_block) {
          complete(outcome{0, s});
          return true;
        }
      }
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
          complete(outcome{0, status::ok});
          return true;
        case enqueued::committed_closed:
          complete(outcome{0, status::closed});
          return true;
        case enqueued::restart:  // ready meanwhile: look again, unregistered
          unlink();
          continue;
        case enqueued::waiting:
          if (word.suspend()) return false;
          [[fallthrough]];
        case enqueued::settled_elsewhere:
          if (settled_direct(word.load())) return true;
          continue;
      }
    }
  }

  // The word was settled: completes and returns true, or false to register again (told to
  // try again: a peer's move threw).
  bool settled_direct(std::uint32_t state) {
    switch (parker::how(state)) {
      case settled::done:
        complete(outcome{0, status::ok});
        return true;
      case settled::closed:
        complete(outcome{0, status::closed});
        return true;
      case settled::stopped:  // the context's shutdown
        unlink();
        complete(outcome{0, status::stopped});
        return true;
      default:
        // Told to try again: whoever did so took the waiter off its list before settling the
        // word, which this thread has read since.
        if (waiter_.linked) unlink();
        return false;
    }
  }

  static bool advance_direct(void* self_ptr) noexcept {
    auto* self = static_cast<task_channel_op*>(self_ptr);
    try {
      if (self->settled_direct(self->root_->word().load())) return true;
      return self->direct_round(/*attempt_first=*/true);
    } catch (...) {
      self->error_ = std::current_exception();
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

  std::optional<time_point> deadline_;
  task_root* root_ = nullptr;
  void* slot_ = nullptr;
  bool sending_ = false;
  bool direct_ = false;
  waiter waiter_;  // the direct form's registration
  op op_{};
  waiter waiters_[1];
  std::uint32_t order_[2];
  select_limits limits_;
  std::optional<select_run> run_;
  timer_service::id timer_ = timer_service::no_id;
  std::exception_ptr error_;
  bool done_ = false;
};

/// `co_await async_recv(rx, use_task)`: a received<T>.
template <class T>
class task_recv_awaiter : task_channel_op<T> {
  using base = task_channel_op<T>;

 public:
  using base::base;

  bool await_ready() {
    // As the blocking receive: a fired stop wins over a ready value.
    if (this->stop_.stop_requested()) return finish_now(status::stopped);
    if (!this->core_->hands_over()) {
      const status s = this->core_->try_recv(received_access::value(value_));
      if (s != status::would_block) return finish_now(s);
    }
    return false;
  }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    std::optional<T>* slot = &received_access::value(value_);
    return this->suspend(h, make_recv_op(this->core_.get(), slot), slot, false);
  }

  received<T> await_resume() {
    received_access::set_status(value_, this->result_status());
    return std::move(value_);
  }

 private:
  bool finish_now(status s) noexcept {
    this->status_ = s;
    return true;
  }

  received<T> value_{};
};

/// `co_await async_send(tx, value, use_task)`: the status; the value moves only on ok.
template <class T>
class task_send_awaiter : task_channel_op<T> {
  using base = task_channel_op<T>;

 public:
  task_send_awaiter(std::shared_ptr<chan_core<T>> core, T value, std::stop_token stop,
                    std::optional<time_point> deadline)
      : base(std::move(core), std::move(stop), deadline), value_(std::move(value)) {}

  bool await_ready() {
    // As the blocking send: a fired stop wins over room in the channel.
    if (this->stop_.stop_requested()) return finish_now(status::stopped);
    if (!this->core_->hands_over()) {
      const status s = this->core_->try_send(value_);
      if (s != status::would_block) return finish_now(s);
    } else if (this->core_->try_send_to_lone(value_)) {
      return finish_now(status::ok);
    }
    return false;
  }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    return this->suspend(h, make_send_op(this->core_.get(), &value_), &value_, true);
  }

  status await_resume() { return this->result_status(); }

 private:
  bool finish_now(status s) noexcept {
    this->status_ = s;
    return true;
  }

  T value_;
};

}  // namespace custody::detail
