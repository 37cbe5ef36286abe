#pragma once
// The current value of a store: written by its owner alone, read by any number of threads.
//
// Two kinds of cell, chosen by the value type (see snapshot_cell):
// - seqlock_cell, for trivially copyable T of up to seqlock_max_size bytes: a reader copies the
// value optimistically and
//   retries if a commit overlapped its copy. A read is a handful of loads and writes no shared
//   memory, so readers never slow each other down (measured: about 15 ns, against about 126 ns
//   for a mutex and 266 ns for std::atomic<std::shared_ptr> in the same shape).
// - pinned_cell, for every other T (a copy could crash if it raced a write, or a large one
//   could keep retrying under an owner that publishes without pause): a few copies of
//   the value. A reader pins the current copy with an increment on a counter of its own
//   stripe, re-checks that it is still current and copies from it; the owner writes into a
//   copy nobody has pinned and then switches to it. Readers never wait for the owner; the
//   owner waits only while readers pin every spare copy at once.
//
// Both keep a sequence word that is odd while a commit is in progress and grows with every
// commit, and a version that grows by one per commit. Readers of several stores at once
// (joint snapshots) validate against the sequence words; subscriptions use the versions to
// order the current value against updates.
//
// Writer protocol, used for one store or several changed together (commit_cells):
//   T& slot = cell.stage_slot();   // fill in the next value (nobody reads it yet)
//   cell.begin();                  // for every cell of the change: sequence word odd
//   cell.apply();                  // for every cell: release stores, after every begin()
//   cell.end();                    // for every cell: sequence word even again
// No fences: the orderings ride on acquire loads and release stores (which cost nothing
// extra on x86), and ThreadSanitizer understands them.

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "interleave.hpp"
#include "spin.hpp"

namespace custody::detail {

/// A number per thread, used to spread readers over counter stripes.
inline std::uint32_t reader_stripe() noexcept {
  static atomic<std::uint32_t> next{0};
  // Constant-initialised, so reading it needs no thread_local guard on every call.
  thread_local std::uint32_t mine = 0;
  if (mine == 0) mine = next.fetch_add(1, std::memory_order_relaxed) + 1;
  return mine;
}

/// Waiting for a commit to finish: a commit is a few stores, so spin first; yield in case the
/// owner was preempted in the middle of one.
class commit_backoff {
 public:
  void wait() noexcept {
    if (++rounds_ < 64) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }

 private:
  unsigned rounds_ = 0;
};

template <class T>
class seqlock_cell {
  static_assert(std::is_trivially_copyable_v<T>);
  static constexpr std::size_t words =
      (sizeof(T) + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t);
  using raw = std::array<std::uint64_t, words>;

 public:
  using value_type = T;

  explicit seqlock_cell(const T& initial) noexcept : current_(initial), staged_(initial) {
    store_words(initial);
    seq_.store(2, std::memory_order_release);  // version 1
  }

  seqlock_cell(const seqlock_cell&) = delete;
  seqlock_cell& operator=(const seqlock_cell&) = delete;

  // --- readers (any thread) -------------------------------------------------------------

  T load() const noexcept { return load_versioned().first; }

  std::pair<T, std::uint64_t> load_versioned() const noexcept {
    commit_backoff b;
    for (;;) {
      const std::uint64_t s1 = seq_.load(std::memory_order_acquire);
      if ((s1 & 1) == 0) {
        const raw r = load_words();
        if (seq_.load(std::memory_order_relaxed) == s1) return {from_raw(r), s1 >> 1};
      } else {
        b.wait();
      }
    }
  }

  /// Calls fn with a consistent copy; its result is returned by value (decayed), so nothing
  /// refers into the copy once it is gone.
  template <class F>
  std::remove_cvref_t<std::invoke_result_t<F&, const T&>> read(F& fn) const {
    const T copy = load();
    return std::invoke(fn, copy);
  }

  // --- joint readers --------------------------------------------------------------------

  std::uint64_t sequence() const noexcept { return seq_.load(std::memory_order_acquire); }
  bool unchanged(std::uint64_t seq) const noexcept {
    return seq_.load(std::memory_order_relaxed) == seq;
  }
  /// A copy that may be torn; valid only if the sequence word did not change around it.
  T read_unchecked() const noexcept { return from_raw(load_words()); }

  // --- the owner ------------------------------------------------------------------------

  /// The committed value; only the owner may call it (it is the only writer).
  const T& current() const noexcept { return current_; }
  std::uint64_t version() const noexcept { return version_; }

  /// Where to put the next value. Nothing is visible until the commit.
  T& stage_slot() noexcept { return staged_; }
  void begin() noexcept {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void apply() noexcept { store_words(staged_); }
  void end() noexcept {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    current_ = staged_;
    ++version_;
  }

 private:
  // Acquire: the re-check of the sequence word cannot move before these loads; if one of
  // them saw a word of a newer commit, the re-check sees that commit's odd sequence word.
  raw load_words() const noexcept {
    raw r;
    for (std::size_t i = 0; i < words; ++i) r[i] = data_[i].load(std::memory_order_acquire);
    return r;
  }

  // Release: the odd sequence word stored by begin() (of this cell and of every other cell
  // of a joint change) is visible to whoever sees one of these words.
  void store_words(const T& value) noexcept {
    raw r{};
    std::memcpy(r.data(), &value, sizeof(T));
    for (std::size_t i = 0; i < words; ++i) data_[i].store(r[i], std::memory_order_release);
  }

  static T from_raw(const raw& r) noexcept {
    std::array<unsigned char, sizeof(T)> bytes;
    std::memcpy(bytes.data(), r.data(), sizeof(T));
    return std::bit_cast<T>(bytes);
  }

  // The words are atomics so that an overlapping copy is a stale read, not a data race.
  alignas(64) atomic<std::uint64_t> seq_{0};
  atomic<std::uint64_t> data_[words];
  // Owner-only: the committed value and the next one, kept as T for delivery to subscribers.
  alignas(64) T current_;
  T staged_;
  std::uint64_t version_ = 1;
};

template <class T, std::uint32_t Copies = 6>
class pinned_cell {
  static_assert(Copies >= 3 && Copies <= 8);
  static constexpr std::uint32_t stripes = 8;
  static constexpr std::uint32_t index_bits = 3;
  static constexpr std::uint64_t index_mask = (1u << index_bits) - 1;

 public:
  using value_type = T;

  explicit pinned_cell(const T& initial) {
    std::uint32_t made = 0;
    try {
      for (; made < Copies; ++made) std::construct_at(&slots_[made].value, initial);
    } catch (...) {
      while (made > 0) std::destroy_at(&slots_[--made].value);
      throw;
    }
    current_.store(pack(1, 0), std::memory_order_release);
  }
  ~pinned_cell() {
    for (std::uint32_t i = 0; i < Copies; ++i) std::destroy_at(&slots_[i].value);
  }

  pinned_cell(const pinned_cell&) = delete;
  pinned_cell& operator=(const pinned_cell&) = delete;

  // --- readers (any thread) -------------------------------------------------------------

  T load() const {
    return with_pinned([](const T& v, std::uint64_t) { return T(v); });
  }

  std::pair<T, std::uint64_t> load_versioned() const {
    return with_pinned(
        [](const T& v, std::uint64_t version) { return std::pair<T, std::uint64_t>(v, version); });
  }

  /// Calls fn with the pinned current value, without copying it. Its result is returned by
  /// value (decayed) and made while the value is still pinned: a reference into the value
  /// would dangle (and race the owner's next write) once it is unpinned.
  template <class F>
  std::remove_cvref_t<std::invoke_result_t<F&, const T&>> read(F& fn) const {
    using result = std::remove_cvref_t<std::invoke_result_t<F&, const T&>>;
    return with_pinned([&](const T& v, std::uint64_t) -> result { return std::invoke(fn, v); });
  }

  // --- joint readers --------------------------------------------------------------------

  std::uint64_t sequence() const noexcept { return seq_.load(std::memory_order_acquire); }
  bool unchanged(std::uint64_t seq) const noexcept {
    return seq_.load(std::memory_order_relaxed) == seq;
  }
  T read_unchecked() const { return load(); }

  // --- the owner ------------------------------------------------------------------------

  const T& current() const noexcept {
    return slots_[current_.load(std::memory_order_relaxed) & index_mask].value;
  }
  std::uint64_t version() const noexcept {
    return current_.load(std::memory_order_relaxed) >> index_bits;
  }

  /// A copy that no reader can be reading and that is not current. Its old contents are still
  /// there (assigning over them reuses their storage).
  T& stage_slot() noexcept {
    staged_ = pick_free();
    return slots_[staged_].value;
  }
  void begin() noexcept {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void apply() noexcept {
    free_ &= ~(1u << staged_);
    // seq_cst: pairs with the reader's pin and re-check (see with_pinned).
    current_.store(pack(version() + 1, staged_), std::memory_order_seq_cst);
  }
  void end() noexcept {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

 private:
  struct alignas(64) slot {
    slot() noexcept {}
    ~slot() {}
    union {
      T value;
    };
  };
  struct alignas(64) stripe {
    atomic<std::uint32_t> pins[Copies]{};
  };

  static constexpr std::uint64_t pack(std::uint64_t version, std::uint32_t index) noexcept {
    return (version << index_bits) | index;
  }

  class unpin {
   public:
    explicit unpin(atomic<std::uint32_t>& counter) noexcept : counter_(counter) {}
    unpin(const unpin&) = delete;
    unpin& operator=(const unpin&) = delete;
    // release: the copy out of the slot happens before the owner may overwrite it.
    ~unpin() { counter_.fetch_sub(1, std::memory_order_release); }

   private:
    atomic<std::uint32_t>& counter_;
  };

  // Pin, then re-check. The pin and the re-check are seq_cst, as are the owner's switch and
  // its look at the pins: either the owner sees our pin before it reuses the copy, or we see
  // that the copy is no longer current and let go of it unread.
  template <class F>
  decltype(auto) with_pinned(F&& fn) const {
    stripe& s = stripes_[reader_stripe() % stripes];
    for (;;) {
      const std::uint32_t index =
          static_cast<std::uint32_t>(current_.load(std::memory_order_acquire) & index_mask);
      s.pins[index].fetch_add(1, std::memory_order_seq_cst);
      const std::uint64_t now = current_.load(std::memory_order_seq_cst);
      if ((now & index_mask) == index) {
        unpin guard(s.pins[index]);
        return fn(slots_[index].value, now >> index_bits);
      }
      s.pins[index].fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // A copy that is not current and that no reader pinned since it stopped being current stays
  // free until the owner makes it current again: a reader that pins it later sees that it is
  // not current and lets go unread. So one look at the pins finds several free copies, and
  // the readers' counters are read (pulled away from their cores) only every few commits.
  std::uint32_t pick_free() noexcept {
    commit_backoff b;
    while (free_ == 0) {
      const std::uint32_t current =
          static_cast<std::uint32_t>(current_.load(std::memory_order_relaxed) & index_mask);
      std::uint32_t pinned = 1u << current;
      for (const stripe& s : stripes_) {
        for (std::uint32_t i = 0; i < Copies; ++i) {
          if (s.pins[i].load(std::memory_order_seq_cst) != 0) pinned |= 1u << i;
        }
      }
      free_ = ~pinned & ((1u << Copies) - 1);
      if (free_ == 0) b.wait();
    }
    return static_cast<std::uint32_t>(std::countr_zero(free_));
  }

  alignas(64) atomic<std::uint64_t> current_{0};  // (version << index_bits) | index
  atomic<std::uint64_t> seq_{2};
  mutable stripe stripes_[stripes];
  slot slots_[Copies];
  std::uint32_t staged_ = 0;  // owner-only
  std::uint32_t free_ = 0;    // owner-only: copies known to be free
};

/// The largest trivially copyable value that takes the seqlock. A reader's optimistic copy
/// must fit between two commits: a larger value under an owner that publishes without pause
/// made one get() retry for tens to hundreds of milliseconds, while a pinned reader retries
/// only when a commit lands between its two loads of the current index. Measured with
/// custody-bench-store_get_wait (a 4 KiB value, 200000 gets, loaded 2-core VM): seqlock
/// median 461-481 ns, p99.9 792-832 ns, slowest 48-60 ms (up to 480 ms seen); pinned median
/// 70-71 ns, p99.9 170-221 ns, slowest 10-21 ms (the reader thread losing its core).
inline constexpr std::size_t seqlock_max_size = 256;

/// The cell a store of T uses. Small trivially copyable values take the seqlock: measured on
/// the two-reader benchmark it is several times faster than pinning, and its optimistic copy
/// is harmless for such types. Larger ones, and every other T, are pinned.
template <class T>
using snapshot_cell =
    std::conditional_t<std::is_trivially_copyable_v<T> && sizeof(T) <= seqlock_max_size,
                       seqlock_cell<T>, pinned_cell<T>>;

/// Commits the staged values of several cells as one change: a joint reader sees all of them
/// or none. Cells must be distinct.
template <class... Cells>
void commit_cells(Cells&... cells) noexcept {
  (cells.begin(), ...);
  (cells.apply(), ...);
  (cells.end(), ...);
}

/// A consistent copy of several cells: no commit to any of them overlapped the copies.
template <class... Cells>
std::tuple<typename Cells::value_type...> joint_load(const Cells&... cells) {
  constexpr std::size_t n = sizeof...(Cells);
  commit_backoff b;
  for (;;) {
    const std::array<std::uint64_t, n> seqs{cells.sequence()...};
    bool stable = true;
    for (std::uint64_t s : seqs) stable = stable && (s & 1) == 0;
    if (!stable) {
      b.wait();
      continue;
    }
    // Braced initialisation runs left to right, after the sequence words were read.
    // The copies end with acquire loads, so the re-checks below come after them.
    std::tuple<typename Cells::value_type...> values{cells.read_unchecked()...};
    std::size_t i = 0;
    if ((cells.unchanged(seqs[i++]) && ...)) return values;
  }
}

}  // namespace custody::detail
