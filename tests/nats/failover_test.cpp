// The owner's server dies (failover.hpp): the owner and the remote store fail over to the
// other members, every set made during the failover is answered, and the newest value the owner
// accepted reaches the existing consumer and any new one.

#include "failover.hpp"

#include <gtest/gtest.h>

namespace {
namespace failover_test {

TEST(NatsFailover, TheOwnersServerDiesAndNothingAcceptedIsLost) {
  const failover::figures f = failover::run();
  EXPECT_TRUE(f.owner_moved_to_another_server);
  // Every set ended with an answer, its own timeout, or word that a link was down: never
  // owner_gone, as the owner only moved.
  EXPECT_EQ(f.accepted + f.timed_out + f.disconnected, f.sets);
  EXPECT_EQ(f.other, 0);
  // The failover ends: sets are accepted again, and the newest accepted value is everywhere.
  EXPECT_EQ(f.accepted, failover::kAcceptedAfterTheKill);
  EXPECT_EQ(f.last_accepted, f.last_set);
  EXPECT_TRUE(f.consumer_received_last);
  EXPECT_TRUE(f.new_consumer_reads_last);
}

}  // namespace failover_test
}  // namespace
