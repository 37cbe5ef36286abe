#pragma once
// A store on Asio executors: the asynchronous set, a subscription's asynchronous receive, and
// the owner's requests as a channel, for coroutines and callbacks.
//
//   asio::awaitable<void> faster(custody::Setter<Speed> s) {
//     auto r = co_await custody::async_set(s, Speed{50}, asio::use_awaitable);
//     if (!r) report(r.status());  // a custody::set_result<Speed>
//   }
//
//   asio::awaitable<void> owner_loop(custody::Owner<Speed> owner, std::stop_token stop) {
//     auto requests = owner.requests();
//     for (bool running = true; running;) {
//       co_await custody::async_select(
//           custody::on_recv(requests,
//                            [&](custody::SetRequest<Speed> r) { owner.accept(std::move(r)); }),
//           custody::on_stop(stop, [&] { running = false; }), asio::use_awaitable);
//     }
//   }
//
// async_set() and its stop-token and deadline forms mean what StoreView::set() and its forms
// mean (store/views.hpp), with a completion token in place of the waiting thread; the handler
// is called as handler(std::exception_ptr, custody::set_result<T>), so that `co_await` yields
// the set_result, with the blocking set's statuses. The call runs the blocking set's own steps
// (detail::store_state::set_call): it sends the request with an asynchronous send and waits for
// the answer with an asynchronous receive on the request's reply channel, each on the one
// waiting protocol (custody/asio/operation.hpp), so threads and coroutines answer each other's
// requests freely.
// - What completes it: the owner's answer (accepted, rejected, dropped), the owner going away
//   (owner_gone, at once, also for a request still in the channel), the stop token (stopped),
//   the deadline (timeout), or Asio cancellation (stopped). As with the blocking forms, a
//   request the owner already received may still be carried out after a stop, timeout or
//   cancellation; an answer the owner had already given is never lost: the call completes with
//   it (one the owner is writing at that moment is waited for, as the blocking set does: the
//   few instructions of a move).
// - Asio cancellation: the terminal type only (Asio's default for composed operations), since
//   a request the owner received cannot be taken back; a cancellation that arrives between the
//   request's hand-over and the wait for its answer is not lost.
// - Where it completes, outstanding work, the cancellation slot's threading rule: as for
//   async_recv (custody/asio/channel.hpp); a result known at once (the store already closed, the
//   stop already triggered, the deadline already passed) completes through a post too.
// - Exceptions: from the initiating call, std::logic_error on a nil view, std::bad_alloc, or what
//   moving T throws; what moving the answer out throws reaches the handler as its
//   std::exception_ptr. Should the wait for the answer fail to allocate once the request was
//   handed over, std::bad_alloc escapes the executor's run().
// - Thread-safety: as for set(); initiate from any thread, through any views.
//
// A Subscription<T> is a Receiver<T>: async_recv(), its stop-token and deadline forms, and
// async_select()'s on_recv take it as they take any receiver, for every policy. A pending
// receive completes when the owner publishes (ok, with the value), and at once with closed when
// the owner goes (after what the subscription holds). It holds its subscription: dropping the
// other handles does not unsubscribe until it completes (end it with its stop token or a
// cancellation first). The owner's requests() is a Receiver<SetRequest<T>>, usable the same way.
//
// async_publish(owner, value, token) and its stop-token and deadline forms mean what
// Owner::publish() and its forms mean (store/owner.hpp), with a completion token in place of the
// waiting thread; the handler is called as handler(std::exception_ptr, custody::status). It runs
// the blocking publish's own steps: the value is stored and offered to every subscriber at once,
// in the initiating call; then, if a policy::block subscriber was full, the owner's wait for
// room (detail::store_state::leave_blocked, room_case, end_blocked) is a select case on the one
// waiting protocol, so an owner coroutine shares its thread with the block subscribers it fills.
// - What completes it: every subscriber that was full took the value in or unsubscribed (ok,
//   also at once when none was full), the stop token (stopped; async_publish(owner, value,
//   token) honours the owner's stop token, Owner::set_stop_token, as publish(value) does), the
//   deadline (timeout), or Asio cancellation (stopped, every cancellation type). On stopped or
//   timeout the value is stored all the same and every subscriber that had room has it; those
//   still full miss it, counted in their Subscription::missed(). A subscriber that took the
//   value in before the stop, deadline or cancellation settled the wait keeps it; if all had,
//   the result is ok. After close() it completes with closed, changing nothing.
// - Where it completes, outstanding work, the cancellation slot's threading rule: as for
//   async_recv (custody/asio/channel.hpp); a result known at once completes through a post too.
// - Exceptions: from the initiating call, what publish() throws (std::logic_error on a nil
//   owner, what moving or copying T throws, std::bad_alloc), with the same effects.
// - Thread-safety: as for publish(): the owner's executor only, and the owner makes no other
//   change to the store (publish, update, accept, close) until it has completed. The Owner must
//   outlive the initiating call; the operation keeps the store itself alive. Should the
//   executor shut down while it waits, the full subscribers miss the value, as after a stop.

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/compose.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>

#include "../store.hpp"
#include "channel.hpp"
#include "operation.hpp"
#include "task_operation.hpp"

namespace custody {

namespace detail {

/// Subscriptions receive asynchronously as the receivers they are.
template <class T>
struct receiving_handle<Subscription<T>> {
  static constexpr bool value = true;
  using element = T;
};

/// The set's first step: the request, sent on the store's request channel.
template <class T>
struct set_send_body {
  static constexpr std::size_t cases = 1;
  using result_type = status;

  std::shared_ptr<chan_core<SetRequest<T>>> core;
  SetRequest<T> request;
  std::stop_token stop;
  std::optional<time_point> deadline;

  set_send_body(std::shared_ptr<chan_core<SetRequest<T>>> c, SetRequest<T>&& r, std::stop_token s,
                std::optional<time_point> d) noexcept
      : core(std::move(c)), request(std::move(r)), stop(std::move(s)), deadline(d) {}
  set_send_body(set_send_body&&) noexcept = default;
  set_send_body& operator=(set_send_body&&) = delete;
  // Not sent (stopped, timed out, the store closed, or the executor shut down): its caller has
  // given up on it, which the request's own destructor would report as an answer instead.
  ~set_send_body() { request_access::discard(request); }

  void make_ops(op* ops) { ops[0] = make_send_op(core.get(), &request); }
  select_limits limits() const { return {false, &stop, deadline}; }
  // Members, not statics: the Body interface of async_operation (operation.hpp).
  bool stop_first() const noexcept { return true; }  // NOLINT(*-convert-member-functions-to-static)
  status result(const outcome& o) const noexcept {   // NOLINT(*-convert-member-functions-to-static)
    return o.status;
  }
};

/// The set's second step: the receive on the request's reply channel, which the set_call
/// (in the composed operation, inside this operation's handler) keeps alive.
struct set_reply_body {
  static constexpr std::size_t cases = 1;
  using result_type = status;

  chan_core<reply_ready>* reply;
  std::stop_token stop;
  std::optional<time_point> deadline;
  std::optional<reply_ready> ready{};

  void make_ops(op* ops) { ops[0] = make_recv_op(reply, &ready); }
  select_limits limits() const { return {false, &stop, deadline}; }
  // Members, not statics: the Body interface of async_operation (operation.hpp).
  bool stop_first() const noexcept { return true; }  // NOLINT(*-convert-member-functions-to-static)
  status result(const outcome& o) const noexcept {   // NOLINT(*-convert-member-functions-to-static)
    return o.status;
  }
};

/// The steps of one async_set(), for asio::async_compose.
template <class T>
class async_set_steps {
 public:
  async_set_steps(std::shared_ptr<store_state<T>> store, T value, std::stop_token stop,
                  std::optional<time_point> deadline)
      : store_(std::move(store)),
        value_(std::move(value)),
        stop_(std::move(stop)),
        deadline_(deadline) {}

  /// First in the initiating call, then once more after the post of a result known at once.
  template <class Self>
  void operator()(Self& self) {
    if (at_once_) {
      complete(self, nullptr, std::move(*at_once_));
      return;
    }
    at_once_ = call_.open(*store_, std::move(*value_), &stop_, deadline_);
    if (at_once_) {
      ::asio::post(std::move(self));
      return;
    }
    if (call_.forward()) {
      await_reply(self);
      return;
    }
    sending_ = true;
    // Made before the handler is moved from `self`: it takes the request out of call_.
    set_send_body<T> body(store_->requests, std::move(call_.request()), stop_, deadline_);
    async_operation<set_send_body<T>, Self>::start(std::move(self), std::move(body));
  }

  /// The end of a step: the send (sending_) or the wait for the answer.
  template <class Self>
  void operator()(Self& self, std::exception_ptr error, status s) {
    if (error) {
      complete(self, std::move(error), set_result<T>(set_status::dropped));
      return;
    }
    if (std::exchange(sending_, false)) {
      if (s != status::ok) {
        complete(self, nullptr, call_.unsent(s));
      } else if (self.get_cancellation_state().cancelled() != ::asio::cancellation_type::none) {
        // Cancelled while the send was committing: its cancellation reached that step only.
        finish(self, status::stopped);
      } else {
        await_reply(self);
      }
      return;
    }
    finish(self, s);
  }

 private:
  template <class Self>
  void await_reply(Self& self) {
    set_reply_body body{&call_.reply(), stop_, deadline_};
    async_operation<set_reply_body, Self>::start(std::move(self), std::move(body));
  }

  template <class Self>
  void finish(Self& self, status answered) {
    std::exception_ptr error;
    std::optional<set_result<T>> result;
    try {
      result = call_.finish(answered);
    } catch (...) {
      error = std::current_exception();
    }
    complete(self, std::move(error),
             result ? std::move(*result) : set_result<T>(set_status::dropped));
  }

  // The handler may start the next set: the call's reply cell is let go of first.
  template <class Self>
  void complete(Self& self, std::exception_ptr error, set_result<T> result) {
    { typename store_state<T>::set_call done = std::move(call_); }
    self.complete(std::move(error), std::move(result));
  }

  std::shared_ptr<store_state<T>> store_;  // the call's reply cell is linked with it
  std::optional<T> value_;
  std::stop_token stop_;
  std::optional<time_point> deadline_;
  typename store_state<T>::set_call call_;
  std::optional<set_result<T>> at_once_;
  bool sending_ = false;
};

/// The publish's wait for room, as the operation's only case: ends with the blocking publish's
/// last step (end_blocked), once on the executor or, if the operation is abandoned unrun, when
/// it goes.
template <class T>
struct publish_wait_body {
  static constexpr std::size_t cases = 1;
  using result_type = status;

  std::shared_ptr<store_state<T>> store;
  std::stop_token stop;
  std::optional<time_point> deadline;

  publish_wait_body(std::shared_ptr<store_state<T>> s, std::stop_token st,
                    std::optional<time_point> d) noexcept
      : store(std::move(s)), stop(std::move(st)), deadline(d) {}
  publish_wait_body(publish_wait_body&&) noexcept = default;
  publish_wait_body& operator=(publish_wait_body&&) = delete;
  // Not ended (its executor shut down): the subscribers still full miss the value, as after a
  // stop, so that nothing is left waiting for an owner that is gone.
  ~publish_wait_body() {
    if (store) store->end_blocked(status::stopped);
  }

  void make_ops(op* ops) { ops[0] = store->room_case(); }
  select_limits limits() const { return {false, &stop, deadline}; }
  // As the blocking wait: a fired stop is one more ready case, chosen fairly.
  bool stop_first() const noexcept { return false; }
  status result(const outcome& o) noexcept {
    return std::exchange(store, nullptr)->end_blocked(o.status);
  }
};

/// What a named group's task waiting for room is shown blocked in: its case is no channel's.
template <class T>
struct blocked_in<publish_wait_body<T>> {
  static constexpr const char* text = "publish waiting for full subscribers";
};

/// `co_await async_set(..., use_task)`: the set's steps (as async_set_steps) with both waits in
/// the task's frame. Yields the set_result; what the allocated form hands its handler as the
/// exception is thrown. The plain form, which has one way to end each wait, sends the request
/// and waits for the answer registered on the two channels directly (task_direct_op); the stop
/// and deadline forms run the select engine.
template <class T>
class task_set_awaiter {
 public:
  task_set_awaiter(std::shared_ptr<store_state<T>> store, T value, std::stop_token stop,
                   std::optional<time_point> deadline)
      : store_(std::move(store)),
        value_(std::move(value)),
        stop_(std::move(stop)),
        deadline_(deadline),
        direct_(!stop_.stop_possible() && !deadline_) {}
  task_set_awaiter(const task_set_awaiter&) = delete;
  task_set_awaiter& operator=(const task_set_awaiter&) = delete;

  /// Makes the request; ready when its result is known at once.
  bool await_ready() {
    result_ = call_.open(*store_, std::move(value_), &stop_, deadline_);
    return result_.has_value();
  }

  template <task_promise_type Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    root_ = h.promise().root;
    bool completed = false;
    try {
      completed = call_.forward() ? await_reply() : send();
    } catch (...) {
      root_->set_step(nullptr, nullptr);
      throw;
    }
    if (completed) root_->set_step(nullptr, nullptr);
    return !completed;
  }

  set_result<T> await_resume() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*result_);
  }

 private:
  // Each step returns true when the set completed, false when it waits. Each sets the task's
  // step before its wait can be reached: whoever settles the word runs the task on through
  // advance().
  bool send() {
    sending_ = true;
    root_->set_step(&task_set_awaiter::advance, this);
    if (direct_) {
      send_direct_.emplace(*store_->requests);
      return send_direct_->begin(*root_, &call_.request(), /*sending=*/true, /*attempt=*/true) &&
             sent(send_direct_->result());
    }
    send_body_.emplace(store_->requests, std::move(call_.request()), stop_, deadline_);
    const std::optional<outcome> first = send_run_.start(*root_, *send_body_);
    return first && sent(first->status);
  }

  bool sent(status s) {
    sending_ = false;
    if (s != status::ok) {
      result_.emplace(call_.unsent(s));
      return true;
    }
    return await_reply();
  }

  bool await_reply() {
    root_->set_step(&task_set_awaiter::advance, this);
    if (direct_) {
      reply_direct_.emplace(call_.reply());
      if (!reply_direct_->begin(*root_, &reply_, /*sending=*/false, /*attempt=*/true)) {
        return false;
      }
      result_.emplace(call_.finish(reply_direct_->result()));
      return true;
    }
    reply_body_.emplace(set_reply_body{&call_.reply(), stop_, deadline_});
    const std::optional<outcome> first = reply_run_.start(*root_, *reply_body_);
    if (!first) return false;
    result_.emplace(call_.finish(first->status));
    return true;
  }

  // The step that waited, once its word was settled: its status, or nothing when it waits
  // once more.
  std::optional<status> resumed() {
    if (direct_ && sending_) {
      if (!send_direct_->resume()) return std::nullopt;
      return send_direct_->result();
    }
    if (direct_) {
      if (!reply_direct_->resume()) return std::nullopt;
      return reply_direct_->result();
    }
    const std::optional<outcome> done = sending_ ? send_run_.resume() : reply_run_.resume();
    if (!done) return std::nullopt;
    return done->status;
  }

  // On the task's executor, after the word was settled: true when the set completed.
  static bool advance(void* self_ptr) noexcept {
    auto* self = static_cast<task_set_awaiter*>(self_ptr);
    // Set again before a step can wait once more: a loop takes the step off the task before
    // calling it.
    self->root_->set_step(&task_set_awaiter::advance, self);
    try {
      const std::optional<status> s = self->resumed();
      if (!s) return false;
      if (self->sending_) {
        if (!self->sent(*s)) return false;
      } else {
        self->result_.emplace(self->call_.finish(*s));
      }
    } catch (...) {
      self->error_ = std::current_exception();
    }
    self->root_->set_step(nullptr, nullptr);
    return true;
  }

  std::shared_ptr<store_state<T>> store_;  // the call's reply cell is linked with it
  T value_;
  std::stop_token stop_;
  std::optional<time_point> deadline_;
  bool direct_;
  typename store_state<T>::set_call call_;
  std::optional<reply_ready> reply_;
  // Each operation is destroyed before what it refers to: the call's request and reply
  // channel, the bodies' cases.
  std::optional<task_direct_op<SetRequest<T>>> send_direct_;
  std::optional<task_direct_op<reply_ready>> reply_direct_;
  std::optional<set_send_body<T>> send_body_;
  task_engine_run<set_send_body<T>> send_run_;
  std::optional<set_reply_body> reply_body_;
  task_engine_run<set_reply_body> reply_run_;
  task_root* root_ = nullptr;
  std::optional<set_result<T>> result_;
  std::exception_ptr error_;
  bool sending_ = false;
};

template <class T, class Token>
auto initiate_publish(Owner<T>& owner, T value, std::stop_token stop,
                      std::optional<time_point> deadline, Token&& token) {
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    // Inside a custody::asio::Task: the same steps, the wait for room in the task's frame.
    using awaiter = task_body_awaiter<publish_wait_body<T>>;
    std::shared_ptr<store_state<T>> store = store_access::shared_state(owner);
    if (store_access::closed(owner)) return awaiter(status::closed);
    store->cell.stage_slot() = std::move(value);
    commit_cells(store->cell);
    store->offer_all();
    if (!store->leave_blocked()) return awaiter(status::ok);
    return awaiter(publish_wait_body<T>(std::move(store), std::move(stop), deadline));
  } else {
    return ::asio::async_initiate<Token, void(std::exception_ptr, status)>(
        [](auto handler, Owner<T>* o, T v, std::stop_token st, std::optional<time_point> d) {
          using handler_type = std::decay_t<decltype(handler)>;
          // publish()'s steps up to its wait: store, commit, offer to all, leave with the full.
          std::shared_ptr<store_state<T>> store = store_access::shared_state(*o);
          status at_once = status::closed;
          if (!store_access::closed(*o)) {
            store->cell.stage_slot() = std::move(v);
            commit_cells(store->cell);
            store->offer_all();
            if (store->leave_blocked()) {
              async_operation<publish_wait_body<T>, handler_type>::start(
                  std::move(handler), publish_wait_body<T>(std::move(store), std::move(st), d));
              return;
            }
            at_once = status::ok;
          }
          auto executor = ::asio::get_associated_executor(handler);
          ::asio::post(executor, [h = std::move(handler), at_once]() mutable {
            std::move(h)(std::exception_ptr(), at_once);
          });
        },
        token, &owner, std::move(value), std::move(stop), deadline);
  }
}

template <class T, class Token>
auto initiate_set(std::shared_ptr<store_state<T>> store, T value, std::stop_token stop,
                  std::optional<time_point> deadline, Token&& token) {
  if (!store) throw std::logic_error("custody: operation on a nil store view");
  if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_task_t>) {
    return task_set_awaiter<T>(std::move(store), std::move(value), std::move(stop), deadline);
  } else {
    return ::asio::async_compose<Token, void(std::exception_ptr, set_result<T>)>(
        async_set_steps<T>(std::move(store), std::move(value), std::move(stop), deadline), token);
  }
}

}  // namespace detail

/// Asks the owner to store `value` and completes with the owner's answer to this call alone
/// (see the top of this header, and StoreView::set()). Only with the set capability.
template <class T, unsigned Caps, class Token>
requires capability::can_set<Caps>
auto async_set(const StoreView<T, Caps>& view, std::type_identity_t<T> value, Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value), {},
                              std::nullopt, std::forward<Token>(token));
}
/// As async_set(), and completes with stopped once `stop` is triggered.
template <class T, unsigned Caps, class Token>
requires capability::can_set<Caps>
auto async_set(const StoreView<T, Caps>& view, std::type_identity_t<T> value, std::stop_token stop,
               Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value),
                              std::move(stop), std::nullopt, std::forward<Token>(token));
}
/// As async_set(), and completes with timeout once `deadline` passes (stopped once `stop` is
/// triggered).
template <class T, unsigned Caps, class Token>
requires capability::can_set<Caps>
auto async_set_until(const StoreView<T, Caps>& view, std::type_identity_t<T> value,
                     std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                     Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value),
                              std::move(stop), deadline, std::forward<Token>(token));
}
template <class T, unsigned Caps, class Token>
requires capability::can_set<Caps>
auto async_set_until(const StoreView<T, Caps>& view, std::type_identity_t<T> value,
                     std::chrono::steady_clock::time_point deadline, Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value), {},
                              deadline, std::forward<Token>(token));
}
/// As async_set_until(), with the deadline `timeout` from now.
template <class T, unsigned Caps, class Rep, class Period, class Token>
requires capability::can_set<Caps>
auto async_set_for(const StoreView<T, Caps>& view, std::type_identity_t<T> value,
                   std::chrono::duration<Rep, Period> timeout, std::stop_token stop,
                   Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value),
                              std::move(stop), detail::deadline_after(timeout),
                              std::forward<Token>(token));
}
template <class T, unsigned Caps, class Rep, class Period, class Token>
requires capability::can_set<Caps>
auto async_set_for(const StoreView<T, Caps>& view, std::type_identity_t<T> value,
                   std::chrono::duration<Rep, Period> timeout, Token&& token) {
  return detail::initiate_set(detail::store_access::shared_state(view), std::move(value), {},
                              detail::deadline_after(timeout), std::forward<Token>(token));
}

/// Publishes `value` as Owner::publish(value) does, honouring the owner's stop token, and
/// completes once every policy::block subscriber that was full took it in (see the top of this
/// header). The owner's executor only.
template <class T, class Token>
auto async_publish(Owner<T>& owner, std::type_identity_t<T> value, Token&& token) {
  return detail::initiate_publish(owner, std::move(value), detail::store_access::stop_token(owner),
                                  std::nullopt, std::forward<Token>(token));
}
/// As async_publish(), honouring `stop` instead of the owner's stop token.
template <class T, class Token>
auto async_publish(Owner<T>& owner, std::type_identity_t<T> value, std::stop_token stop,
                   Token&& token) {
  return detail::initiate_publish(owner, std::move(value), std::move(stop), std::nullopt,
                                  std::forward<Token>(token));
}
/// As async_publish(), giving up waiting for full subscribers at `deadline` (timeout), or once
/// `stop` is triggered (stopped).
template <class T, class Token>
auto async_publish_until(Owner<T>& owner, std::type_identity_t<T> value,
                         std::chrono::steady_clock::time_point deadline, std::stop_token stop,
                         Token&& token) {
  return detail::initiate_publish(owner, std::move(value), std::move(stop), deadline,
                                  std::forward<Token>(token));
}
template <class T, class Token>
auto async_publish_until(Owner<T>& owner, std::type_identity_t<T> value,
                         std::chrono::steady_clock::time_point deadline, Token&& token) {
  return detail::initiate_publish(owner, std::move(value), {}, deadline,
                                  std::forward<Token>(token));
}
/// As async_publish_until(), with the deadline `timeout` from now.
template <class T, class Rep, class Period, class Token>
auto async_publish_for(Owner<T>& owner, std::type_identity_t<T> value,
                       std::chrono::duration<Rep, Period> timeout, std::stop_token stop,
                       Token&& token) {
  return detail::initiate_publish(owner, std::move(value), std::move(stop),
                                  detail::deadline_after(timeout), std::forward<Token>(token));
}
template <class T, class Rep, class Period, class Token>
auto async_publish_for(Owner<T>& owner, std::type_identity_t<T> value,
                       std::chrono::duration<Rep, Period> timeout, Token&& token) {
  return detail::initiate_publish(owner, std::move(value), {}, detail::deadline_after(timeout),
                                  std::forward<Token>(token));
}

}  // namespace custody
