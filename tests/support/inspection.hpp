#pragma once
// Reading custody::inspect() snapshots in tests.

#include <string>
#include <thread>
#include <vector>

#include <custody/inspect.hpp>

namespace custody_test {

/// The report named `name` in `list`, or nullptr.
template <class Report>
const Report* find(const std::vector<Report>& list, const std::string& name) {
  return custody::detail::find_named(list, name);
}

/// Takes snapshots until `seen` holds for one: a blocked thread cannot say when it sleeps, so
/// this is how a test knows it has registered.
template <class Seen>
custody::inspection inspect_until(Seen seen) {
  for (;;) {
    custody::inspection now = custody::inspect();
    if (seen(now)) return now;
    std::this_thread::yield();
  }
}

}  // namespace custody_test
