// A contender for a lease another owner holds waits on a watch of the lease, never a timed
// sleep: a stop, its deadline, the holder's release or renewal end the wait without waiting
// out the holder's ttl (a minute here, beyond the tests' bound).

#include "lease_wait.hpp"

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <type_traits>

#include <gtest/gtest.h>

namespace {
namespace lease_wait_test {

using namespace std::chrono_literals;
using lease_wait::Clock;
using lease_wait::ending;
namespace nats = custody::nats;

TEST(NatsLeaseWait, AStopEndsTheWaitWithLeaseWaitEnded) {
  static_assert(std::is_base_of_v<nats::error, nats::lease_wait_ended>);
  const auto r = lease_wait::stopped_while_waiting();
  EXPECT_EQ(r.how, ending::stopped);
}

TEST(NatsLeaseWait, TheDeadlineEndsTheWaitWithLeaseWaitEnded) {
  const auto deadline = Clock::now() + 300ms;
  const auto r = lease_wait::contend_until(deadline);
  EXPECT_EQ(r.how, ending::timed_out);
  EXPECT_GE(r.ended_at, deadline);
}

TEST(NatsLeaseWait, TheHoldersReleaseWakesTheWaitAndTheLeaseIsTaken) {
  std::uint64_t released_at = 0;
  const auto r =
      lease_wait::contend([&](const nats::KeyValue& bucket, std::uint64_t held, std::stop_source&) {
        const auto rev = bucket.put_if(lease_wait::kLeaseKey, {}, held, {{"KV-Operation", "DEL"}});
        ASSERT_TRUE(rev);
        released_at = *rev;
      });
  EXPECT_EQ(r.how, ending::taken);
  EXPECT_GT(r.fence, released_at);
}

TEST(NatsLeaseWait, TheHoldersRenewalWakesTheWaitAndTheContenderIsRefused) {
  const auto r =
      lease_wait::contend([](const nats::KeyValue& bucket, std::uint64_t held, std::stop_source&) {
        ASSERT_TRUE(bucket.put_if(lease_wait::kLeaseKey,
                                  R"({"holder":"dead car","ttl_ms":60000,"renew_ms":1000})", held));
      });
  EXPECT_EQ(r.how, ending::held);
}

}  // namespace lease_wait_test
}  // namespace
