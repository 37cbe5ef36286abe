#pragma once
// std::mutex as a lock Clang's thread-safety analysis knows (thread_annotations.hpp), for state
// whose critical sections may run user code, allocate or wait: a spinlock holder must do none
// of that, a mutex holder may, because threads waiting for a mutex sleep. Waiting on it takes
// std::condition_variable_any (std::condition_variable works with std::mutex alone).

#include <mutex>

#include "interleave.hpp"
#include "thread_annotations.hpp"

namespace custody::detail {

class CUSTODY_CAPABILITY("mutex") mutex {
 public:
  void lock() CUSTODY_ACQUIRE() {
    interleave_point();
    m_.lock();
    interleave_point();  // the interleave build may stall us holding it
  }
  void unlock() CUSTODY_RELEASE() {
    interleave_point();
    m_.unlock();
  }
  bool try_lock() CUSTODY_TRY_ACQUIRE(true) {
    interleave_point();
    return m_.try_lock();
  }

 private:
  std::mutex m_;
};

}  // namespace custody::detail

#if CUSTODY_THREAD_SAFETY_ANALYSIS
// As in spin.hpp for the spinlock: lock guards that say what they do in annotations.
namespace std {

template <>
class CUSTODY_SCOPED_CAPABILITY lock_guard<custody::detail::mutex> {
 public:
  using mutex_type = custody::detail::mutex;
  explicit lock_guard(mutex_type& m) CUSTODY_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~lock_guard() CUSTODY_RELEASE() { m_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  mutex_type& m_;
};

template <>
class CUSTODY_SCOPED_CAPABILITY unique_lock<custody::detail::mutex> {
 public:
  using mutex_type = custody::detail::mutex;
  explicit unique_lock(mutex_type& m) CUSTODY_ACQUIRE(m) : m_(&m) {
    m_->lock();
    owns_ = true;
  }
  ~unique_lock() CUSTODY_RELEASE() {
    if (owns_) m_->unlock();
  }
  unique_lock(const unique_lock&) = delete;
  unique_lock& operator=(const unique_lock&) = delete;

  void lock() CUSTODY_ACQUIRE() {
    m_->lock();
    owns_ = true;
  }
  void unlock() CUSTODY_RELEASE() {
    m_->unlock();
    owns_ = false;
  }
  bool owns_lock() const noexcept { return owns_; }
  explicit operator bool() const noexcept { return owns_; }
  mutex_type* mutex() const noexcept { return m_; }

 private:
  mutex_type* m_;
  bool owns_ = false;
};

}  // namespace std
#endif
