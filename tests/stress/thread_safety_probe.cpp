// Proof that Clang's thread-safety analysis is really on for custody's locks (see
// include/custody/detail/thread_annotations.hpp). CI compiles this file twice with
// `clang++ -Wthread-safety -Werror -fsyntax-only`:
// - as it is, it must compile: guarded state touched under std::lock_guard / std::unique_lock;
// - with -DCUSTODY_PROBE_UNLOCKED it must be rejected with "requires holding spinlock": if the
//   annotations ever became no-ops, this would compile and CI would say so.
// Not a test executable (the stress glob takes *_test.cpp only).

#include <mutex>

#include <custody/detail/spin.hpp>

namespace {

class counter {
 public:
  void add() {
    std::lock_guard lock(lock_);
    ++value_;
  }
  int take() {
    std::unique_lock lock(lock_);
    const int v = value_;
    value_ = 0;
    lock.unlock();
    return v;
  }
#ifdef CUSTODY_PROBE_UNLOCKED
  int peek() const { return value_; }  // must be diagnosed: lock_ is not held
#endif

 private:
  mutable custody::detail::spinlock lock_;
  int value_ CUSTODY_GUARDED_BY(lock_) = 0;
};

}  // namespace

int main() {
  counter c;
  c.add();
#ifdef CUSTODY_PROBE_UNLOCKED
  (void)c.peek();
#endif
  return c.take() == 1 ? 0 : 1;
}
