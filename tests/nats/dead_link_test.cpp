// A link that stops working never holds a program up: closing during an outage or against a
// frozen server returns promptly instead of after the client's 30 s drain, and a frozen
// server shows as a disconnect thanks to the ping interval. The bounds here are loose enough
// for sanitizer runs; dead_link_timing_test.cpp checks the documented figures.

#include "dead_link.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace {
namespace dead_link_test {

using namespace std::chrono_literals;

TEST(NatsDeadLink, ClosingDuringAnOutageReturnsPromptly) {
  EXPECT_LT(dead_link::close_during_outage(), 2s);
}

TEST(NatsDeadLink, ClosingAgainstAFrozenServerReturnsPromptly) {
  EXPECT_LT(dead_link::close_against_frozen_server(), 2s);
}

TEST(NatsDeadLink, AFrozenServerShowsAsADisconnect) {
  // Without pings the client would wait for the operating system to time the link out
  // (minutes); notice_frozen_server throws after 20 s.
  EXPECT_LT(dead_link::notice_frozen_server(250ms), 10s);
}

}  // namespace dead_link_test
}  // namespace
