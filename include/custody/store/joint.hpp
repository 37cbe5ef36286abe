#pragma once
// Changing several stores in one step, and reading several stores in one snapshot.
//
//   auto both = custody::joint(data_owner, status_owner);
//   both.update([&](CarData& d, CarStatus& s) { d = device.read(); s.connected = true; });
//   ...
//   auto [d, s] = custody::snapshot(data_getter, status_getter);  // all of a change or none
//
// No locks are taken, so there is no lock order to get wrong: a store has one owner, so a
// joint change has one writer per store, and readers validate against each store's sequence
// word and retry if any change overlapped their copies.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../detail/snapshot.hpp"
#include "../detail/store_state.hpp"
#include "../status.hpp"
#include "owner.hpp"
#include "views.hpp"

namespace custody {

/// Several owners acting as one: publish() and update() change all their stores in one step.
/// A joint snapshot (custody::snapshot) of these stores sees all of such a change or none of
/// it; a plain get() of one store sees its part as soon as the step is done. Holds references
/// to the owners, which must outlive it; used by one thread at a time, like the owners.
template <class... Ts>
class Joint {
  static_assert(sizeof...(Ts) >= 1, "custody::joint needs at least one owner");

 public:
  /// Throws std::invalid_argument if a store appears twice, std::logic_error if an owner is nil.
  explicit Joint(Owner<Ts>&... owners) : owners_(&owners...) {
    const void* states[] = {&detail::store_access::state(owners)...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i) {
      for (std::size_t j = i + 1; j < sizeof...(Ts); ++j) {
        if (states[i] == states[j]) {
          throw std::invalid_argument("custody::joint: the same store appears twice");
        }
      }
    }
  }

  /// The stop token honoured while a policy::block subscriber of any of the stores is full.
  Joint& set_stop_token(std::stop_token stop) noexcept {
    stop_ = std::move(stop);
    return *this;
  }

  /// Replaces every store's value in one step, then notifies each store's subscribers. Returns
  /// as Owner::publish does; closed (and changes nothing) if any owner is closed.
  status publish(Ts... values) {
    return std::apply(
        [&](Owner<Ts>*... owners) -> status {
          if ((detail::store_access::closed(*owners) || ...)) return status::closed;
          ((detail::store_access::state(*owners).cell.stage_slot() = std::move(values)), ...);
          return commit(detail::store_access::state(*owners)...);
        },
        owners_);
  }

  /// fn(Ts&...) gets copies of the current values; if it returns void or true, the results are
  /// published in one step, as by publish(). If fn throws or returns false, nothing changes.
  template <class F>
  status update(F&& fn) {
    static_assert(std::is_invocable_v<F&, Ts&...>,
                  "custody::Joint::update(fn) needs fn callable with a T& for each store, in "
                  "the order the owners were given");
    return std::apply(
        [&](Owner<Ts>*... owners) -> status {
          if ((detail::store_access::closed(*owners) || ...)) return status::closed;
          std::tuple<Ts&...> slots(detail::store_access::state(*owners).cell.stage_slot()...);
          std::apply(
              [&](Ts&... slot) {
                ((slot = detail::store_access::state(*owners).cell.current()), ...);
              },
              slots);
          const bool go =
              std::apply([&](Ts&... slot) { return detail::call_update(fn, slot...); }, slots);
          if (!go) return status::ok;
          return commit(detail::store_access::state(*owners)...);
        },
        owners_);
  }

 private:
  template <class... States>
  status commit(States&... states) {
    detail::commit_cells(states.cell...);
    // Every store's ready subscribers get their part before anyone waits for a full one.
    (states.offer_all(), ...);
    // Every store waits (or, once the stop fired, tells its full subscribers they missed it).
    status result = status::ok;
    auto wait = [&](auto& state) {
      const status s = state.wait_blocked(&stop_, std::nullopt);
      if (result == status::ok) result = s;
    };
    (wait(states), ...);
    return result;
  }

  std::tuple<Owner<Ts>*...> owners_;
  std::stop_token stop_;
};

/// Several owners acting as one (see Joint).
template <class... Ts>
Joint<Ts...> joint(Owner<Ts>&... owners) {
  return Joint<Ts...>(owners...);
}

namespace detail {

template <class V>
struct readable_store : std::false_type {};
template <class T, unsigned Caps>
struct readable_store<StoreView<T, Caps>> : std::bool_constant<(Caps & capability::get) != 0> {};
template <class T>
struct readable_store<Owner<T>> : std::true_type {};

}  // namespace detail

/// A consistent copy of several stores' values, as a tuple in argument order: no change (joint
/// or not) to any of them overlapped it, so it holds all of a joint change or none of it.
/// Never waits for the owners' work; retries while a change is being committed. Arguments are
/// views with the get capability, or owners; a store may appear more than once.
template <class... Views>
auto snapshot(const Views&... views) {
  static_assert(sizeof...(Views) >= 1, "custody::snapshot needs at least one store");
  static_assert((detail::readable_store<Views>::value && ...),
                "custody::snapshot: every argument must be a store view with the get capability "
                "(Getter, GetSetter, GetSubscriber, Store) or an Owner");
  return detail::joint_load(detail::store_access::state(views).cell...);
}

}  // namespace custody
