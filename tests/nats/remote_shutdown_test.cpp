// A remote store never holds its callers up: destroyed while a full policy::block subscriber
// holds its watch and a set() is in flight, it returns and the setter is answered; a set_for()
// against an owner that never answers returns timeout; destroyed during an outage, it returns
// promptly. The bounds here are loose enough for sanitizer runs;
// remote_shutdown_timing_test.cpp checks the documented figures.

#include "remote_shutdown.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace {
namespace remote_shutdown_test {

using namespace std::chrono_literals;

TEST(NatsRemoteShutdown, DestroyedWithAFullSubscriberAndASetInFlight) {
  const auto r = remote_shutdown::destroy_with_set_in_flight();
  EXPECT_EQ(r.status, custody::set_status::owner_gone);
  EXPECT_LT(r.took, 5s);
}

TEST(NatsRemoteShutdown, SetForTimesOutAgainstAnOwnerThatNeverAnswers) {
  const auto r = remote_shutdown::set_for_against_silent_owner(500ms);
  EXPECT_EQ(r.status, custody::set_status::timeout);
  EXPECT_GE(r.took, 500ms);
  EXPECT_LT(r.took, 10s);  // the caller's deadline, not the request timeout (60 s)
}

TEST(NatsRemoteShutdown, DestroyedDuringAnOutageReturnsPromptly) {
  EXPECT_LT(remote_shutdown::destroy_during_outage(), 1s);  // not the JetStream timeout (2 s)
}

TEST(NatsRemoteShutdown, AnExporterDestroyedAgainstAFrozenServerReturnsPromptly) {
  // Its final write is bounded, and a write in flight cut short: well under the bucket's
  // 2 s timeout that each would otherwise wait.
  EXPECT_LT(remote_shutdown::destroy_exporter_against_frozen_server(), 1500ms);
}

}  // namespace remote_shutdown_test
}  // namespace
