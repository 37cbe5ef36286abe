// Regression tests for defects found by the stress tests and fuzzers. Each test names what it
// guards against; all are deterministic and fast.

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>

#include "stress_support.hpp"

using namespace std::chrono_literals;
using custody::Channel;
using custody::status;

// Found by channel_fuzz: an operation on an unbuffered channel whose deadline had already
// passed reported timeout without looking at the channel, so recv_for(0) on a closed unbuffered
// channel said timeout (a buffered one said closed), and a waiting sender was never met.
TEST(Regression, ExpiredDeadlineStillSeesClosedUnbufferedChannel) {
  Channel<int> ch;
  ch.close();
  EXPECT_EQ(ch.recv_for(0ms).status(), status::closed);
  EXPECT_EQ(ch.recv_until(std::chrono::steady_clock::now() - 1s).status(), status::closed);
  int v = 1;
  EXPECT_EQ(ch.send_for(std::move(v), 0ms), status::closed);
  EXPECT_EQ(v, 1);
  auto sel = custody::select(custody::on_recv(ch, [](int) {}), custody::on_timeout(0ms));
  EXPECT_EQ(sel.index, 0u);
  EXPECT_EQ(sel.status, status::closed);
}

TEST(Regression, ExpiredDeadlineStillMeetsAWaitingPeer) {
  Channel<int> ch;
  std::jthread sender([&] { EXPECT_EQ(ch.send(7), status::ok); });
  // Wait until the sender is blocked in send (it cannot complete without us).
  custody::received<int> got;
  for (int i = 0; i < 2000 && !got; ++i) {
    got = ch.recv_for(0ms);
    if (!got) {
      EXPECT_EQ(got.status(), status::timeout);
      std::this_thread::sleep_for(1ms);
    }
  }
  ASSERT_TRUE(got) << "recv_for(0) never met the waiting sender";
  EXPECT_EQ(*got, 7);

  Channel<int> out;
  std::jthread receiver([&] { EXPECT_EQ(out.recv().value(), 8); });
  status s = status::timeout;
  for (int i = 0; i < 2000 && s != status::ok; ++i) {
    int v = 8;
    s = out.send_for(std::move(v), 0ms);
    if (s != status::ok) std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(s, status::ok) << "send_for(0) never met the waiting receiver";
}

// Found by select_fuzz: a select with a default case never reported a triggered stop token
// (nonblocking selects returned would_block before looking at the token), so a polling loop
// `select(on_recv(...), on_stop(st, ...), on_default(...))` never saw its stop. The default
// case fires only when no other case is ready; a triggered stop case is ready.
TEST(Regression, TriggeredStopWinsOverDefault) {
  Channel<int> ch(1);
  std::stop_source src;
  src.request_stop();
  bool stopped = false, defaulted = false;
  auto sel = custody::select(custody::on_recv(ch, [](int) {}),
                             custody::on_stop(src.get_token(), [&] { stopped = true; }),
                             custody::on_default([&] { defaulted = true; }));
  EXPECT_EQ(sel.index, 1u);
  EXPECT_EQ(sel.status, status::stopped);
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(defaulted);
  // With a value ready too, the stop is one ready case among two, like Go's closed `done`:
  // each wins some rounds, and a round the stop wins leaves the value in the channel.
  int received = 0, stops = 0;
  for (int round = 0; round < 1000 && (received == 0 || stops == 0); ++round) {
    if (ch.size() == 0) {
      ASSERT_EQ(ch.try_send(1), status::ok);
    }
    sel = custody::select(custody::on_recv(ch, [&](int) { ++received; }),
                          custody::on_stop(src.get_token()), custody::on_default());
    ASSERT_NE(sel.index, 2u);
    if (sel.index == 1) {
      ++stops;
      EXPECT_EQ(ch.size(), 1u);
    }
  }
  EXPECT_GT(received, 0);
  EXPECT_GT(stops, 0);
}
