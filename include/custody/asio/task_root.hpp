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
// suspended. A task of an io_context woken from anywhere else (a thread, another context, the
// context's shutdown) is pushed into its context's inbox (task_inbox.hpp); only the push that
// finds the inbox idle posts a drain, which runs on a thread of the context and takes the whole
// batch. A drain runs at most `ready_budget` tasks and posts the rest as the next drain before it
// runs its own part, so that the context's other threads share a large batch. A task of any
// other executor (a strand, a thread pool's) is posted to it, one post per wake. A loop resumes
// at most `ready_budget` tasks in a row, then posts the rest (tasks it woke) in one step, so that
// a pair of tasks handing values to each other cannot keep the executor's other handlers waiting.
//
// Shutdown. A spawned task is listed with its context (pending.hpp). The context's shutdown
// settles a task waiting on a custody operation as stopped; its resumer pushes it into the inbox
// (or posts it), and the context's shutdown destroys the drain (or the post) unrun, which
// abandons the task: its frames are destroyed, which unlinks it from its channels, and its
// completion handler is destroyed without being called (Asio's rule for the handlers it holds).
// pending.hpp says how a wake racing that shutdown is covered. A task suspended on an Asio
// operation is ended the same way by that operation's handler being destroyed.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <utility>

#include "../detail/parker.hpp"
#include "pending.hpp"
#include "resume_executor.hpp"
#include "task_inbox.hpp"

namespace custody::detail {

/// The tasks one thread resumes one after another, all of one io_context.
struct task_loop {
  const ::asio::execution_context* context;
  task_batch ready;
};

/// The loop this thread is running, if any.
inline thread_local task_loop* current_task_loop = nullptr;

class task_root : private task_link {
 public:
  /// Tasks a loop resumes in a row before it hands the rest on; also the most one drain runs.
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
  /// otherwise post().
  void schedule() noexcept {
    task_loop* loop = current_task_loop;
    if (loop && fast_context_ && loop->context == fast_context_) {
      loop->ready.push_back(*this);
    } else {
      post();
    }
  }

  /// Hands the task to its executor: an io_context's inbox, or a post to any other executor.
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
  /// What is posted to run tasks of one executor outside an inbox: owns them until they run.
  /// Destroyed unrun (the executor shut down), it abandons them.
  class step {
   public:
    explicit step(task_batch tasks) noexcept : tasks_(std::move(tasks)) {}
    step(step&& other) noexcept = default;
    step& operator=(step&&) = delete;
    ~step() {
      while (task_link* t = tasks_.pop_front()) of(t).abandon();
    }
    void operator()() {
      // Through a pointer: run_loop() posts a step when it stops early, a cycle through the
      // executor's queue that is not a recursion.
      void (*const run_posted)(task_batch) noexcept = &task_root::run_batch;
      run_posted(std::move(tasks_));
    }

   private:
    task_batch tasks_;
  };

  /// Posts `tasks`, all of one executor, as one step to it.
  static void post_step(task_batch tasks) noexcept {
    task_root& via = of(tasks.front());
    if (pending_list* pending = via.pending_.get()) {
      // A context that has shut down is not touched: the tasks are left unfreed (pending.hpp).
      pending->post_unless_shut([&] { via.resumer_.post(step(std::move(tasks))); });
    } else {
      via.resumer_.post(step(std::move(tasks)));
    }
  }

  /// Runs `tasks` and every task they make ready on this thread, within one budget.
  static void run_batch(task_batch tasks) noexcept {
    task_loop loop{of(tasks.front()).fast_context_, std::move(tasks)};
    run_loop(loop, ready_budget);
  }

  /// What is posted to run the tasks of an io_context's inbox: one link of its chain
  /// (task_inbox.hpp), owning the inbox and `batch_`, tasks taken from it earlier. Destroyed
  /// unrun (the context shut down), it abandons the batch and everything the inbox holds.
  class drain {
   public:
    drain(pending_list& list, task_batch batch) noexcept : list_(&list), batch_(std::move(batch)) {}
    drain(drain&& other) noexcept
        : list_(std::exchange(other.list_, nullptr)), batch_(std::move(other.batch_)) {}
    drain& operator=(drain&&) = delete;
    ~drain() {
      if (!list_) return;
      // Abandoning may wake other tasks of the context (a frame's destructor sends): they land
      // in the inbox this drain owns, and are taken here too.
      do {
        while (task_link* t = batch_.pop_front()) of(t).abandon();
        batch_ = list_->inbox().take();
      } while (!batch_.empty());
    }
    void operator()() {
      // Through a pointer: a drain posts the next one, a cycle through the executor's queue
      // that is not a recursion.
      void (*const run_drain)(pending_list&, task_batch) noexcept = &task_root::run_drain;
      run_drain(*std::exchange(list_, nullptr), std::move(batch_));
    }

   private:
    pending_list* list_;  // alive: its context's service holds it while a handler exists
    task_batch batch_;
  };

  /// Every task_link is a task_root's: the lists hold nothing else.
  static task_root& of(task_link* t) noexcept {
    return *static_cast<task_root*>(t);  // NOLINT(*-static-cast-downcast)
  }

  /// Posts the drain that owns `list`'s inbox from now on, through the executor of `via`, a task
  /// of the context that only that drain can run.
  static void post_drain(pending_list& list, task_root& via, task_batch batch) noexcept {
    // A context that has shut down is not touched: the batch is left unfreed (pending.hpp).
    list.post_unless_shut([&] { via.resumer_.post(drain(list, std::move(batch))); });
  }

  /// The same through the batch's first task.
  static void post_drain(pending_list& list, task_batch batch) noexcept {
    task_root& via = of(batch.front());
    post_drain(list, via, std::move(batch));
  }

  /// Runs the loop over `loop.ready` with `budget` resumes; returns what is left of it.
  static int run_loop(task_loop& loop, int budget) noexcept;

  /// One drain of `list`'s inbox, on a thread of its context: runs `batch`, then what the inbox
  /// holds, at most ready_budget tasks in all, and hands the rest to the next drain.
  static void run_drain(pending_list& list, task_batch batch) noexcept;

  static void on_settled(void* root) noexcept { static_cast<task_root*>(root)->schedule(); }

  resumable_parker word_{&task_root::on_settled, this};
  std::coroutine_handle<> current_;
  bool (*advance_)(void*) = nullptr;
  void* op_ = nullptr;
  // Counts as work while the task lives: an io_context's run() does not return under it.
  resume_executor<::asio::any_io_executor> resumer_;
  const ::asio::execution_context* fast_context_;
  std::shared_ptr<pending_list> pending_;
  pending_entry entry_;
};

inline void task_root::post() noexcept {
  if (fast_context_) {
    // An io_context's task always has its context's list, which holds the inbox.
    pending_list& list = *pending_;
    // Only the push that finds the inbox idle posts; nothing else can take this task until the
    // drain it posts runs, so it may still be used to post it.
    if (list.inbox().push(*this)) post_drain(list, *this, {});
  } else {
    task_batch alone;
    alone.push_back(*this);
    post_step(std::move(alone));
  }
}

inline int task_root::run_loop(task_loop& loop, int budget) noexcept {
  task_loop* const outer = std::exchange(current_task_loop, &loop);
  for (; budget > 0; --budget) {
    // Off the queue before it runs: once resumed a task may be woken and queued again.
    task_link* t = loop.ready.pop_front();
    if (!t) break;
    of(t).resume_once();
  }
  current_task_loop = outer;
  // Out of budget: the rest (tasks of the loop's own executor: only those are queued) go behind
  // the executor's other handlers, in one post.
  if (!loop.ready.empty()) post_step(std::move(loop.ready));
  return budget;
}

inline void task_root::run(task_root* first) noexcept {
  task_batch alone;
  alone.push_back(*first);
  run_batch(std::move(alone));
}

inline void task_root::run_drain(pending_list& list, task_batch batch) noexcept {
  int budget = ready_budget;
  while (budget > 0) {
    if (batch.empty()) batch = list.inbox().take();
    if (batch.empty()) return;  // the inbox is idle: the next push posts a drain
    task_loop loop{of(batch.front()).fast_context_, batch.cut_front(budget)};
    if (!batch.empty()) {
      // The rest goes first, to the context's queue, where another of its threads can take it
      // while this one runs its part. The next drain owns the inbox now: this one takes no more.
      post_drain(list, std::move(batch));
      run_loop(loop, budget);
      return;
    }
    budget = run_loop(loop, budget);
  }
  // Out of budget: the next drain goes on with what was pushed meanwhile (if anything, else the
  // inbox is idle again).
  batch = list.inbox().take();
  if (!batch.empty()) post_drain(list, std::move(batch));
}

}  // namespace custody::detail
