#pragma once
// The value type of the store stress tests, and the records that check them.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <custody/store.hpp>

namespace custody {
inline void PrintTo(set_status s, std::ostream* os) { *os << to_string(s); }
}  // namespace custody

namespace stress {

/// A store value: `n` counts the owner's publishes (1, 2, 3, ... in order), `req` names the set
/// request it answers (0: none). `twin` and `tag` repeat `n`, so a torn read shows.
struct reading {
  std::uint64_t n = 0;
  std::uint64_t req = 0;
  std::uint64_t twin = ~std::uint64_t{0};
  std::string tag = "0";

  static reading make(std::uint64_t n, std::uint64_t req) {
    return reading{n, req, ~n, std::to_string(n) + "/" + std::to_string(req)};
  }
  /// A set request asks for this; the owner decides `n`.
  static reading ask(std::uint64_t req) { return make(0, req); }

  bool consistent() const {
    return twin == ~n && tag == std::to_string(n) + "/" + std::to_string(req);
  }
};

/// What one subscription saw: its policy, the store's value before and after subscribing, and
/// each value received with the missed count taken right after it.
struct sub_log {
  custody::policy policy = custody::policy::latest();
  std::uint64_t before = 0;  // get() just before subscribe()
  std::uint64_t after = 0;   // get() just after subscribe() returned
  struct entry {
    std::uint64_t n;
    std::uint64_t missed;
  };
  std::vector<entry> got;
  bool drained = false;  // received until closed (did not unsubscribe early)
};

/// Checks one subscription against the owner's record of publishes. `published_ok[n]` tells
/// whether publish number n returned ok (n from 1 to `last`, the final value of the store).
inline void check_subscription(const sub_log& log, const std::vector<std::uint8_t>& published_ok,
                               std::uint64_t last, std::uint64_t& lost_total) {
  const bool lossless = log.policy.lossless();
  std::uint64_t prev = 0;
  bool first = true;
  for (const auto& e : log.got) {
    ASSERT_LE(e.n, last) << "received a value never published";
    if (first) {
      // An update committed just before subscribe() may still reach it, nothing older.
      EXPECT_GE(e.n, log.before) << "received an update older than the store's value";
      if (lossless) {
        for (std::uint64_t k = log.after + 1; k < e.n; ++k) {
          EXPECT_FALSE(published_ok[k])
              << "policy::block lost update " << k << " before its first value " << e.n;
        }
      } else {
        // Updates published after subscribe() returned and before this value were offered to
        // it, so they were overwritten and counted; nothing older can have been counted.
        if (e.n > log.after + 1) {
          EXPECT_GE(e.missed, e.n - log.after - 1) << "lost updates before the first value";
        }
        EXPECT_LE(e.missed, e.n - log.before) << "more updates counted missed than offered";
      }
    } else {
      ASSERT_GT(e.n, prev) << "values out of order or repeated";
      if (lossless) {
        // Nothing lost, except updates whose publish gave up waiting (stop).
        for (std::uint64_t k = prev + 1; k < e.n; ++k) {
          EXPECT_FALSE(published_ok[k])
              << "policy::block lost update " << k << " (got " << prev << " then " << e.n << ")";
        }
      } else {
        EXPECT_EQ(e.missed, e.n - prev - 1)
            << "lag count: got " << prev << " then " << e.n << " but missed() said " << e.missed;
      }
      lost_total += e.n - prev - 1;
    }
    if (lossless && !first) {
      // Counted exactly: the updates whose publish gave up waiting for this subscriber.
      std::uint64_t gave_up = 0;
      for (std::uint64_t k = prev + 1; k < e.n; ++k) gave_up += published_ok[k] ? 0 : 1;
      EXPECT_EQ(e.missed, gave_up) << "policy::block missed() between " << prev << " and " << e.n;
    }
    prev = e.n;
    first = false;
  }
  if (log.drained) {
    // Drained until closed: it holds the final value, unless that was published before it
    // subscribed or (block) its publish gave up on this subscriber.
    if (last > log.after) {
      if (lossless) {
        std::uint64_t last_ok = last;
        while (last_ok > log.after && !published_ok[last_ok]) --last_ok;
        if (last_ok > log.after) {
          EXPECT_GE(prev, last_ok) << "policy::block subscriber never got update " << last_ok;
        }
      } else {
        EXPECT_EQ(prev, last) << "subscriber did not end with the final value";
      }
    }
  }
}

}  // namespace stress
