// A named object may be destroyed while the process exits, after the static objects made
// during the program were destroyed: an Asio completion on the system thread pool can drop the
// last reference to a named store then. The registry it leaves must still be there.

#include <cstdlib>
#include <memory>

#include <gtest/gtest.h>

#include <custody/channel.hpp>

namespace {
namespace registry_exit_test {

std::unique_ptr<custody::Channel<int>> late;  // destroyed by exit_handler only

void exit_handler() { late.reset(); }

void name_a_channel_destroyed_after_the_statics_then_exit() {
  // Registered before the registry exists in this fresh process, so it runs after the
  // registry's own teardown would have (exit runs these in the reverse order of registration).
  if (std::atexit(exit_handler) != 0) std::_Exit(2);
  late = std::make_unique<custody::Channel<int>>(1, "late");
  std::exit(0);
}

TEST(RegistryAtExit, ANamedObjectDestroyedAfterTheStaticsLeavesTheRegistrySafely) {
  // "threadsafe" runs the test in a fresh process, in which the registry does not exist yet.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(name_a_channel_destroyed_after_the_statics_then_exit(), testing::ExitedWithCode(0),
              "");
}

}  // namespace registry_exit_test
}  // namespace
