#pragma once
// Schedule perturbation for tests: the "interleave" build (-DCUSTODY_INTERLEAVE=ON, preset
// `interleave`).
//
// Every atomic step, every lock (spinlock, mutex) and every futex sleep and wake in detail/ goes
// through detail::atomic and interleave_point(). In the interleave build each such point, driven by
// a per-thread generator, now and then yields the CPU or sleeps a few microseconds, so threads meet
// in the orders that a quiet machine almost never produces: a waker preempted between two stores, a
// waiter descheduled between registering and re-checking. In every other build detail::atomic<T> is
// std::atomic<T> itself and interleave_point() is an empty inline function: nothing is left of
// either.
//
// Seeds: CUSTODY_INTERLEAVE_SEED=<n> chooses the process's seed (otherwise one is drawn and
// printed on stderr at the first point, so a failing run's output says how to replay it). Each
// thread draws from its own stream, numbered in the order threads reach their first point, or
// fixed with interleave::bind_thread(). The same seed gives each stream the same decisions; the
// operating system's scheduling is not replayed, so a replay explores the same perturbations,
// not necessarily the same interleaving.

#include <atomic>
#include <type_traits>

#ifndef CUSTODY_INTERLEAVE
#define CUSTODY_INTERLEAVE 0
#endif

#if CUSTODY_INTERLEAVE
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#endif

namespace custody::detail {

#if !CUSTODY_INTERLEAVE

template <class T>
using atomic = std::atomic<T>;

/// A point where the interleave build may yield or sleep; nothing in this build.
inline void interleave_point() noexcept {}

static_assert(std::is_same_v<atomic<unsigned>, std::atomic<unsigned>>,
              "outside the interleave build detail::atomic is exactly std::atomic");

#else

namespace interleave {

/// SplitMix64 finaliser: turns a seed and a stream number into independent generator states.
constexpr std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Process-wide choice. Plain std::atomic: the perturbation must not perturb itself.
struct process_state {
  std::atomic<std::uint64_t> seed{0};
  std::atomic<std::uint64_t> epoch{0};  // 0: no seed chosen yet; bumped by every (re)seed
  std::atomic<unsigned> next_stream{0};
};

inline process_state& process() noexcept {
  static process_state state;
  return state;
}

/// Sets the seed and restarts stream numbering. Call while no other thread runs custody code
/// (the fuzz target calls it before starting each input's threads).
inline void reseed(std::uint64_t seed) noexcept {
  process_state& p = process();
  p.seed.store(seed, std::memory_order_relaxed);
  p.next_stream.store(0, std::memory_order_relaxed);
  p.epoch.fetch_add(1, std::memory_order_release);
}

/// The seed from CUSTODY_INTERLEAVE_SEED, or a fresh one; printed, so any failure can be replayed.
inline void seed_from_environment() noexcept {
  static const bool chosen = [] {
    std::uint64_t seed = 0;
    const char* raw = std::getenv("CUSTODY_INTERLEAVE_SEED");
    char* end = nullptr;
    if (raw != nullptr && *raw != '\0') seed = std::strtoull(raw, &end, 10);
    if (raw == nullptr || *raw == '\0' || end == raw || *end != '\0') {
      seed = mix(static_cast<std::uint64_t>(
                 std::chrono::steady_clock::now().time_since_epoch().count())) %
             1'000'000'000'000ull;
    }
    std::fprintf(stderr, "[interleave] seed %llu (replay: CUSTODY_INTERLEAVE_SEED=%llu)\n",
                 static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
    reseed(seed);
    return true;
  }();
  (void)chosen;
}

/// One thread's generator. `threshold` (out of 256) is how often this thread is perturbed;
/// it differs between threads so that some run nearly free while others crawl.
struct thread_state {
  std::uint64_t epoch = 0;
  std::uint64_t rng = 0;
  unsigned threshold = 0;
  int bound_stream = -1;
};

inline thread_state& this_thread_state() noexcept {
  thread_local thread_state state;
  return state;
}

/// Makes the calling thread draw from stream `stream` of the current seed, whatever the order
/// in which threads start: a program whose threads bind themselves replays their decisions.
inline void bind_thread(unsigned stream) noexcept {
  thread_state& t = this_thread_state();
  t.bound_stream = static_cast<int>(stream);
  t.epoch = 0;  // re-derive at the next point
}

/// The calling thread's next decision: -1 to run on, 0 to yield, n > 0 to sleep n microseconds.
inline int next_pause() noexcept {
  process_state& p = process();
  std::uint64_t epoch = p.epoch.load(std::memory_order_acquire);
  if (epoch == 0) {
    seed_from_environment();
    epoch = p.epoch.load(std::memory_order_acquire);
  }
  thread_state& t = this_thread_state();
  if (t.epoch != epoch) {
    const unsigned stream = t.bound_stream >= 0
                                ? static_cast<unsigned>(t.bound_stream)
                                : p.next_stream.fetch_add(1, std::memory_order_relaxed);
    t.epoch = epoch;
    t.rng = mix(p.seed.load(std::memory_order_relaxed) ^ mix(stream + 1ull)) | 1;
    static constexpr unsigned thresholds[4] = {4, 16, 48, 128};
    t.threshold = thresholds[t.rng >> 62];
  }
  // xorshift64*: one multiply per point.
  t.rng ^= t.rng >> 12;
  t.rng ^= t.rng << 25;
  t.rng ^= t.rng >> 27;
  const std::uint64_t r = t.rng * 0x2545F4914F6CDD1Dull;
  if ((r & 0xff) >= t.threshold) return -1;
  // Mostly yield (another runnable thread gets the core at once); one time in 16 sleep, long
  // enough for a peer on the other core to run through a whole operation. Sleeping more often
  // makes the tests crawl (a stop of the store pipeline then takes a second to join) without
  // finding more.
  if (((r >> 8) & 15) != 0) return 0;
  return 1 + static_cast<int>((r >> 12) % 20);
}

inline void point() noexcept {
  const int pause = next_pause();
  if (pause == 0) {
    std::this_thread::yield();
  } else if (pause > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(pause));
  }
}

}  // namespace interleave

/// A point where another thread is likely to get in: yields or sleeps now and then.
inline void interleave_point() noexcept { interleave::point(); }

/// std::atomic<T> with an interleave point before every operation. Same size and layout, and
/// usable wherever a std::atomic<T>& is expected (those calls are then not perturbed).
template <class T>
class atomic : public std::atomic<T> {
  using base = std::atomic<T>;
  using order = std::memory_order;
  static constexpr order seq_cst = std::memory_order_seq_cst;

 public:
  using base::base;
  atomic() = default;
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T operator=(T v) noexcept {
    interleave_point();
    return base::operator=(v);
  }
  operator T() const noexcept { return load(); }

  T load(order o = seq_cst) const noexcept {
    interleave_point();
    return base::load(o);
  }
  void store(T v, order o = seq_cst) noexcept {
    interleave_point();
    base::store(v, o);
  }
  T exchange(T v, order o = seq_cst) noexcept {
    interleave_point();
    return base::exchange(v, o);
  }
  bool compare_exchange_weak(T& expected, T desired, order success, order failure) noexcept {
    interleave_point();
    return base::compare_exchange_weak(expected, desired, success, failure);
  }
  bool compare_exchange_weak(T& expected, T desired, order o = seq_cst) noexcept {
    interleave_point();
    return base::compare_exchange_weak(expected, desired, o);
  }
  bool compare_exchange_strong(T& expected, T desired, order success, order failure) noexcept {
    interleave_point();
    return base::compare_exchange_strong(expected, desired, success, failure);
  }
  bool compare_exchange_strong(T& expected, T desired, order o = seq_cst) noexcept {
    interleave_point();
    return base::compare_exchange_strong(expected, desired, o);
  }
  template <class D>
  T fetch_add(D d, order o = seq_cst) noexcept {
    interleave_point();
    return base::fetch_add(d, o);
  }
  template <class D>
  T fetch_sub(D d, order o = seq_cst) noexcept {
    interleave_point();
    return base::fetch_sub(d, o);
  }
  template <class D>
  T fetch_and(D d, order o = seq_cst) noexcept {
    interleave_point();
    return base::fetch_and(d, o);
  }
  template <class D>
  T fetch_or(D d, order o = seq_cst) noexcept {
    interleave_point();
    return base::fetch_or(d, o);
  }
  template <class D>
  T fetch_xor(D d, order o = seq_cst) noexcept {
    interleave_point();
    return base::fetch_xor(d, o);
  }
  void wait(T old, order o = seq_cst) const noexcept {
    interleave_point();
    base::wait(old, o);
  }
  void notify_one() noexcept {
    interleave_point();
    base::notify_one();
  }
  void notify_all() noexcept {
    interleave_point();
    base::notify_all();
  }
};

static_assert(sizeof(atomic<unsigned>) == sizeof(std::atomic<unsigned>) &&
                  alignof(atomic<unsigned>) == alignof(std::atomic<unsigned>),
              "the interleave build keeps std::atomic's layout");

#endif

}  // namespace custody::detail
