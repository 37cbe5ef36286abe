#pragma once
// Consumer views of a store: Getter, Setter, Subscriber, their combinations, and Store (all
// three). A function takes the narrowest view it needs, as the seed's Go interfaces do.
//
// Rules, enforced at compile time by constraints (so std::is_convertible_v,
// std::is_constructible_v and requires-expressions answer false too), and named in the
// compiler's message (capability::can_get, can_set, can_subscribe, store_views_only_narrow):
// - a view converts implicitly to any view with fewer capabilities, never to one with more;
// - calling an operation the view lacks (a Getter's set(), ...) does not compile;
// - no view can become an Owner (see owner.hpp): the one Owner comes from make_store().

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
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
inline constexpr unsigned set = 2;        ///< set(), set_for(), set_until(), set_if...()
inline constexpr unsigned subscribe = 4;  ///< subscribe()
/// Every consumer capability.
inline constexpr unsigned all = get | set | subscribe;

/// A view with capabilities `Caps` may get() and read().
template <unsigned Caps>
concept can_get = (Caps & get) != 0;
/// A view with capabilities `Caps` may set(), set_for() and set_until().
template <unsigned Caps>
concept can_set = (Caps & set) != 0;
/// A view with capabilities `Caps` may subscribe().
template <unsigned Caps>
concept can_subscribe = (Caps & subscribe) != 0;
/// Store views only narrow: a view with capabilities `From` converts to one with `To` only
/// when `To` has no capability that `From` lacks.
template <unsigned From, unsigned To>
concept store_views_only_narrow = (From & To) == To;
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
  requires capability::store_views_only_narrow<Other, Caps> StoreView(
      const StoreView<T, Other>& other)
  noexcept : state_(other.state_) {}
  template <unsigned Other>
  requires capability::store_views_only_narrow<Other, Caps> StoreView(StoreView<T, Other>&& other)
  noexcept : state_(std::move(other.state_)) {}
  ///@}
  /// Widening does not exist: deleted, so that the conversion traits answer false and the
  /// compiler names the rule it breaks.
  template <unsigned Other>
  requires(!capability::store_views_only_narrow<Other, Caps>) StoreView(const StoreView<T, Other>&)
  = delete;

  /// False for a nil view.
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// True once the owner is gone (destroyed or closed). get() still returns the last value.
  bool owner_gone() const { return state().closed(); }

  // --- get ------------------------------------------------------------------------------

  /// A consistent snapshot of the value: never torn, never waiting for the owner's work (a
  /// request being processed, a slow device call), never slowed by other readers, and never
  /// waiting long for a publishing owner either (see snapshot.hpp). Returns the last value
  /// after the owner is gone. Throws only what copying T throws. Only with the get
  /// capability (capability::can_get).
  T get() const requires capability::can_get<Caps> { return state().cell.load(); }

  /// As get(), together with the store's version of that value: versions grow by one with
  /// every change the owner publishes, so two results order their values.
  std::pair<T, std::uint64_t> get_versioned() const requires capability::can_get<Caps> {
    return state().cell.load_versioned();
  }

  /// Calls fn(const T&) on a consistent snapshot and returns its result, by value: a
  /// reference fn returns into the value is copied before the snapshot is let go of (it
  /// would dangle otherwise). For types that are not trivially copyable (or large ones) this
  /// avoids copying the whole value: fn sees the stored value itself, so it must be short and
  /// must not block (the owner may have to wait for it to finish when it publishes twice
  /// meanwhile).
  template <class F>
  requires capability::can_get<Caps> && std::invocable<F&, const T&>
      std::remove_cvref_t<std::invoke_result_t<F&, const T&>> read(F&& fn)
  const { return state().cell.read(fn); }

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
  set_result<T> set(T value) const requires capability::can_set<Caps> {
    return state().set(std::move(value), nullptr, std::nullopt);
  }
  /// As set(), but also returns stopped once `stop` is triggered (at once if it already is).
  /// A request the owner already received may still be carried out; it sees abandoned() and
  /// its answer is discarded. A request still waiting in the request channel never reaches
  /// the owner.
  set_result<T> set(T value, std::stop_token stop) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, std::nullopt);
  }
  /// As set(), but returns timeout once `deadline` passes (and stopped once `stop` fires);
  /// as with a stop, a request the owner already received may still be carried out.
  set_result<T> set_until(T value, std::chrono::steady_clock::time_point deadline,
                          std::stop_token stop = {}) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, deadline);
  }
  /// As set(), but returns timeout after `timeout` (and stopped once `stop` fires).
  template <class Rep, class Period>
  set_result<T> set_for(T value, std::chrono::duration<Rep, Period> timeout,
                        std::stop_token stop = {}) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, detail::deadline_after(timeout));
  }

  /// A conditional set: as set(), but the owner stores `value` only while the store is still
  /// at `expected_version` (the version get_versioned() returned with the value it was
  /// computed from); otherwise it answers conflict and stores nothing. So a read-modify-write
  /// never overwrites a change it did not see. Owner::accept checks the version; an owner
  /// that answers with SetRequest::accept itself checks SetRequest::expected_version(). Wakes,
  /// returns and is thread-safe as set().
  set_result<T> set_if(std::uint64_t expected_version,
                       T value) const requires capability::can_set<Caps> {
    return state().set(std::move(value), nullptr, std::nullopt, expected_version);
  }
  /// As set_if(), but also returns stopped once `stop` is triggered.
  set_result<T> set_if(std::uint64_t expected_version, T value,
                       std::stop_token stop) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, std::nullopt, expected_version);
  }
  /// As set_if(), but returns timeout once `deadline` passes (and stopped once `stop` fires).
  set_result<T> set_if_until(std::uint64_t expected_version, T value,
                             std::chrono::steady_clock::time_point deadline,
                             std::stop_token stop = {}) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, deadline, expected_version);
  }
  /// As set_if(), but returns timeout after `timeout` (and stopped once `stop` fires).
  template <class Rep, class Period>
  set_result<T> set_if_for(std::uint64_t expected_version, T value,
                           std::chrono::duration<Rep, Period> timeout,
                           std::stop_token stop = {}) const requires capability::can_set<Caps> {
    return state().set(std::move(value), &stop, detail::deadline_after(timeout), expected_version);
  }

  // --- subscribe ------------------------------------------------------------------------

  /// A new subscription with its own delivery policy (see policy.hpp). Every update the owner
  /// publishes after this returns reaches it (subject to the policy); with
  /// policy::with_current() the first value is the current one. Never blocks. After the
  /// owner is gone it returns a subscription that holds the current value (if asked for)
  /// and is closed. Throws std::bad_alloc.
  Subscription<T> subscribe(custody::policy p) const requires capability::can_subscribe<Caps> {
    return Subscription<T>(state().subscribe(p), p);
  }
  /// As subscribe(p), naming the subscription for custody::inspect() (an empty name leaves it
  /// unnamed). Throws std::bad_alloc.
  Subscription<T> subscribe(custody::policy p,
                            std::string name) const requires capability::can_subscribe<Caps> {
    return Subscription<T>(state().subscribe(p, std::move(name)), p);
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
