#pragma once
// custody::inspect(): what every live named channel, store, subscription and task group is
// doing right now, as plain values (inspection.hpp) that render as text or JSON.
//
//   custody::Channel<int> jobs(16, "jobs");
//   auto [owner, store] = custody::make_store<Car>(Car{}, {.name = "car"});
//   auto speed = store.subscribe(custody::policy::latest(), "speed display");
//   custody::TaskGroup group("workers");
//   ...
//   std::fputs(custody::inspect().to_text().c_str(), stderr);
//
// Only named objects are listed: giving a name is what makes an object inspectable, and an
// unnamed one costs nothing for it.

#include "detail/registry.hpp"
#include "inspection.hpp"

namespace custody {

/// A snapshot of every live named object. Safe at any moment from any thread. Blocks only while
/// another snapshot is taken or a named object is made or destroyed, and briefly for each
/// channel's lock while its blocked cases are copied (at most 16 per list are listed, the
/// rest counted in channel_report::unlisted). A named object being destroyed waits for a
/// running snapshot, so a snapshot never reads a destroyed object. Throws std::bad_alloc.
/// Objects appear newest first within each list.
inline inspection inspect() {
  inspection result;
  detail::registry::instance().describe_all(result);
  return result;
}

}  // namespace custody
