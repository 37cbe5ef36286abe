// The owner's heartbeat: a remote store follows the key's lease. While its renewals come the
// owner is alive; when none comes within the lease's ttl, or the owner releases it, the store
// says owner_lost, and stale_for() counts the time since the owner was last heard of.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace owner_heartbeat_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 10s;

using nats_test::Level;

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  return o;
}

nats::remote_options follow() {
  nats::remote_options o;
  o.bucket.name = "beat";
  o.key = "level";
  o.heartbeat = 200ms;
  return o;
}

// Receives owner statuses until `want`.
::testing::AssertionResult becomes(custody::Subscription<nats::owner_status>& sub,
                                   nats::owner_status want) {
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto s = sub.recv_until(deadline);
    if (!s) return ::testing::AssertionFailure() << "the owner status never became the one wanted";
    if (*s == want) return ::testing::AssertionSuccess();
  }
}

TEST(NatsOwnerHeartbeat, ALeaseNotRenewedWithinItsTtlIsOwnerLostAndStaleForGrows) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  // An owner that took the lease (ttl 400 ms), wrote a value and then stopped renewing.
  nats::KeyValue bucket(owner_side, follow().bucket);
  const std::string lease_key = nats::wire::lease_key("level");
  const nlohmann::json lease = {{"holder", "car"}, {"ttl_ms", 400}, {"renew_ms", 133}};
  const auto taken = bucket.put_if(lease_key, lease.dump(), 0);
  ASSERT_TRUE(taken);
  const std::string fence = std::to_string(*taken);
  bucket.put("level", R"({"n":1})", {{nats::wire::fence_header, fence}});

  nats::RemoteStore<Level> remote(consumer_side, follow());
  auto status = remote.owner().subscribe(custody::policy::block(16).with_current());
  ASSERT_EQ(remote.store().get(), Level{1});
  ASSERT_TRUE(becomes(status, nats::owner_status::alive));
  ASSERT_TRUE(becomes(status, nats::owner_status::owner_lost));
  // Lost: no renewal for the ttl, which is longer than two renewal intervals.
  EXPECT_GE(remote.stale_for(), 400ms);
  const auto first = remote.stale_for();
  EXPECT_GE(remote.stale_for(), first);

  // The owner comes back and renews: alive again, and nothing stale.
  nlohmann::json renewed = lease;
  renewed["fence"] = *taken;
  ASSERT_TRUE(bucket.put_if(lease_key, renewed.dump(), *taken));
  ASSERT_TRUE(becomes(status, nats::owner_status::alive));
  EXPECT_EQ(remote.stale_for(), Clock::duration::zero());
}

TEST(NatsOwnerHeartbeat, AnOwnerThatReleasesItsLeaseIsLostAtOnce) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, view] = custody::make_store<Level>({1});
  nats::export_options eo;
  eo.bucket = follow().bucket;
  eo.key = "level";
  eo.lease_ttl = 60s;  // lost long before it could expire: by the release
  std::optional<nats::Exporter<Level>> exporter(std::in_place, owner_side, view, eo);

  nats::RemoteStore<Level> remote(consumer_side, follow());
  auto status = remote.owner().subscribe(custody::policy::block(16).with_current());
  ASSERT_TRUE(becomes(status, nats::owner_status::alive));
  // Once the watch has caught up with the owner, nothing is stale.
  custody::Subscriber<Level> remote_view = remote;
  auto values = remote_view.subscribe(custody::policy::block(16));
  ASSERT_EQ(owner.publish({2}), custody::status::ok);
  const auto got = values.recv_until(Clock::now() + kGiveUp);
  ASSERT_TRUE(got);
  ASSERT_EQ(*got, Level{2});
  EXPECT_EQ(remote.stale_for(), Clock::duration::zero());

  exporter.reset();
  ASSERT_TRUE(becomes(status, nats::owner_status::owner_lost));
  EXPECT_GT(remote.stale_for(), Clock::duration::zero());
}

}  // namespace owner_heartbeat_test
}  // namespace
