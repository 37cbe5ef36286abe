#pragma once
// Shared parts of the fuzz targets: a byte reader, counted value types, and a check macro.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace fuzz {

/// Reads the input one byte at a time; 0 once it is exhausted.
class bytes {
 public:
  bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }
  /// A value in [0, n).
  unsigned below(unsigned n) { return n ? next() % n : 0; }
  bool flag() { return next() & 1; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// A capacity from one byte: mostly small, sometimes 0, sometimes larger.
inline std::size_t capacity_from(std::uint8_t b) {
  static constexpr std::size_t table[16] = {0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 7, 8, 16, 31, 64, 100};
  return table[b & 15];
}

/// Fails the run (libFuzzer reports the input) with a message.
[[noreturn]] inline void fail(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  std::abort();
}
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : ::fuzz::fail(__FILE__, __LINE__, #cond))

/// Live objects of the counted types: values held by channels plus temporaries.
inline long live = 0;

/// A value whose move never throws (buffered channels use the lock-free ring for it).
struct safe {
  int v;
  explicit safe(int x) : v(x) { ++live; }
  safe(safe&& o) noexcept : v(std::exchange(o.v, -1)) { ++live; }
  safe& operator=(safe&& o) noexcept {
    v = std::exchange(o.v, -1);
    return *this;
  }
  safe(const safe&) = delete;
  safe& operator=(const safe&) = delete;
  ~safe() { --live; }
};

/// A value whose next move throws once `throw_next` is set (the locked ring).
inline bool throw_next = false;
struct move_error : std::runtime_error {
  move_error() : std::runtime_error("move") {}
};
struct risky {
  int v;
  explicit risky(int x) : v(x) { ++live; }
  risky(risky&& o) noexcept(false) : v(o.v) {
    if (throw_next) {
      throw_next = false;
      throw move_error();
    }
    o.v = -1;
    ++live;
  }
  risky& operator=(risky&& o) noexcept(false) {
    if (throw_next) {
      throw_next = false;
      throw move_error();
    }
    v = std::exchange(o.v, -1);
    return *this;
  }
  risky(const risky&) = delete;
  risky& operator=(const risky&) = delete;
  ~risky() { --live; }
};

}  // namespace fuzz
