// Checks the watchdog in main.cpp: this test hangs on purpose, and the
// support.watchdog_aborts_hung_test CTest entry runs it with
// CUSTODY_TEST_TIMEOUT=1 and expects the watchdog to abort the process.

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

TEST(WatchdogSelfTest, Hangs) {
  if (std::getenv("CUSTODY_WATCHDOG_SELFTEST") == nullptr) {
    GTEST_SKIP() << "set CUSTODY_WATCHDOG_SELFTEST=1 to run";
  }
  std::this_thread::sleep_for(std::chrono::seconds(30));
}
