#pragma once
// Where an asynchronous operation posts itself: its handler's executor, made once per operation
// as a never-blocking executor that counts as work.
//
// An io_context's executor inside an any_io_executor (what asio::use_awaitable hands over) is
// unwrapped once (any other executor it holds is used as it is): prefer/require and execute on the
// type-erased executor cost more than the whole post they make.

#include <asio/any_io_executor.hpp>
#include <asio/execution/blocking.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution/execute.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <memory>
#include <optional>
#include <typeinfo>
#include <utility>

namespace custody::detail {

template <class Executor>
auto make_resume_executor(const Executor& ex) {
  return ::asio::prefer(::asio::require(ex, ::asio::execution::blocking_t::never),
                        ::asio::execution::outstanding_work_t::tracked);
}

/// The execution context behind `ex`; null for one that names none (use_future's executor,
/// which completes a promise).
template <class Executor>
::asio::execution_context* context_of(const Executor& ex) {
  if constexpr (::asio::can_query_v<const Executor&, ::asio::execution::context_t>) {
    return &::asio::query(ex, ::asio::execution::context);
  } else {
    return nullptr;
  }
}

template <class Executor>
class resume_executor {
 public:
  explicit resume_executor(const Executor& ex) : ex_(make_resume_executor(ex)) {}

  template <class Function>
  void post(Function&& f) const {
    ::asio::execution::execute(ex_, std::forward<Function>(f));
  }

  ::asio::execution_context* context() const { return context_of(ex_); }

 private:
  decltype(make_resume_executor(std::declval<const Executor&>())) ex_;
};

/// An any_io_executor that holds an io_context's executor posts through that executor itself.
template <>
class resume_executor<::asio::any_io_executor> {
  using io_executor = ::asio::io_context::executor_type;
  // The same executor that also counts as work (Asio keeps that property in its type).
  using io_tracked_executor = decltype(::asio::require(
      std::declval<const io_executor&>(), ::asio::execution::outstanding_work_t::tracked));
  using io_resume = decltype(make_resume_executor(std::declval<const io_executor&>()));

 public:
  explicit resume_executor(const ::asio::any_io_executor& ex) {
    // target<T>() casts without checking (Asio 1.22), so the held type is compared first: a
    // strand, a thread pool's executor or a named group's task_executor must not be taken for
    // an io_context's executor.
#if !defined(ASIO_NO_TYPEID)
    if (ex.target_type() == typeid(io_executor)) {
      io_.emplace(make_resume_executor(*ex.target<io_executor>()));
      return;
    }
    if (ex.target_type() == typeid(io_tracked_executor)) {
      io_.emplace(make_resume_executor(*ex.target<io_tracked_executor>()));
      return;
    }
#endif
    any_.emplace(make_resume_executor(ex));
  }

  template <class Function>
  void post(Function&& f) const {
    if (io_) {
      ::asio::execution::execute(*io_, std::forward<Function>(f));
    } else {
      ::asio::execution::execute(*any_, std::forward<Function>(f));
    }
  }

  ::asio::execution_context* context() const { return io_ ? context_of(*io_) : context_of(*any_); }

  /// The io_context whose threads run what is posted; null for any other kind of executor.
  ::asio::execution_context* io_context() const { return io_ ? context_of(*io_) : nullptr; }

  /// The executor itself, type-erased again.
  ::asio::any_io_executor executor() const { return io_ ? ::asio::any_io_executor(*io_) : *any_; }

 private:
  std::optional<io_resume> io_;
  std::optional<::asio::any_io_executor> any_;
};

}  // namespace custody::detail
