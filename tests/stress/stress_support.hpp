#pragma once
// Shared helpers of the stress tests: seed, duration, random numbers, counters.
//
//   CUSTODY_STRESS_SEED=<n>      replay a run (every test prints the seed it used)
//   CUSTODY_STRESS_SECONDS=<s>   how long each test runs (default 5; fractions allowed)
//
// A stress test runs rounds until its time is up; every round draws its parameters (channel
// kind, capacity, thread counts, when to stop or close) from a generator seeded with the run's
// seed and the round number, and ends with conservation checks. Thread scheduling is not
// replayed, but the parameters of every round are.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/status.hpp>

namespace custody {
// Lets GoogleTest print a status by name.
inline void PrintTo(status s, std::ostream* os) { *os << to_string(s); }
}  // namespace custody

namespace stress {

using clock = std::chrono::steady_clock;

inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(raw, &end, 10);
  if (end == raw || *end != '\0') {
    std::fprintf(stderr, "stress: ignoring invalid %s='%s'\n", name, raw);
    return fallback;
  }
  return v;
}

/// The run's seed: CUSTODY_STRESS_SEED, or a fresh one. Printed by every test that uses it.
inline std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    const std::uint64_t fresh = (std::uint64_t{std::random_device{}()} << 32) ^
                                std::random_device{}() ^
                                static_cast<std::uint64_t>(clock::now().time_since_epoch().count());
    return env_u64("CUSTODY_STRESS_SEED", fresh % 1'000'000'000'000ull);
  }();
  return seed;
}

/// How long each stress test runs.
inline std::chrono::milliseconds duration() {
  const char* raw = std::getenv("CUSTODY_STRESS_SECONDS");
  double seconds = 5.0;
  if (raw != nullptr && *raw != '\0') {
    char* end = nullptr;
    const double v = std::strtod(raw, &end);
    if (end != raw && *end == '\0' && v > 0) seconds = v;
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

/// SplitMix64: mixes the seed with a salt (the round number, a thread number...).
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// A small, fast generator (xoshiro-like quality is not needed here).
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(mix(seed) | 1) {}
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  /// Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  /// Uniform in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  /// True with probability 1/n.
  bool one_in(std::uint64_t n) { return below(n) == 0; }
  template <class C>
  auto pick(const C& c) -> decltype(*std::begin(c)) {
    return *(std::begin(c) + static_cast<std::ptrdiff_t>(below(std::size(c))));
  }

 private:
  std::uint64_t state_;
};

/// Runs rounds until the test's time is up; prints the seed first and a summary at the end.
/// `round(rng&, round_number)` returns the number of operations it performed.
class runner {
 public:
  explicit runner(std::string name) : name_(std::move(name)) {
    std::printf("[stress] %s: seed %llu, %lld ms (replay: CUSTODY_STRESS_SEED=%llu)\n",
                name_.c_str(), static_cast<unsigned long long>(base_seed()),
                static_cast<long long>(duration().count()),
                static_cast<unsigned long long>(base_seed()));
    std::fflush(stdout);
  }

  template <class Round>
  void run(Round&& round) {
    const auto start = clock::now();
    const auto end = start + duration();
    const std::uint64_t salt = std::hash<std::string>{}(name_);
    for (std::uint64_t n = 0; clock::now() < end || n == 0; ++n) {
      rng r(mix(base_seed() ^ mix(salt + n)));
      operations_ += round(r, n);
      ++rounds_;
      if (::testing::Test::HasFailure()) {
        std::printf("[stress] %s: FAILED in round %llu (seed %llu)\n", name_.c_str(),
                    static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(base_seed()));
        return;
      }
    }
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    std::printf("[stress] %s: %llu rounds, %llu operations, %llu stops, %.1f s\n", name_.c_str(),
                static_cast<unsigned long long>(rounds_),
                static_cast<unsigned long long>(operations_),
                static_cast<unsigned long long>(stops_.load()), secs);
    std::fflush(stdout);
  }

  /// Counts a stop (a stop token fired or a channel/store closed at a random moment).
  void count_stop() { stops_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::string name_;
  std::uint64_t rounds_ = 0;
  std::uint64_t operations_ = 0;
  std::atomic<std::uint64_t> stops_{0};
};

/// Sleeps for a random short time (0 to `max_us` microseconds), or just yields.
/// How long the tasks took to join after each random stop: flags slow joins as they happen
/// and reports the distribution. A stop must never take longer than `hang_limit` (or, with
/// CUSTODY_STRESS_STRICT=1, than `join_limit`), and at most 1% may exceed `join_limit`: a
/// loaded machine delays single joins, a lost wake-up delays every one.
class stop_joins {
 public:
  static constexpr std::chrono::microseconds join_limit{100'000};
  static constexpr std::chrono::microseconds hang_limit{1'000'000};

  explicit stop_joins(std::uint64_t stops) : strict_(env_u64("CUSTODY_STRESS_STRICT", 0) != 0) {
    joins_.reserve(stops);
  }

  /// Records stop `i` (requested `after` into the run); false when the join took too long.
  [[nodiscard]] bool add(std::uint64_t i, std::chrono::microseconds join,
                         std::chrono::microseconds after) {
    joins_.push_back(join.count());
    if (join > join_limit) {
      ++over_limit_;
      std::printf("[stress] stop %llu: the tasks took %lld us to join (stopped %lld us in)\n",
                  static_cast<unsigned long long>(i), static_cast<long long>(join.count()),
                  static_cast<long long>(after.count()));
    }
    return join <= (strict_ ? join_limit : hang_limit);
  }

  /// Prints the distribution and checks the 1% bound.
  void report(const char* test) {
    std::sort(joins_.begin(), joins_.end());
    const auto pct = [&](double p) {
      return joins_.empty() ? 0
                            : joins_[std::min(joins_.size() - 1, std::size_t(p * joins_.size()))];
    };
    std::printf(
        "[stress] %s: %llu stops; join after stop: median %lld us, p99 %lld us, max %lld us; "
        "%llu over %lld us\n",
        test, static_cast<unsigned long long>(joins_.size()), static_cast<long long>(pct(0.5)),
        static_cast<long long>(pct(0.99)), static_cast<long long>(pct(1.0)),
        static_cast<unsigned long long>(over_limit_), static_cast<long long>(join_limit.count()));
    EXPECT_LE(over_limit_ * 100, joins_.size())
        << "more than 1% of the stops took over 100 ms to join";
  }

 private:
  bool strict_;
  std::uint64_t over_limit_ = 0;
  std::vector<std::int64_t> joins_;
};

inline void jitter(rng& r, std::uint64_t max_us) {
  const std::uint64_t us = r.below(max_us + 1);
  if (us < 5) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
}

}  // namespace stress
