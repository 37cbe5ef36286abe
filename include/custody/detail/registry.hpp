#pragma once
// The process-wide list of named objects that custody::inspect() reads.
//
// Only a named object registers: an unnamed one holds a null `name_tag` and never touches the
// registry. Registration happens once, where the object is made, and ends in its destructor
// before any of its state is torn down, so a snapshot (which holds the registry's mutex while
// it reads every object) never sees a destroyed object: a destructor waits for a running
// snapshot to finish.

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../inspection.hpp"
#include "mutex.hpp"
#include "thread_annotations.hpp"

namespace custody::detail {

class registry;

/// One named object in the registry. Its `describe` copies the object's facts into a snapshot;
/// it runs under the registry's mutex, so it may take the object's own locks (a spinlock only
/// to copy plain facts) but must never register or unregister anything.
class registration {
 public:
  using describe_fn = void (*)(const void* object, const registration& self, inspection& into);

  /// Not yet listed: name_tag::give() adds it once it is complete.
  registration(std::string name, const void* object, describe_fn describe, std::string context = {})
      : name_(std::move(name)),
        context_(std::move(context)),
        object_(object),
        describe_(describe) {}
  virtual ~registration() = default;
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;

  const std::string& name() const noexcept { return name_; }
  /// What the object belongs to, e.g. a subscription's store name; may be empty.
  const std::string& context() const noexcept { return context_; }

 private:
  friend class registry;
  const std::string name_;
  const std::string context_;
  const void* const object_;
  const describe_fn describe_;
};

/// The list of registrations, guarded by one mutex: registering, unregistering and taking a
/// snapshot are rare, and a snapshot may allocate while it holds it.
class registry {
 public:
  /// Never destroyed: a named object may be destroyed on another thread while the process
  /// exits (a completion on Asio's system thread pool drops the last reference to a store), and
  /// it must then find the registry still there.
  static registry& instance() {
    static registry* const the_registry = new registry();
    return *the_registry;
  }

  /// Throws std::bad_alloc (nothing is registered then).
  void add(registration& r) {
    std::lock_guard lock(mutex_);
    entries_.push_back(&r);
  }

  void remove(registration& r) noexcept {
    std::lock_guard lock(mutex_);
    entries_.erase(std::find(entries_.begin(), entries_.end(), &r));
  }

  /// Every registered object describes itself into `into`, newest registration first.
  void describe_all(inspection& into) {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
      (*it)->describe_((*it)->object_, **it, into);
    }
  }

 private:
  mutex mutex_;
  std::vector<registration*> entries_ CUSTODY_GUARDED_BY(mutex_);
};

/// What a nameable object holds: null (unnamed: one pointer, nothing else) or its registration,
/// of type `R` (a registration, or a kind of one carrying more facts of a named object).
template <class R = registration>
class basic_name_tag {
 public:
  basic_name_tag() = default;
  basic_name_tag(const basic_name_tag&) = delete;
  basic_name_tag& operator=(const basic_name_tag&) = delete;
  ~basic_name_tag() { leave(); }

  /// Registers `object` under `name`; call once the object is complete and before it is
  /// shared. An empty name leaves the object unnamed.
  void give(std::string name, const void* object, registration::describe_fn describe,
            std::string context = {}) {
    if (name.empty()) return;
    auto made = std::make_unique<R>(std::move(name), object, describe, std::move(context));
    registry::instance().add(*made);
    registration_ = std::move(made);
  }
  /// Unregisters; the first thing a named object's destructor does. Waits for a running
  /// snapshot to finish.
  void leave() noexcept {
    if (registration_) registry::instance().remove(*registration_);
    registration_.reset();
  }

  explicit operator bool() const noexcept { return registration_ != nullptr; }
  R* get() const noexcept { return registration_.get(); }
  /// The name, or "" when unnamed.
  const std::string& name() const noexcept {
    static const std::string unnamed;
    return registration_ ? registration_->name() : unnamed;
  }

 private:
  std::unique_ptr<R> registration_;
};

using name_tag = basic_name_tag<>;

}  // namespace custody::detail
