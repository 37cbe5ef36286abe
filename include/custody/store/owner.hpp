#pragma once
// Owner<T> and make_store(): the one party with authority over a store's value.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "../channel.hpp"
#include "../detail/store_state.hpp"
#include "../status.hpp"
#include "request.hpp"
#include "views.hpp"

namespace custody {

namespace detail {

/// fn(T&) may return void (always publish) or something convertible to bool (publish if true).
template <class F, class... Args>
bool call_update(F& fn, Args&... args) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, Args&...>>) {
    std::invoke(fn, args...);
    return true;
  } else {
    return static_cast<bool>(std::invoke(fn, args...));
  }
}
}  // namespace detail

/// Settings of a new store.
struct store_options {
  /// Set requests that may wait in the owner's request channel before set() callers block
  /// sending them (0: each set() waits until the owner takes its request).
  std::size_t request_capacity = 16;
  /// The store's name for custody::inspect(); empty (the default) leaves it unnamed, and an
  /// unnamed store costs nothing for inspection.
  std::string name = {};
};

/// The one owner of a store: the only party that changes its value. Move-only; there is
/// exactly one per store, made by make_store(), and no consumer view can be turned into one.
///
/// Thread-safety: an Owner is used by one thread at a time (normally the owner task); its
/// consumers use their views from any threads concurrently with it.
///
/// Destroying the Owner (or close()) closes the store: requests waiting in the channel or
/// waiting for an answer get owner_gone at once, as do later set() calls; subscribers
/// receive what they hold and then status::closed; get() keeps returning the last value.
template <class T>
class Owner {
 public:
  /// The type of the store's value.
  using value_type = T;

  /// A nil owner (moved from, or default-constructed); its operations throw std::logic_error.
  Owner() noexcept = default;
  /// Takes over `other`'s store; `other` becomes nil.
  Owner(Owner&& other) noexcept
      : state_(std::move(other.state_)), stop_(std::move(other.stop_)), closed_(other.closed_) {}
  /// Closes the store this owner had, then takes over `other`'s.
  Owner& operator=(Owner&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
      stop_ = std::move(other.stop_);
      closed_ = other.closed_;
    }
    return *this;
  }
  // An Owner is unique: copying would make two parties with authority over one value.
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;

  /// A consumer view (Store, Getter, Setter, Subscriber, ...) can never become an Owner: the
  /// one Owner of a store comes from make_store(). Deleted, so that std::is_constructible_v
  /// and std::is_convertible_v answer false and the compiler names this constructor.
  template <class U, unsigned Caps>
  Owner(const StoreView<U, Caps>& a_consumer_view_can_never_become_an_owner) = delete;

  ~Owner() { close(); }

  /// False for a nil owner.
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// A consumer handle with every consumer capability; narrow it to hand out less.
  Store<T> store() const { return Store<T>(shared()); }

  /// Set requests, in arrival order: receive them with recv() or in a select beside timers
  /// and the stop token. Closed (and drained) once the owner is gone. A request whose caller
  /// gave up (timeout or stop) while it still waited in this channel is skipped: it never
  /// reaches the owner.
  Receiver<SetRequest<T>> requests() const { return Receiver<SetRequest<T>>(state().requests); }

  /// The current value, for the owner itself: no copy, no synchronisation. Valid until the
  /// next publish.
  const T& value() const { return state().cell.current(); }
  /// A copy of the current value (the same as a consumer's get()).
  T get() const { return state().cell.current(); }

  /// For a store whose owner lives elsewhere (another process, custody::nats): every set()
  /// hands its request to `forward` on the caller's thread, instead of queueing it for
  /// requests(), which saves a thread hand-over per request. `forward` must take the request
  /// without blocking and answer it, now or later (a request destroyed unanswered answers
  /// dropped). Call it before any consumer view reaches another thread; it is not
  /// synchronised with set(). Throws std::logic_error on a nil owner.
  void forward_requests(std::function<void(SetRequest<T>&&)> forward) {
    state().forward_requests = std::move(forward);
  }

  /// The stop token that publish(value), update(fn) and accept() without a token of their own
  /// honour while a policy::block subscriber is full. By default none: such a publish waits
  /// until there is room (or the subscriber unsubscribes).
  void set_stop_token(std::stop_token stop) noexcept { stop_ = std::move(stop); }

  /// Replaces the value and notifies subscribers; readers see the change atomically (a get()
  /// returns the old value or the new one, never a mix). Writes the update straight into each
  /// subscription and wakes only subscribers that sleep. With no subscribers it costs one
  /// read-modify-write beyond the copy, and it never blocks.
  ///
  /// Blocks only while a policy::block subscriber is full: every subscriber with room gets
  /// the update first, then publish waits until each full one makes room. Wakes when it does,
  /// when it unsubscribes (dropped its receiver), or when the owner's stop token fires.
  /// Returns ok; stopped (or timeout, for publish_until/publish_for) if it gave up waiting:
  /// the value is stored and every subscriber that had room has it, the full ones miss it
  /// (their Subscription::missed() counts it); closed after close(), changing nothing. Throws
  /// what moving or copying T throws: before the value is stored nothing changes; while
  /// delivering (the one copy shared by all subscriptions, or std::bad_alloc growing a
  /// subscription's buffer), the value is stored and the subscribers not yet served miss it,
  /// counted in their missed(). Owner thread only.
  status publish(T value) { return publish_impl(std::move(value), &stop_, std::nullopt); }
  /// As publish(value), honouring `stop` instead of the owner's stop token.
  status publish(T value, std::stop_token stop) {
    return publish_impl(std::move(value), &stop, std::nullopt);
  }
  /// As publish(value), giving up waiting for full subscribers at `deadline`.
  status publish_until(T value, std::chrono::steady_clock::time_point deadline,
                       std::stop_token stop = {}) {
    return publish_impl(std::move(value), &stop, deadline);
  }
  /// As publish(value), giving up waiting for full subscribers after `timeout`.
  template <class Rep, class Period>
  status publish_for(T value, std::chrono::duration<Rep, Period> timeout,
                     std::stop_token stop = {}) {
    return publish_impl(std::move(value), &stop, detail::deadline_after(timeout));
  }

  /// Changes the value in place: fn(T&) gets a copy of the current value; if it returns void
  /// or true the result is published as by publish(), if it returns false nothing happens.
  /// If fn throws, nothing changes.
  template <class F>
  status update(F&& fn) {
    return update_impl(fn, &stop_);
  }
  /// As update(fn), honouring `stop` instead of the owner's stop token.
  template <class F>
  status update(F&& fn, std::stop_token stop) {
    return update_impl(fn, &stop);
  }

  /// Stores the requested value, notifies subscribers, then answers the request "accepted"
  /// with it. Returns what publish returned; after close(), answers owner_gone and returns
  /// closed. A conditional request (set_if) whose expected version is not the store's any
  /// more is answered conflict instead, nothing is stored, and ok is returned.
  status accept(SetRequest<T>&& request) {
    T value = request.value();
    return accept(std::move(request), std::move(value));
  }
  /// As accept(request), but stores (and answers with) `adjusted` instead, e.g. a clamped value.
  ///
  /// The answer is copied before the value is stored, so the caller hears the truth when a
  /// copy throws: if copying the answer throws, nothing is stored and the caller hears
  /// dropped; if delivering to subscribers throws, the value is stored and the caller hears
  /// accepted. Only a move assignment of T that throws while the answer is handed over
  /// (types whose move may throw) still leaves a stored value answered dropped.
  status accept(SetRequest<T>&& request, T adjusted) {
    SetRequest<T> r = std::move(request);
    state();
    if (closed_) {
      detail::request_access::answer(r, set_status::owner_gone);
      return status::closed;
    }
    const std::uint64_t before = state().cell.version();
    if (const auto expected = r.expected_version(); expected && *expected != before) {
      detail::request_access::answer(r, set_status::conflict);  // the value moved on
      return status::ok;
    }
    T answer(adjusted);
    status s;
    try {
      s = publish_impl(std::move(adjusted), &stop_, std::nullopt);
    } catch (...) {
      // Stored, but delivering it threw: the caller still learns what was stored.
      if (state().cell.version() != before) answer_stored(r, std::move(answer));
      throw;
    }
    answer_stored(r, std::move(answer));
    return s;
  }

  /// The store's version, as StoreView::get_versioned() reports it: it grows by one with
  /// every publish. An owner that acts on a conditional request (SetRequest::
  /// expected_version()) before accepting it compares the two first.
  std::uint64_t version() const { return state().cell.version(); }

  /// Subscriptions that are still live (finds out about dropped ones on the way).
  std::size_t subscriber_count() { return state().subscriber_count(); }

  /// Closes the store (see the class comment). Returns true if this call closed it. Never
  /// blocks for long (only for the owner's short internal locks).
  bool close() noexcept {
    if (!state_ || closed_) return false;
    closed_ = true;
    state_->close();
    return true;
  }
  /// True once close() was called (directly or by moving another owner over this one).
  bool is_closed() const noexcept { return closed_; }

 private:
  friend struct detail::store_access;

  explicit Owner(std::shared_ptr<detail::store_state<T>> state) noexcept
      : state_(std::move(state)) {}

  detail::store_state<T>& state() const {
    if (!state_) throw std::logic_error("custody: operation on a nil Owner");
    return *state_;
  }

  // Answers "accepted" with the stored value, and the version that holds it.
  void answer_stored(SetRequest<T>& r, T&& stored) {
    detail::request_access::accept(r, std::move(stored), state().cell.version());
  }
  const std::shared_ptr<detail::store_state<T>>& shared() const {
    state();
    return state_;
  }

  status publish_impl(T&& value, const std::stop_token* stop,
                      std::optional<std::chrono::steady_clock::time_point> deadline) {
    detail::store_state<T>& s = state();
    if (closed_) return status::closed;
    s.cell.stage_slot() = std::move(value);
    return commit(s, stop, deadline);
  }

  template <class F>
  status update_impl(F& fn, const std::stop_token* stop) {
    static_assert(std::is_invocable_v<F&, T&>, "custody: update(fn) needs fn callable with T&");
    detail::store_state<T>& s = state();
    if (closed_) return status::closed;
    T& slot = s.cell.stage_slot();
    slot = s.cell.current();
    if (!detail::call_update(fn, slot)) return status::ok;
    return commit(s, stop, std::nullopt);
  }

  static status commit(detail::store_state<T>& s, const std::stop_token* stop,
                       std::optional<std::chrono::steady_clock::time_point> deadline) {
    detail::commit_cells(s.cell);
    s.offer_all();
    return s.wait_blocked(stop, deadline);
  }

  std::shared_ptr<detail::store_state<T>> state_;
  std::stop_token stop_;
  bool closed_ = false;
};

namespace detail {

/// The private parts of views and owners, for make_store(), joint changes and snapshots.
struct store_access {
  template <class T>
  static Owner<T> owner(std::shared_ptr<store_state<T>> state) noexcept {
    return Owner<T>(std::move(state));
  }
  template <class T>
  static Store<T> view(std::shared_ptr<store_state<T>> state) noexcept {
    return Store<T>(std::move(state));
  }
  template <class T, unsigned Caps>
  static store_state<T>& state(const StoreView<T, Caps>& v) {
    return v.state();
  }
  /// The view's store, shared (empty for a nil view): for operations that outlive the call.
  template <class T, unsigned Caps>
  static std::shared_ptr<store_state<T>> shared_state(const StoreView<T, Caps>& v) noexcept {
    return v.state_;
  }
  template <class T>
  static store_state<T>& state(const Owner<T>& o) {
    return o.state();
  }
  template <class T>
  static bool closed(const Owner<T>& o) noexcept {
    return o.closed_;
  }
  /// The owner's store, shared: for an asynchronous publish, which outlives the call.
  template <class T>
  static std::shared_ptr<store_state<T>> shared_state(const Owner<T>& o) {
    return o.shared();
  }
  /// The stop token that publish(value) honours (Owner::set_stop_token).
  template <class T>
  static const std::stop_token& stop_token(const Owner<T>& o) noexcept {
    return o.stop_;
  }
  template <class T>
  static status commit(store_state<T>& s, const std::stop_token* stop) {
    return Owner<T>::commit(s, stop, std::nullopt);
  }
};

}  // namespace detail

/// What make_store() returns: the one Owner and a first consumer handle.
template <class T>
struct store_pair {
  Owner<T> owner;  ///< The one owner: move it into the owner task.
  Store<T> store;  ///< A consumer handle with every capability: copy or narrow it.
};

/// Makes a store holding `initial`. Returns its Owner (move-only, the only one ever) and a
/// Store handle for consumers (copy it, or narrow it to Getter, Setter, Subscriber, ...).
///
///   auto [owner, store] = custody::make_store<Car>(Car{});
template <class T>
store_pair<T> make_store(T initial, store_options options = {}) {
  static_assert(check_store_value<T>());
  auto state = std::make_shared<detail::store_state<T>>(initial, options.request_capacity);
  state->give_name(std::move(options.name));
  Store<T> consumer = detail::store_access::view<T>(state);
  return store_pair<T>{detail::store_access::owner<T>(std::move(state)), std::move(consumer)};
}

}  // namespace custody
