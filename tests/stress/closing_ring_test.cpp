// A receiver that finds a buffered channel's slot empty looks at the senders' position only
// once the ring is closing (detail/ring.hpp). A stress test, so that the interleave build runs
// it: there every atomic step may yield, which widens the moment between the receiver's look at
// the slot and its look at the closing flag.

#include <cstdint>
#include <latch>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>

using custody::Channel;
using custody::status;

// A receiver that finds its slot empty looks at the senders' position only once the ring is
// closing. A value sent just before the close must still be received, never reported closed,
// however the receiver's attempts fall around the send and the close. The race is counted:
// rounds in which the receiver's attempts found nothing at least once before the value.
TEST(ClosingRing, AReceiverPollingAClosingRingGetsTheValueThenClosed) {
  constexpr int rounds = 500;
  int overlapped = 0;
  for (int r = 0; r < rounds; ++r) {
    Channel<std::int64_t> ch(1);
    std::latch start(2);
    std::thread sender([&] {
      start.arrive_and_wait();
      ASSERT_EQ(ch.send(r), status::ok);
      ASSERT_TRUE(ch.close());
    });
    start.arrive_and_wait();
    bool found_nothing = false;
    custody::received<std::int64_t> got = ch.try_recv();
    // Yielding between attempts: the sender may share this thread's core.
    for (; got.status() == status::would_block; got = ch.try_recv()) {
      found_nothing = true;
      std::this_thread::yield();
    }
    ASSERT_EQ(got.status(), status::ok) << "round " << r;
    ASSERT_EQ(*got, r);
    sender.join();
    ASSERT_EQ(ch.try_recv().status(), status::closed);
    if (found_nothing) ++overlapped;
  }
  EXPECT_GT(overlapped, 0);
}
