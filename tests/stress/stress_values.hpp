#pragma once
// Value types of the channel and select stress tests, and the ledger that checks conservation.
//
// Every value carries the pair (producer, sequence number), unique within a round. A move
// empties its source, so a value that a failed send has moved from (lost) is told apart from a
// value that stayed with its sender.
//
// - plain:   trivially small, moves never throw (lock-free ring behind buffered channels);
// - boxed:   std::unique_ptr, so AddressSanitizer sees a lost or doubly-freed value;
// - fragile: its move may throw (locked ring behind buffered channels). Only moves out of the
//            sender's own object throw: they happen inside send, select and try_send, which
//            promise that the value then stays with the sender. (Moves after a receive has
//            committed, e.g. into the received<T> result, never throw here: a throw there would
//            lose the value by design of returning it.)

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "stress_support.hpp"

namespace stress {

constexpr std::uint32_t none = 0xFFFFFFFFu;

struct id {
  std::uint32_t producer = none;
  std::uint32_t seq = none;
  friend bool operator==(const id&, const id&) = default;
};

struct plain {
  id v;
  plain(std::uint32_t p, std::uint32_t s) : v{p, s} {}
  plain(plain&& o) noexcept : v(std::exchange(o.v, id{})) {}
  plain& operator=(plain&& o) noexcept {
    v = std::exchange(o.v, id{});
    return *this;
  }
  plain(const plain&) = delete;
  plain& operator=(const plain&) = delete;
};

using boxed = std::unique_ptr<id>;

/// Throws from a move with probability 1 in `fragile_odds` while `fragile_enabled`.
inline std::atomic<bool> fragile_enabled{false};
inline std::atomic<std::uint64_t> fragile_throws{0};
constexpr std::uint64_t fragile_odds = 8;

struct fragile_error : std::runtime_error {
  fragile_error() : std::runtime_error("fragile move") {}
};

struct fragile {
  id v;
  bool armed = false;  // the sender's own object: its moves may throw
  fragile(std::uint32_t p, std::uint32_t s) : v{p, s}, armed(true) {}
  fragile(fragile&& o) noexcept(false) : v(o.v) {
    if (o.armed && fragile_enabled.load(std::memory_order_relaxed)) {
      thread_local rng r(mix(base_seed() ^ reinterpret_cast<std::uintptr_t>(&r)));
      if (r.one_in(fragile_odds)) {
        fragile_throws.fetch_add(1, std::memory_order_relaxed);
        throw fragile_error();
      }
    }
    o.v = id{};
  }
  fragile& operator=(fragile&& o) noexcept(false) {
    v = std::exchange(o.v, id{});
    return *this;
  }
  fragile(const fragile&) = delete;
  fragile& operator=(const fragile&) = delete;
};

template <class T>
struct kind;
template <>
struct kind<plain> {
  static constexpr const char* name = "plain";
  static plain make(std::uint32_t p, std::uint32_t s) { return plain(p, s); }
  static void emplace(std::optional<plain>& o, std::uint32_t p, std::uint32_t s) {
    o.emplace(p, s);
  }
  static id of(const plain& x) { return x.v; }
};
template <>
struct kind<boxed> {
  static constexpr const char* name = "boxed";
  static boxed make(std::uint32_t p, std::uint32_t s) { return std::make_unique<id>(id{p, s}); }
  static void emplace(std::optional<boxed>& o, std::uint32_t p, std::uint32_t s) {
    o.emplace(make(p, s));
  }
  static id of(const boxed& x) { return x ? *x : id{}; }
};
template <>
struct kind<fragile> {
  static constexpr const char* name = "fragile";
  static fragile make(std::uint32_t p, std::uint32_t s) { return fragile(p, s); }
  static void emplace(std::optional<fragile>& o, std::uint32_t p, std::uint32_t s) {
    o.emplace(p, s);
  }
  static id of(const fragile& x) { return x.v; }
};

/// Who holds every value of a round: the producers record each value's fate (sent, or kept),
/// the receivers count what they received. check() then demands: every value sent with ok
/// was received exactly once, and no value that stayed with its sender was received.
class ledger {
 public:
  enum fate : std::uint8_t { unused = 0, sent = 1, kept = 2 };

  ledger(std::uint32_t producers, std::uint32_t per_producer)
      : per_(per_producer),
        fate_(std::size_t{producers} * per_producer),
        received_(std::size_t{producers} * per_producer) {}

  void record(id v, fate f) {
    ASSERT_LT(v.seq, per_);
    auto& slot = fate_[index(v)];
    const std::uint8_t before = slot.exchange(f, std::memory_order_relaxed);
    EXPECT_EQ(before, unused) << "value " << v.producer << ":" << v.seq << " recorded twice";
  }

  /// A receiver got `v`. Returns false (and fails the test) if `v` is not a valid value.
  bool receive(id v) {
    if (v.producer == none || v.seq >= per_ || index(v) >= received_.size()) {
      ADD_FAILURE() << "received an empty or unknown value " << v.producer << ":" << v.seq;
      return false;
    }
    received_[index(v)].fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  /// Conservation, once every thread has joined and the channels are drained.
  void check(const char* what) const {
    std::uint64_t sent_n = 0, kept_n = 0, bad = 0;
    for (std::size_t i = 0; i < fate_.size(); ++i) {
      const auto f = fate_[i].load(std::memory_order_relaxed);
      const auto n = received_[i].load(std::memory_order_relaxed);
      const bool ok = (f == sent && n == 1) || (f != sent && n == 0);
      sent_n += f == sent;
      kept_n += f == kept;
      if (!ok && bad++ < 10) {
        ADD_FAILURE() << what << ": value " << i / per_ << ":" << i % per_ << " has fate " << int(f)
                      << " but was received " << n << " times";
      }
    }
    EXPECT_EQ(bad, 0u) << what << ": " << sent_n << " sent, " << kept_n << " kept";
  }

 private:
  std::size_t index(id v) const { return std::size_t{v.producer} * per_ + v.seq; }

  std::uint32_t per_;
  std::vector<std::atomic<std::uint8_t>> fate_;
  std::vector<std::atomic<std::uint32_t>> received_;
};

/// Runs one stress round on a randomly chosen value type: mostly plain values, sometimes
/// move-only boxes, sometimes values whose move may throw (armed only for that round).
template <class Round>
std::uint64_t round_of_random_kind(rng& r, Round&& round) {
  switch (r.below(6)) {
    case 0:
      return round.template operator()<boxed>();
    case 1: {
      fragile_enabled = true;
      const auto ops = round.template operator()<fragile>();
      fragile_enabled = false;
      return ops;
    }
    default:
      return round.template operator()<plain>();
  }
}

}  // namespace stress
