#pragma once
// custody::asio::Task<T>: custody's own coroutine task, as cheap to hand a value to as a
// goroutine. Inside a Task, custody's channel operations take the token custody::asio::use_task
// and run without an allocation or a post when the peer is a task on the same io_context thread:
//
//   custody::asio::Task<void> ping(custody::Channel<int> in, custody::Channel<int> out) {
//     using custody::asio::use_task;
//     for (int i = 0; i < 1000; ++i) {
//       co_await custody::async_send(out, i, use_task);
//       custody::received<int> r = co_await custody::async_recv(in, use_task);
//     }
//   }
//   asio::io_context io;
//   custody::asio::spawn(io.get_executor(), ping(a, b), [](std::exception_ptr e) { ... });
//
// - A Task is lazy: it starts when spawned, or when a Task awaits it (co_await other_task
//   yields its result, rethrows its exception, and runs it on the same executor).
// - spawn(executor, task, token) runs a Task on any Asio executor and completes with
//   (std::exception_ptr, T), or (std::exception_ptr) for Task<void>: an asio::awaitable
//   coroutine awaits a Task with `co_await spawn(ex, task, asio::use_awaitable)`.
// - Any Asio operation takes use_task as its token inside a Task: `co_await
//   timer.async_wait(use_task)` yields the handler's arguments (none: void; one: that value;
//   more: a std::tuple). So does every custody asynchronous operation (select, store, timers);
//   channel send and receive are served by the fast path above.
// - Where a Task runs: only on its executor, never on the thread or stack of whoever woke it
//   (task_root.hpp says how). While it lives it counts as outstanding work on the executor.
// - Destroying its io_context ends a suspended Task unrun: its frames are destroyed (which
//   unlinks it from its channels) and its completion handler is destroyed without being called.
// - Cancellation: through the std::stop_token and deadline forms of each operation; use_task
//   connects no Asio cancellation slot.
// - Exceptions: spawn() throws std::bad_alloc if the task's state cannot be allocated (the task
//   is then destroyed unrun); what a Task throws reaches its awaiter or spawn's handler.
// - Thread-safety: a Task runs one step at a time; spawn from any thread.

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <coroutine>
#include <exception>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "task_root.hpp"

namespace custody::asio {

template <class T = void>
class Task;

/// The completion token that makes an Asio or custody asynchronous operation awaitable inside a
/// custody::asio::Task.
struct use_task_t {};
inline constexpr use_task_t use_task{};

}  // namespace custody::asio

namespace custody::detail {

/// What every Task's promise has: the task it belongs to and whom to resume when it finishes.
class task_promise_base {
 public:
  task_root* root = nullptr;
  std::coroutine_handle<> continuation;  // none: the top coroutine of its task
  std::exception_ptr error;

  static std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    static bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      task_promise_base& p = h.promise();
      if (p.continuation) {
        p.root->set_current(p.continuation);
        return p.continuation;
      }
      p.root->finish();  // destroys this frame: nothing is touched after it
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  static final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
class task_promise : public task_promise_base {
 public:
  asio::Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& value) {
    result.emplace(std::forward<U>(value));
  }
  std::optional<T> result;
};

template <>
class task_promise<void> : public task_promise_base {
 public:
  asio::Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
};

/// The promise type of a coroutine that may await custody's task operations.
template <class Promise>
concept task_promise_type = std::is_base_of_v<task_promise_base, Promise>;

/// A spawned task: its top coroutine, and the handler its result goes to.
template <class T, class Handler>
class spawned_task final : public task_root {
 public:
  spawned_task(const ::asio::any_io_executor& ex, Handler handler,
               std::coroutine_handle<task_promise<T>> top)
      : task_root(ex), handler_(std::move(handler)), top_(top) {
    top_.promise().root = this;
    set_current(top_);
  }

  void finish() noexcept override {
    task_promise<T>& p = top_.promise();
    std::exception_ptr error = std::move(p.error);
    auto complete = [&](auto... result) {
      top_.destroy();
      auto ex = ::asio::get_associated_executor(handler_, executor());
      Handler handler = std::move(handler_);
      delete this;
      // Through a post, as Asio requires, never inside the finishing task's step.
      ::asio::post(ex, [handler = std::move(handler), error = std::move(error),
                        ... result = std::move(result)]() mutable {
        std::move(handler)(std::move(error), std::move(result)...);
      });
    };
    if constexpr (std::is_void_v<T>) {
      complete();
    } else {
      // A task that threw has no value: the handler gets a default one beside the exception.
      complete(p.result ? std::move(*p.result) : T{});
    }
  }

  void abandon() noexcept override {
    top_.destroy();
    delete this;
  }

  ~spawned_task() override = default;

 private:
  Handler handler_;
  std::coroutine_handle<task_promise<T>> top_;
};

/// Takes the coroutine out of a Task that is being spawned.
struct task_access {
  template <class T>
  static std::coroutine_handle<task_promise<T>> release(asio::Task<T>& task) noexcept {
    return std::exchange(task.h_, nullptr);
  }
};

template <class T>
struct task_completion {
  using signature = void(std::exception_ptr, T);
};
template <>
struct task_completion<void> {
  using signature = void(std::exception_ptr);
};

/// What a completion's arguments yield inside a Task: none (void), one value, or a tuple.
template <class... Values>
auto task_values(Values&&... values) {
  if constexpr (sizeof...(Values) == 1) {
    return (std::move(values), ...);
  } else if constexpr (sizeof...(Values) > 1) {
    return std::tuple<std::decay_t<Values>...>(std::move(values)...);
  }
}

template <class... Values>
auto task_result(Values&&... values) {
  return task_values(std::move(values)...);
}
template <class... Values>
auto task_result(std::exception_ptr error, Values&&... values) {
  if (error) std::rethrow_exception(error);
  return task_values(std::move(values)...);
}
template <class... Values>
auto task_result(std::error_code error, Values&&... values) {
  if (error) throw std::system_error(error);
  return task_values(std::move(values)...);
}

/// What `co_await op(use_task)` waits on: the Asio operation is started once the task has
/// suspended, and its handler runs the task on from the task's executor.
template <class Initiation, class Args, class... Results>
class use_task_awaiter {
 public:
  use_task_awaiter(Initiation init, Args args) : init_(std::move(init)), args_(std::move(args)) {}

  bool await_ready() const noexcept { return false; }

  template <task_promise_type Promise>
  void await_suspend(std::coroutine_handle<Promise> h) {
    task_root* root = h.promise().root;
    // The handler may run on another thread as soon as the operation starts: nothing of this
    // awaiter but what the handler fills is touched after.
    std::apply(
        [&](auto&&... args) {
          std::move(init_)(handler{this, root}, std::forward<decltype(args)>(args)...);
        },
        std::move(args_));
  }

  /// As asio::use_awaitable: a leading std::exception_ptr is rethrown and a leading
  /// std::error_code thrown as std::system_error when set, and dropped from the result.
  auto await_resume() {
    return std::apply([](auto&&... values) { return task_result(std::move(values)...); },
                      std::move(*results_));
  }

 private:
  /// Owns the suspended task until called; destroyed uncalled (the operation's context shut
  /// down), it ends the task unrun.
  class handler {
   public:
    using executor_type = ::asio::any_io_executor;

    handler(use_task_awaiter* awaiter, task_root* root) noexcept : awaiter_(awaiter), root_(root) {}
    handler(handler&& other) noexcept
        : awaiter_(other.awaiter_), root_(std::exchange(other.root_, nullptr)) {}
    handler& operator=(handler&&) = delete;
    ~handler() {
      if (root_) root_->abandon();
    }

    executor_type get_executor() const { return root_->executor(); }

    template <class... Values>
    void operator()(Values&&... values) {
      awaiter_->results_.emplace(std::forward<Values>(values)...);
      // Asio calls a handler on its executor: the task runs on from here.
      task_root::run(std::exchange(root_, nullptr));
    }

   private:
    use_task_awaiter* awaiter_;
    task_root* root_;
  };

  Initiation init_;
  Args args_;
  std::optional<std::tuple<Results...>> results_;
};

}  // namespace custody::detail

namespace custody::asio {

/// A coroutine that runs on an Asio executor and may await custody's operations (with
/// use_task), Asio's operations (with use_task) and other Tasks. Move-only; destroying a Task
/// that never started destroys its coroutine unrun.
template <class T>
class [[nodiscard]] Task {
 public:
  /// The coroutine machinery's promise type.
  using promise_type = custody::detail::task_promise<T>;
  /// What the task yields when awaited.
  using value_type = T;

  /// Takes over `other`'s coroutine; `other` is left empty.
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  /// Destroys this task's coroutine, if it never started, and takes over `other`'s.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  ~Task() {
    if (h_) h_.destroy();
  }

  /// Runs this task inside the awaiting one, on its executor; yields its result.
  auto operator co_await() && noexcept { return awaiter{h_}; }

 private:
  friend class custody::detail::task_promise<T>;

  struct awaiter {
    std::coroutine_handle<promise_type> child;
    bool await_ready() const noexcept { return false; }
    template <custody::detail::task_promise_type Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
      custody::detail::task_root* root = parent.promise().root;
      child.promise().root = root;
      child.promise().continuation = parent;
      root->set_current(child);
      return child;
    }
    T await_resume() {
      promise_type& p = child.promise();
      if (p.error) std::rethrow_exception(p.error);
      if constexpr (!std::is_void_v<T>) return std::move(*p.result);
    }
  };

  friend struct custody::detail::task_access;

  explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

  std::coroutine_handle<promise_type> h_;
};

/// Starts `task` on `ex` (any executor an asio::any_io_executor can hold). The completion
/// (through `token`, Asio's model) is (std::exception_ptr, T), or (std::exception_ptr) for
/// Task<void>, delivered through a post to the token's associated executor (by default `ex`).
/// Throws std::bad_alloc if the task's state cannot be allocated (the task is destroyed unrun).
template <class T, class Executor, class Token>
auto spawn(const Executor& ex, Task<T> task, Token&& token) {
  return ::asio::async_initiate<Token, typename custody::detail::task_completion<T>::signature>(
      [](auto handler, const ::asio::any_io_executor& executor, Task<T> t) {
        using handler_type = std::decay_t<decltype(handler)>;
        auto* root = new custody::detail::spawned_task<T, handler_type>(
            executor, std::move(handler), custody::detail::task_access::release(t));
        root->post();
      },
      token, ::asio::any_io_executor(ex), std::move(task));
}

}  // namespace custody::asio

namespace custody::detail {

template <class T>
asio::Task<T> task_promise<T>::get_return_object() noexcept {
  return asio::Task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline asio::Task<void> task_promise<void>::get_return_object() noexcept {
  return asio::Task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

}  // namespace custody::detail

/// \cond
// Asio operations inside a Task: the token use_task makes them awaitable.
template <class... Results>
class asio::async_result<custody::asio::use_task_t, void(Results...)> {
 public:
  template <class Initiation, class... Args>
  static auto initiate(Initiation&& init, custody::asio::use_task_t, Args&&... args) {
    using args_type = std::tuple<std::decay_t<Args>...>;
    return custody::detail::use_task_awaiter<std::decay_t<Initiation>, args_type,
                                             std::decay_t<Results>...>(
        std::forward<Initiation>(init), args_type(std::forward<Args>(args)...));
  }
};
/// \endcond
