// A receiver that finds a buffered channel's slot empty looks at the senders' position only
// once the ring is closing (detail/ring.hpp). A stress test, so that the interleave build runs
// it: there every atomic step may yield, which widens the moment between the receiver's look at
// the slot and its look at the closing flag.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include <custody/channel.hpp>

using custody::Channel;
using custody::status;

// A receiver that finds its slot empty looks at the senders' position only once the ring is
// closing. A value sent just before the close must still be received, never reported closed,
// however the receiver's attempts fall around the send and the close. The sender starts only
// once the receiver has found the channel empty, so the receiver is polling while the value
// arrives and the channel closes. The race is counted: rounds in which a poll found nothing
// after the sender said it was sending.
TEST(ClosingRing, AReceiverPollingAClosingRingGetsTheValueThenClosed) {
  constexpr int rounds = 500;
  int overlapped = 0;
  for (int r = 0; r < rounds; ++r) {
    Channel<std::int64_t> ch(1);
    std::atomic<bool> polling{false}, sending{false};
    std::jthread sender([&] {
      polling.wait(false);
      sending.store(true);
      // Each yield lets a receiver sharing this core poll in between.
      std::this_thread::yield();
      ASSERT_EQ(ch.send(r), status::ok);
      std::this_thread::yield();
      ASSERT_TRUE(ch.close());
    });
    bool overlap = false;
    custody::received<std::int64_t> got = ch.try_recv();
    polling.store(true);  // before any assertion: the sender must not wait for good
    polling.notify_one();
    ASSERT_EQ(got.status(), status::would_block) << "round " << r;
    for (;;) {
      // Read before the attempt: an empty poll after it proves the poll fell inside the send.
      const bool was_sending = sending.load();
      got = ch.try_recv();
      if (got.status() != status::would_block) break;
      overlap = overlap || was_sending;
      std::this_thread::yield();  // the sender may share this thread's core
    }
    ASSERT_EQ(got.status(), status::ok) << "round " << r;
    ASSERT_EQ(*got, r);
    sender.join();
    ASSERT_EQ(ch.try_recv().status(), status::closed);
    if (overlap) ++overlapped;
  }
  EXPECT_GT(overlapped, 0);
  std::printf("[stress] ClosingRing: %d of %d rounds polled during the send\n", overlapped, rounds);
}
