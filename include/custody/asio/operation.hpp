#pragma once
// The state of one asynchronous custody operation (a send, a receive or a select) on an Asio
// executor: what the blocking forms keep on the waiting thread's stack, kept in one allocation
// made with the completion handler's associated allocator. A handler without one gets
// block_cache_allocator: the block goes back to a small per-thread cache when the operation
// completes, and the next operation on that thread takes it from there instead of the heap.
//
// It runs the blocking forms' own select engine (detail/select_engine.hpp) over a
// resumable_parker: where a thread would sleep, the operation suspends, and whoever settles its
// word (a peer, close(), the stop token, the deadline, an Asio cancellation) calls its resumer
// with one compare-exchange, exactly as it would wake a thread. The resumer posts the operation
// to the handler's associated executor; it never runs it on the settler's thread or stack. An
// operation that completes at once completes through a post too, as Asio requires; a lone case
// its channel can complete right away skips the select's rounds and the listing below.
//
// Until its handler runs the operation holds outstanding work on that executor (an io_context's
// run() does not return). While it waits it is also listed with its context, whose shutdown ends
// it (pending.hpp).
//
// Started by a step of a named custody::asio::TaskGroup's task (asio/task_identity.hpp), it marks
// that task blocked in it until it completes; anywhere else this costs one null test.

#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "../detail/parker.hpp"
#include "../detail/select_engine.hpp"
#include "../detail/timer_service.hpp"
#include "block_cache.hpp"
#include "pending.hpp"
#include "resume_executor.hpp"
#include "task_identity.hpp"

namespace custody::detail {

/// What a task waiting in an operation with this Body is blocked in, when the Body's case is not
/// a channel's (null: it is described from its cases).
template <class Body>
struct blocked_in {
  static constexpr const char* text = nullptr;
};

/// Marks `task` blocked in the operation with `Body` over `ops[0..Body::cases)`: as blocked_in
/// names it, or else as a blocked thread's operation is named (select_run::blocked_as): a send or
/// receive on one channel, a select of several, or a wait for a stop or deadline alone. Each
/// channel stays alive while its operation waits.
template <class Body>
void mark_blocked(task_record& task, const op* ops) {
  if constexpr (blocked_in<Body>::text != nullptr) {
    task.blocked(blocked_in<Body>::text, nullptr, 0, steady_clock::now());
    return;
  }
  std::size_t enabled = 0;
  const op* only = nullptr;
  for (std::size_t i = 0; i < Body::cases; ++i) {
    if (!ops[i].core) continue;
    ++enabled;
    only = &ops[i];
  }
  const auto now = steady_clock::now();
  if (enabled == 0) {
    task.blocked("wait for a stop or a deadline", nullptr, 0, now);
  } else if (enabled > 1) {
    task.blocked("select of", nullptr, enabled, now);
  } else {
    task.blocked(only->sending ? "send on" : "recv on", only->name, 1, now);
  }
}

/// One asynchronous operation. `Body` holds the cases' channels and values:
///   static constexpr std::size_t cases;      // how many detail::op it makes
///   using result_type = ...;                 // the completion's second argument
///   void make_ops(op* ops);                  // called once Body sits in the operation
///   select_limits limits();                  // its stop token (pointing into Body), deadline
///   bool stop_first() const;                 // a fired stop wins over a ready case
///   result_type result(const outcome&);      // after the commit, on the executor; may throw
/// A Body whose case is not a channel's names what a task waiting in it is blocked in by
/// specialising blocked_in (below).
/// The handler is called as handler(std::exception_ptr, result_type).
template <class Body, class Handler>
class async_operation {
  static constexpr std::size_t n = Body::cases == 0 ? 1 : Body::cases;

  // Never blocking (a post, not a call), and counting as work: a pending operation keeps the
  // handler's executor (its io_context's run()) from running dry. Made once, so that resuming
  // is one post with no executor conversions.
  using work_executor = resume_executor<::asio::associated_executor_t<Handler>>;
  using default_allocator = block_cache_allocator<void>;
  using allocator =
      typename std::allocator_traits<::asio::associated_allocator_t<Handler, default_allocator>>::
          template rebind_alloc<async_operation>;
  using allocator_traits = std::allocator_traits<allocator>;
  static allocator allocator_of(const Handler& handler) noexcept {
    return allocator(::asio::get_associated_allocator(handler, default_allocator()));
  }

 public:
  /// Allocates the operation, runs its first round and, when that does not complete it, leaves
  /// it waiting for a resumer. Throws only std::bad_alloc when the operation cannot be
  /// allocated or registered (nothing is pending then); any other failure (a select that no case
  /// could ever complete, a throwing move) reaches the handler as its std::exception_ptr.
  static void start(Handler handler, Body body) {
    allocator alloc = allocator_of(handler);
    async_operation* self = allocator_traits::allocate(alloc, 1);
    try {
      allocator_traits::construct(alloc, self, std::move(handler), std::move(body));
    } catch (...) {
      allocator_traits::deallocate(alloc, self, 1);
      throw;
    }
    if (self->completed_at_once()) {
      post_step(self);
      return;
    }
    try {
      self->prepare();
    } catch (...) {
      self->destroy(alloc);
      throw;
    }
    self->begin();
  }

  async_operation(Handler handler, Body body)
      : body_(std::move(body)),
        handler_(std::move(handler)),
        work_(::asio::get_associated_executor(handler_)) {
    body_.make_ops(ops_);
    limits_ = body_.limits();
    limits_.cancelled = &cancelled_;
    limits_.may_spin = false;
  }

  async_operation(const async_operation&) = delete;
  async_operation& operator=(const async_operation&) = delete;

 private:
  /// What is posted to the executor: owns the operation until it runs. Destroyed without
  /// running (its executor shut down), it abandons the operation: unlinks it and frees it
  /// without calling the handler, as Asio does with the handlers it still holds.
  class step {
   public:
    explicit step(async_operation* op) noexcept : op_(op) {}
    step(step&& other) noexcept : op_(std::exchange(other.op_, nullptr)) {}
    step& operator=(step&&) = delete;
    ~step() {
      if (op_) op_->abandon();
    }
    void operator()() { std::exchange(op_, nullptr)->advance(); }

   private:
    async_operation* op_;
  };

  /// Cancels through the operation's word, as a fired stop token does: it completes with
  /// status::stopped unless it had committed already. Nothing happens to a channel before the
  /// commit, so every cancellation type (terminal, partial, total) is honoured.
  struct cancel_handler {
    async_operation* op;
    void operator()(::asio::cancellation_type type) const noexcept {
      constexpr auto honoured = ::asio::cancellation_type::terminal |
                                ::asio::cancellation_type::partial |
                                ::asio::cancellation_type::total;
      if ((type & honoured) == ::asio::cancellation_type::none) return;
      op->cancelled_.store(true, std::memory_order_seq_cst);
      op->self_.try_settle(parker::make(settled::stopped, 0));
    }
  };

  // A lone case that its channel completes right now is done without what waiting needs (the
  // pending entry, the cancellation handler, the select's rounds): a ready case wins over a
  // deadline in the select too, and over a stop token that has not fired. Nobody else can reach
  // the operation yet. True with the outcome or the error set.
  bool completed_at_once() noexcept {
    if constexpr (Body::cases != 1) {
      return false;
    } else {
      op& only = ops_[0];
      if (!only.core || (limits_.stop && limits_.stop->stop_requested())) return false;
      try {
        const status s = only.attempt(only);
        if (s == status::would_block) return false;
        outcome_ = outcome{0, s};
      } catch (...) {
        error_ = std::current_exception();
      }
      return true;
    }
  }

  // What may throw (std::bad_alloc) before the operation can be reached by anyone.
  void prepare() {
    std::shared_ptr<pending_list> pending = pending_list_of(work_.context());
    slot_ = ::asio::get_associated_cancellation_slot(handler_);
    if (slot_.is_connected()) slot_.template emplace<cancel_handler>(cancel_handler{this});
    entry_.word = &self_;
    if (pending) pending->add(entry_);
    pending_ = std::move(pending);  // listed: destroy() unlists it
  }

  void begin() {
    std::optional<outcome> done;
    // Kept here: once the operation waits, it is not touched again (see below).
    task_record* const task = task_;
    try {
      if (body_.stop_first() && limits_.stop && limits_.stop->stop_requested()) {
        done = outcome{outcome::none, status::stopped};
      } else {
        run_.emplace(self_, ops_, Body::cases, limits_, order_, waiters_);
        if (limits_.deadline && steady_clock::now() < *limits_.deadline) {
          // Settles a word still waiting; a word settled otherwise meanwhile ignores it. The
          // entry is cancelled (and a running callback waited for) before the word goes away.
          timer_ = timer_service::instance().schedule(
              *limits_.deadline, [this] { self_.try_settle(parker::make(settled::timed_out, 0)); });
        }
        // Before the first round: once it waits, the step that completes it (and marks the
        // task running) may run at once on another thread.
        if (task) mark_blocked<Body>(*task, ops_);
        done = run_->start();
        // Nothing: waiting, and the resumer may already have posted the next step, which may
        // run on another thread: the operation is not touched again here.
        if (!done) return;
        if (task) task->running();
      }
    } catch (...) {
      if (task) task->running();
      error_ = std::current_exception();
    }
    outcome_ = done;
    post_step(this);  // done already: complete through a post all the same
  }

  // Once posted the operation may run, and be freed, on another thread: only the list (which
  // the context keeps alive until its shutdown has waited for this post) is touched after.
  static void post_step(async_operation* op) noexcept {
    if (pending_list* pending = op->pending_.get()) {
      pending->post_unless_shut([op] { op->work_.post(step(op)); });
    } else {
      op->work_.post(step(op));
    }
  }

  static void resume(void* context) noexcept { post_step(static_cast<async_operation*>(context)); }

  // On the handler's executor, after a post.
  void advance() {
    if (!outcome_ && !error_) {
      std::optional<outcome> done;
      try {
        done = run_->resume();
        if (!done) return;  // told to try again, and waiting once more: as in begin()
      } catch (...) {
        error_ = std::current_exception();
      }
      outcome_ = done;
      // Waited: its task (if one is recorded) runs on from here.
      if (task_) task_->running();
    }
    typename Body::result_type result{};
    if (!error_) {
      try {
        result = body_.result(*outcome_);
      } catch (...) {
        error_ = std::current_exception();
      }
    }
    std::exception_ptr error = std::move(error_);
    allocator alloc = allocator_of(handler_);
    Handler handler = std::move(handler_);
    destroy(alloc);  // before the upcall, so that the handler may start the next operation
    std::move(handler)(std::move(error), std::move(result));
  }

  void abandon() noexcept {
    if (run_) run_->abandon();
    destroy(allocator_of(handler_));
  }

  void destroy(allocator alloc) noexcept {
    if (timer_ != timer_service::no_id) timer_service::instance().cancel(timer_);
    if (pending_) pending_->remove(entry_);
    if (slot_.is_connected()) slot_.clear();
    allocator_traits::destroy(alloc, this);
    allocator_traits::deallocate(alloc, this, 1);
  }

  // What the engine touches while the operation waits, first: peers settle `self_`.
  resumable_parker self_{&async_operation::resume, this};
  waiter waiters_[n];
  std::uint32_t order_[n + 1];
  Body body_;
  op ops_[n];
  select_limits limits_;
  atomic<bool> cancelled_{false};
  std::optional<select_run> run_;
  Handler handler_;
  work_executor work_;
  ::asio::associated_cancellation_slot_t<Handler> slot_;
  timer_service::id timer_ = timer_service::no_id;
  std::shared_ptr<pending_list> pending_;
  pending_entry entry_;
  std::optional<outcome> outcome_;
  std::exception_ptr error_;
  // The named group's task whose step started the operation; null anywhere else.
  task_record* const task_ = current_coroutine_task;
};

}  // namespace custody::detail
