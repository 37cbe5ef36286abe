#pragma once
// Consumer views of a store: Getter, Setter, Subscriber, their combinations, and Store (all
// three). A function takes the narrowest view it needs, as the seed's Go interfaces do.
//
// Rules, enforced at compile time with readable messages:
// - a view converts implicitly to any view with fewer capabilities, never to one with more;
// - calling an operation the view lacks (a Getter's set(), ...) does not compile;
// - no view can become an Owner (see owner.hpp): the one Owner comes from make_store().

#include <chrono>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "../channel.hpp"
#include "../detail/store_state.hpp"
#include "policy.hpp"
#include "result.hpp"
#include "subscription.hpp"

namespace custody {

/// The capabilities a store view can carry.
namespace capability {
inline constexpr unsigned get = 1;        ///< get(), read()
inline constexpr unsigned set = 2;        ///< set(), set_for(), set_until()
inline constexpr unsigned subscribe = 4;  ///< subscribe()
/// Every consumer capability.
inline constexpr unsigned all = get | set | subscribe;
}  // namespace capability

template <class T>
class Owner;

namespace detail {
struct store_access;
}

/// A consumer's handle on a store, limited to the capabilities in `Caps`. Cheap to copy
/// (copies share the store); a default-constructed view is nil and its operations throw
/// std::logic_error. Every operation may be called from any thread, on any copies, at once.
template <class T, unsigned Caps>
class StoreView {
  static_assert(Caps != 0 && (Caps & ~capability::all) == 0,
                "custody::StoreView: Caps must be a non-empty combination of capability::get, "
                "capability::set and capability::subscribe");

 public:
  /// The type of the store's value.
  using value_type = T;
  /// The capabilities of this view, a combination of the capability constants.
  static constexpr unsigned capabilities = Caps;

  /// A nil view.
  StoreView() noexcept = default;

  ///@{
  /// Narrowing: any view converts to one with a subset of its capabilities.
  template <unsigned Other>
  StoreView(const StoreView<T, Other>& other) noexcept : state_(other.state_) {
    static_assert((Other & Caps) == Caps,
                  "custody: store views only narrow: the target view has a capability (get, set "
                  "or subscribe) that the source view lacks");
  }
  template <unsigned Other>
  StoreView(StoreView<T, Other>&& other) noexcept : state_(std::move(other.state_)) {
    static_assert((Other & Caps) == Caps,
                  "custody: store views only narrow: the target view has a capability (get, set "
                  "or subscribe) that the source view lacks");
  }
  ///@}

  /// False for a nil view.
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// True once the owner is gone (destroyed or closed). get() still returns the last value.
  bool owner_gone() const { return state().closed(); }

  // --- get ------------------------------------------------------------------------------

  /// A consistent snapshot of the value: never torn, never waiting for the owner's work (a
  /// request being processed, a slow device call), never slowed by other readers. Returns the
  /// last value after the owner is gone. Throws only what copying T throws.
  T get() const {
    static_assert((Caps & capability::get) != 0,
                  "custody: this store view cannot get(): it lacks the get capability (use a "
                  "Getter, GetSetter, GetSubscriber or Store)");
    return state().cell.load();
  }

  /// Calls fn(const T&) on a consistent snapshot and returns its result. For types that are
  /// not trivially copyable this avoids the copy: fn sees the stored value itself, so it must
  /// be short and must not block (the owner may have to wait for it to finish when it
  /// publishes twice meanwhile).
  template <class F>
  decltype(auto) read(F&& fn) const {
    static_assert((Caps & capability::get) != 0,
                  "custody: this store view cannot read(): it lacks the get capability (use a "
                  "Getter, GetSetter, GetSubscriber or Store)");
    static_assert(std::is_invocable_v<F&, const T&>,
                  "custody: read(fn) needs fn callable with const T&");
    return state().cell.read(std::forward<F>(fn));
  }

  // --- set ------------------------------------------------------------------------------

  /// Asks the owner to store `value` and blocks until the owner answers this call alone:
  /// - accepted: value() is what the owner stored (it may have adjusted it); get() already
  ///   returns it, or a newer value, when set() returns;
  /// - rejected: error() and message() give the owner's reason;
  /// - dropped: the owner let go of the request without answering;
  /// - owner_gone: the owner was gone before, or went while the request waited (in the
  ///   request channel, or held by the owner's code): told at once.
  /// Wakes when the answer arrives or the owner goes. While the request channel is full it
  /// first waits for room (same wake-ups). Throws std::bad_alloc, or what moving T throws.
  /// Thread-safe: any number of threads may set() at once, through any views.
  set_result<T> set(T value) const {
    check_set();
    return state().set(std::move(value), nullptr, std::nullopt);
  }
  /// As set(), but also returns stopped once `stop` is triggered (at once if it already is).
  /// A request the owner already received may still be carried out; it sees abandoned() and
  /// its answer is discarded.
  set_result<T> set(T value, std::stop_token stop) const {
    check_set();
    return state().set(std::move(value), &stop, std::nullopt);
  }
  /// As set(), but returns timeout once `deadline` passes (and stopped once `stop` fires);
  /// as with a stop, a request the owner already received may still be carried out.
  set_result<T> set_until(T value, std::chrono::steady_clock::time_point deadline,
                          std::stop_token stop = {}) const {
    check_set();
    return state().set(std::move(value), &stop, deadline);
  }
  /// As set(), but returns timeout after `timeout` (and stopped once `stop` fires).
  template <class Rep, class Period>
  set_result<T> set_for(T value, std::chrono::duration<Rep, Period> timeout,
                        std::stop_token stop = {}) const {
    check_set();
    return state().set(std::move(value), &stop, detail::deadline_after(timeout));
  }

  // --- subscribe ------------------------------------------------------------------------

  /// A new subscription with its own delivery policy (see policy.hpp). Every update the owner
  /// publishes after this returns reaches it (subject to the policy); with
  /// policy::with_current() the first value is the current one. Never blocks. After the
  /// owner is gone it returns a subscription that holds the current value (if asked for)
  /// and is closed. Throws std::bad_alloc.
  Subscription<T> subscribe(custody::policy p) const {
    static_assert((Caps & capability::subscribe) != 0,
                  "custody: this store view cannot subscribe(): it lacks the subscribe capability "
                  "(use a Subscriber, GetSubscriber, SetSubscriber or Store)");
    return Subscription<T>(state().subscribe(p), p);
  }

  /// Two views are equal when they refer to the same store.
  template <unsigned Other>
  bool operator==(const StoreView<T, Other>& other) const noexcept {
    return state_ == other.state_;
  }

 private:
  template <class, unsigned>
  friend class StoreView;
  template <class>
  friend class Owner;
  friend struct detail::store_access;

  explicit StoreView(std::shared_ptr<detail::store_state<T>> state) noexcept
      : state_(std::move(state)) {}

  static void check_set() noexcept {
    static_assert((Caps & capability::set) != 0,
                  "custody: this store view cannot set(): it lacks the set capability (use a "
                  "Setter, GetSetter, SetSubscriber or Store)");
  }

  detail::store_state<T>& state() const {
    if (!state_) throw std::logic_error("custody: operation on a nil store view");
    return *state_;
  }

  std::shared_ptr<detail::store_state<T>> state_;
};

/// Reads only (the seed's DataStoreGetter).
template <class T>
using Getter = StoreView<T, capability::get>;
/// Asks the owner for changes only (DataStoreSetter).
template <class T>
using Setter = StoreView<T, capability::set>;
/// Subscribes only.
template <class T>
using Subscriber = StoreView<T, capability::subscribe>;
/// Reads and asks for changes (DataStoreGetSet).
template <class T>
using GetSetter = StoreView<T, capability::get | capability::set>;
/// Reads and subscribes (DataStoreGetNotif).
template <class T>
using GetSubscriber = StoreView<T, capability::get | capability::subscribe>;
/// Asks for changes and subscribes.
template <class T>
using SetSubscriber = StoreView<T, capability::set | capability::subscribe>;
/// Every consumer capability (the seed's DataStore). Still not an Owner.
template <class T>
using Store = StoreView<T, capability::all>;

}  // namespace custody
