#pragma once
// What one spawned custody::asio::Task shares with everything it awaits: the state word its
// custody operations wait on, the innermost coroutine to resume, and the way back onto its
// executor.
//
// A task does one operation at a time, so one word serves them all: each custody operation
// arms it, registers on its channels with it, and suspends; whoever settles it (a peer, close(),
// the stop token, the deadline, the context's shutdown) calls the resumer, exactly as for a
// blocked thread or an asynchronous operation (detail/parker.hpp).
//
// Resuming. A task woken by a task running on a thread of the same io_context joins that
// thread's ready queue and runs as soon as the waker suspends: no post, no allocation, no lock,
// the way Go's scheduler runs a goroutine woken on its own processor next. It never runs on the
// waker's stack: the queue is drained by the loop that resumed the waker, after the waker
// suspended. Any other wake (a thread, another context, another kind of executor) posts the task
// to its executor. A loop resumes at most `ready_budget` tasks in a row, then posts the rest, so
// that a pair of tasks handing values to each other cannot keep the executor's other handlers
// waiting.
//
// Shutdown. A spawned task is listed with its context (pending.hpp). The context's shutdown
// settles a task waiting on a custody operation as stopped; its resumer posts it into the
// context, whose shutdown destroys it unrun: its frames are destroyed, which unlinks it from its
// channels, and its completion handler is destroyed without being called (Asio's rule for the
// handlers it holds). A task suspended on an Asio operation is ended the same way by that
// operation's handler being destroyed.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <utility>

#include "../detail/parker.hpp"
#include "pending.hpp"
#include "resume_executor.hpp"

namespace custody::detail {

class task_root;

/// The tasks one thread resumes one after another, all of one io_context.
struct task_loop {
  const ::asio::execution_context* context;
  task_root* head = nullptr;
  task_root* tail = nullptr;

  /// The next task to run, off the queue: once resumed it may be woken and queued again.
  inline task_root* pop() noexcept;
};

/// The loop this thread is running, if any.
inline thread_local task_loop* current_task_loop = nullptr;

class task_root {
 public:
  /// Tasks a loop resumes in a row before it posts the rest to their executor.
  static constexpr int ready_budget = 64;

  task_root(const task_root&) = delete;
  task_root& operator=(const task_root&) = delete;
  virtual ~task_root() {
    if (pending_) pending_->remove(entry_);
  }

  /// The word every custody operation of the task waits on.
  resumable_parker& word() noexcept { return word_; }
  /// The executor the task runs on (what an Asio operation it awaits completes on).
  ::asio::any_io_executor executor() const { return resumer_.executor(); }
  /// The coroutine to resume next: the innermost one the task is running.
  void set_current(std::coroutine_handle<> h) noexcept { current_ = h; }

  /// While a custody operation waits, how the loop goes on with it once woken: advance(op) is
  /// true when it completed (resume the coroutine), false when it waits again.
  void set_step(bool (*advance)(void*), void* op) noexcept {
    advance_ = advance;
    op_ = op;
  }

  /// The top coroutine finished (called from its final suspension): hand over its result and
  /// free the task.
  virtual void finish() noexcept = 0;

  /// Ends the task unrun: its frames and completion handler are destroyed, the handler uncalled.
  virtual void abandon() noexcept = 0;

  /// Makes the task runnable from any thread: the current loop's queue when that may run it,
  /// otherwise a post to its executor.
  void schedule() noexcept {
    task_loop* loop = current_task_loop;
    if (loop && fast_context_ && loop->context == fast_context_) {
      next_ = nullptr;
      (loop->tail ? loop->tail->next_ : loop->head) = this;
      loop->tail = this;
    } else {
      post();
    }
  }

  /// Posts the task to its executor; from the post it runs in a loop of its own.
  void post() noexcept;

  /// Runs `first` and then every task it (or those after it) made ready on this thread.
  static void run(task_root* first) noexcept;

 protected:
  explicit task_root(const ::asio::any_io_executor& ex)
      : resumer_(ex),
        // A task of any other executor (a strand, a thread pool's, a user's) is always posted.
        fast_context_(resumer_.io_context()),
        pending_(pending_list_of(resumer_.context())) {
    // Settled until the first operation arms it: the context's shutdown must not take a task
    // that is running, or waiting in a post, for a suspended one.
    word_.settle_self(parker::make(settled::done, 0));
    entry_.word = &word_;
    if (pending_) pending_->add(entry_);
  }

  /// Resumes the innermost coroutine (unless its operation waits again).
  void resume_once() noexcept {
    if (advance_) {
      bool (*advance)(void*) = std::exchange(advance_, nullptr);
      if (!advance(op_)) return;
    }
    current_.resume();
  }

 private:
  /// What is posted: owns the task until it runs. Destroyed unrun (the executor shut down), it
  /// abandons the task.
  class step {
   public:
    explicit step(task_root* root) noexcept : root_(root) {}
    step(step&& other) noexcept : root_(std::exchange(other.root_, nullptr)) {}
    step& operator=(step&&) = delete;
    ~step() {
      if (root_) root_->abandon();
    }
    void operator()() {
      // Through a pointer: run() posts a step when it stops early, a cycle through the
      // executor's queue that is not a recursion.
      void (*const run_posted)(task_root*) noexcept = &task_root::run;
      run_posted(std::exchange(root_, nullptr));
    }

   private:
    task_root* root_;
  };

  friend struct task_loop;

  static void on_settled(void* root) noexcept { static_cast<task_root*>(root)->schedule(); }

  resumable_parker word_{&task_root::on_settled, this};
  std::coroutine_handle<> current_;
  bool (*advance_)(void*) = nullptr;
  void* op_ = nullptr;
  task_root* next_ = nullptr;  // in a loop's queue
  // Counts as work while the task lives: an io_context's run() does not return under it.
  resume_executor<::asio::any_io_executor> resumer_;
  const ::asio::execution_context* fast_context_;
  std::shared_ptr<pending_list> pending_;
  pending_entry entry_;
};

inline task_root* task_loop::pop() noexcept {
  task_root* root = head;
  if (root) {
    head = root->next_;
    if (!head) tail = nullptr;
  }
  return root;
}

inline void task_root::post() noexcept {
  if (pending_list* pending = pending_.get()) {
    // A context that has shut down is not touched: the task is left unfreed (pending.hpp).
    pending->post_unless_shut([this] { resumer_.post(step(this)); });
  } else {
    resumer_.post(step(this));
  }
}

inline void task_root::run(task_root* first) noexcept {
  task_loop loop{first->fast_context_};
  task_loop* const outer = std::exchange(current_task_loop, &loop);
  int budget = ready_budget;
  for (task_root* root = first; root; root = loop.pop()) {
    if (budget-- > 0) {
      root->resume_once();
    } else {
      root->post();
    }
  }
  current_task_loop = outer;
}

}  // namespace custody::detail
