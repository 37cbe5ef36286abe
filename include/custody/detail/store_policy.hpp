#pragma once
// How updates reach one subscriber. Chosen per subscriber, at subscribe().

#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace custody {

/// The delivery policy of one subscription.
///
///   store.subscribe(custody::policy::latest());                 // newest value only
///   store.subscribe(custody::policy::buffer(64));               // newest 64, lag counted
///   store.subscribe(custody::policy::block(16).with_current()); // lossless, current value first
class policy {
 public:
  /// The kind of delivery.
  enum class mode : std::uint8_t {
    block,   ///< lossless while the owner waits; a full subscriber holds its publish back
    latest,  ///< conflating: one slot, overwritten; never holds the owner back
    buffer,  ///< the newest n; older ones are overwritten and counted as missed
  };

  /// The capacity of block() when none is given: deep enough that a subscriber thread that
  /// loses its core for a while (threads outnumber cores) does not stall a busy owner at once;
  /// the owner is held back only by a subscriber that really falls behind. Measured on the
  /// two-subscriber fanout benchmark (2 cores): 64 slots take ~1.5x the time of Go's
  /// unbuffered fanout, 256 slots ~0.5x.
  static constexpr std::size_t default_block_capacity = 256;
  /// Lossless: keeps up to `capacity` unread updates. Once that many are unread, the owner's
  /// publish waits (it can be given a stop token or deadline) until the subscriber has taken
  /// at least half of them, so that a subscriber catching up does not wake the owner once per
  /// update. Storage grows with the backlog, so an unused capacity costs nothing. block(1) is
  /// the seed's lockstep: every publish waits until the subscriber took the previous update.
  /// A publish that gives up waiting (its stop token or deadline) stores the value anyway;
  /// the full subscriber then misses that update, and Subscription::missed() counts it.
  /// Throws std::invalid_argument if capacity is 0: a subscriber always has a slot, so the
  /// owner never waits for one to wake up.
  static constexpr policy block(std::size_t capacity = default_block_capacity) {
    return policy(mode::block,
                  checked(capacity, "custody::policy::block: capacity must be at least 1"));
  }
  /// Conflating (like tokio's watch): one slot that the owner overwrites; the subscriber wakes
  /// to the newest value. Never holds the owner back.
  static constexpr policy latest() noexcept { return policy(mode::latest, 1); }
  /// Keeps the newest `n` unread updates; when an older one is overwritten it is counted, and
  /// Subscription::take_missed() tells the subscriber how many it missed, so it can resync
  /// with get(). Never holds the owner back. Throws std::invalid_argument if n is 0.
  static constexpr policy buffer(std::size_t n) {
    return policy(mode::buffer, checked(n, "custody::policy::buffer: capacity must be at least 1"));
  }

  /// The same policy, but the subscription starts with the store's current value (or a newer
  /// one, if an update is published meanwhile).
  constexpr policy with_current(bool yes = true) const noexcept {
    policy p = *this;
    p.current_first_ = yes;
    return p;
  }

  /// block, latest or buffer.
  constexpr mode kind() const noexcept { return mode_; }
  /// The number of unread updates the subscription holds (1 for latest).
  constexpr std::size_t capacity() const noexcept { return capacity_; }
  /// True when the subscription starts with the store's current value (with_current()).
  constexpr bool current_first() const noexcept { return current_first_; }
  /// True when a full subscriber makes the owner wait.
  constexpr bool lossless() const noexcept { return mode_ == mode::block; }

  friend constexpr bool operator==(const policy&, const policy&) = default;

 private:
  constexpr policy(mode m, std::size_t capacity) noexcept : capacity_(capacity), mode_(m) {}

  static constexpr std::size_t checked(std::size_t n, const char* message) {
    if (n == 0) throw std::invalid_argument(message);
    return n;
  }

  std::size_t capacity_;
  mode mode_;
  bool current_first_ = false;
};

}  // namespace custody
