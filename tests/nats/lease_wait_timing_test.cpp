// The figure docs/nats.md states for a contender waiting for a held lease: a stop ends the
// wait within 100 ms. Labelled "stress": sanitizer runs leave it out. As in
// remote_shutdown_timing_test.cpp, a run over its bound fails the test only with
// CUSTODY_STRESS_STRICT=1; otherwise at most one run in five may.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <gtest/gtest.h>

#include "lease_wait.hpp"

namespace {
namespace lease_wait_timing_test {

using namespace std::chrono_literals;
using lease_wait::Clock;

bool strict() {
  const char* v = std::getenv("CUSTODY_STRESS_STRICT");  // NOLINT(concurrency-mt-unsafe)
  return v != nullptr && std::string_view(v) == "1";
}

TEST(NatsLeaseWaitTiming, AStopEndsTheWaitWithin100Ms) {
  constexpr int runs = 5;
  constexpr auto bound = 100ms;
  int over = 0;
  Clock::duration slowest{};
  for (int i = 0; i < runs; ++i) {
    const auto r = lease_wait::stopped_while_waiting();
    EXPECT_EQ(r.how, lease_wait::ending::stopped) << "run " << i;
    slowest = std::max(slowest, r.took);
    if (r.took >= bound) ++over;
  }
  std::printf("a stopped lease wait: %d of %d runs over 100 ms, slowest %.1f ms\n", over, runs,
              std::chrono::duration<double, std::milli>(slowest).count());
  EXPECT_LE(over, strict() ? 0 : runs / 5);
}

}  // namespace lease_wait_timing_test
}  // namespace
