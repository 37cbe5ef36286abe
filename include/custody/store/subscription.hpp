#pragma once
// Subscription<T>: the receiving end of one store subscription.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

#include "../channel.hpp"
#include "../detail/store_subscriber.hpp"
#include "policy.hpp"

namespace custody {

namespace detail {
template <class T>
class store_state;
}

/// A Receiver<T> of a store's updates (use it with recv, range-for or select), plus the count
/// of updates it missed.
///
/// - Receives every update published after subscribe() returned, subject to its policy; with
///   policy::with_current() the first value is the store's value at subscribe time (or newer).
/// - When the owner is gone it drains what it holds, then reports status::closed.
/// - Dropping every copy of it (and every Receiver<T> copied from it) unsubscribes: the owner
///   stops delivering to it and is never held back by it again.
/// - Copies share the subscription. Thread-safety as for Receiver<T>.
template <class T>
class Subscription : public Receiver<T> {
 public:
  /// A nil subscription (like a nil Receiver: never ready in a select).
  Subscription() = default;

  /// How many updates this subscription lost before the values received so far and not yet
  /// taken with take_missed(). Exact: after receiving a value, it counts every update lost
  /// before that value. An update is lost when it is overwritten unread (policy::buffer,
  /// policy::latest), when the owner's publish gave up waiting for room (policy::block: its
  /// stop token or deadline), or when delivering it threw (copying T, or std::bad_alloc).
  std::uint64_t missed() const { return core().missed(); }
  /// As missed(), and resets the count. A non-zero count means "resync with get()".
  std::uint64_t take_missed() { return core().take_missed(); }

  /// The policy this subscription was made with.
  const custody::policy& policy() const noexcept { return policy_; }

 private:
  template <class>
  friend class detail::store_state;
  template <class, unsigned>
  friend class StoreView;

  Subscription(std::shared_ptr<detail::chan_core<T>> core, custody::policy p) noexcept
      : Receiver<T>(std::move(core)), policy_(p) {}

  detail::sub_core<T>& core() const {
    if (!this->core_ptr()) throw std::logic_error("custody: operation on a nil Subscription");
    return static_cast<detail::sub_core<T>&>(*this->core_ptr());
  }

  custody::policy policy_ = custody::policy::latest();
};

}  // namespace custody
