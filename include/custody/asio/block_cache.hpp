#pragma once
// The memory of asynchronous operations whose handler brings no allocator: a few freed blocks
// kept per thread for the next operation of the same size, so that a coroutine that sends and
// receives in a loop does not go to the heap for every operation.
//
// Asio's own recycling allocator caches two blocks per thread, and the io_context's posts take
// them too; an operation's block and a post's block then push each other out of the cache on
// every operation. This cache holds operation blocks only.

#include <array>
#include <cstddef>
#include <new>

namespace custody::detail {

/// Freed blocks of the calling thread. A block freed on another thread than the one that
/// allocated it joins the freeing thread's cache.
class block_cache {
 public:
  /// Sizes are rounded up to this, so that operations whose sizes differ by a few bytes (a
  /// send's and a receive's on one channel) share blocks.
  static constexpr std::size_t granule = 64;

  static constexpr std::size_t rounded(std::size_t size) noexcept {
    return (size + granule - 1) / granule * granule;
  }

  /// A block of at least `size` bytes, aligned for any type of fundamental alignment.
  static void* allocate(std::size_t size) {
    size = rounded(size);
    for (entry& e : local().entries_) {
      if (e.block && e.size == size) {
        void* block = e.block;
        e.block = nullptr;
        return block;
      }
    }
    return ::operator new(size);
  }

  /// Gives back a block `allocate(size)` returned.
  static void deallocate(void* block, std::size_t size) noexcept {
    size = rounded(size);
    for (entry& e : local().entries_) {
      if (!e.block) {
        e = {block, size};
        return;
      }
    }
    ::operator delete(block);
  }

  block_cache() = default;
  block_cache(const block_cache&) = delete;
  block_cache& operator=(const block_cache&) = delete;
  ~block_cache() {
    for (entry& e : entries_) ::operator delete(e.block);
  }

 private:
  struct entry {
    void* block = nullptr;
    std::size_t size = 0;
  };

  static block_cache& local() noexcept {
    thread_local block_cache cache;
    return cache;
  }

  // Enough for the operations one thread has in flight in a lockstep exchange (its own, and
  // those whose peers it completes); more are freed at once.
  std::array<entry, 4> entries_{};
};

/// A standard allocator over block_cache.
template <class T>
class block_cache_allocator {
 public:
  using value_type = T;

  block_cache_allocator() noexcept = default;
  template <class U>
  block_cache_allocator(const block_cache_allocator<U>&) noexcept {}  // NOLINT: as allocators do

  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                  "custody: block_cache serves fundamental alignments only");
    return static_cast<T*>(block_cache::allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { block_cache::deallocate(p, n * sizeof(T)); }

  template <class U>
  bool operator==(const block_cache_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace custody::detail
