// The server restarts with an empty store directory (its JetStream state lost): the owner's
// exporter makes the bucket again and writes the owner's value into it, and a remote store
// tells the new bucket from the old one (its revisions start again at 1) and follows it,
// instead of ignoring every entry until the revisions pass the last one it saw.

#include <chrono>
#include <cstdint>
#include <optional>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace lost_state_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 20s;

using nats_test::Level;

::testing::AssertionResult arrives(custody::Subscription<Level>& sub, std::int64_t want) {
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto r = sub.recv_until(deadline);
    if (!r) return ::testing::AssertionFailure() << "never received " << want;
    if (r->n == want) return ::testing::AssertionSuccess();
  }
}

TEST(NatsLostState, TheBucketIsMadeAgainAndRemoteStoresFollowTheNewOne) {
  custody_test::NatsServer server;
  nats::connection_options co;
  co.servers = {server.url()};
  co.reconnect_wait = 50ms;
  nats::Connection owner_side(co);
  nats::Connection consumer_side(co);
  auto [owner, view] = custody::make_store<Level>({0});
  nats::export_options eo;
  eo.bucket.name = "lost";
  eo.key = "level";
  nats::Exporter<Level> exporter(owner_side, view, eo);
  nats::remote_options ro;
  ro.bucket = eo.bucket;
  ro.key = eo.key;
  ro.heartbeat = 200ms;
  nats::RemoteStore<Level> remote(consumer_side, ro);
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64));

  // Revisions well past the ones the new bucket will start with.
  for (std::int64_t n = 1; n <= 5; ++n) {
    (void)owner.publish(Level{n});
    ASSERT_TRUE(arrives(seen, n));
  }
  const std::uint64_t old_revision = remote.stats().revision;
  ASSERT_GE(old_revision, 5u);

  server.restart_empty();
  // The exporter writes its value on reconnection, or at the latest this one, and so makes
  // the bucket again; the remote store's watch finds the new bucket once it exists.
  (void)owner.publish(Level{6});
  EXPECT_TRUE(arrives(seen, 6));
  EXPECT_GE(exporter.stats().buckets_made, 1u);
  EXPECT_EQ(remote.stats().buckets_made_again, 1u);
  EXPECT_LT(remote.stats().revision, old_revision);
  // And it goes on following the new bucket.
  (void)owner.publish(Level{7});
  EXPECT_TRUE(arrives(seen, 7));
}

// stale_for() counts a resync: after the reconnection, until the new watch has caught up
// with the bucket (here made again only once an owner returns), it grows; then it is 0.
TEST(NatsLostState, StaleForGrowsUntilTheWatchHasCaughtUp) {
  custody_test::NatsServer server;
  nats::connection_options co;
  co.servers = {server.url()};
  co.reconnect_wait = 50ms;
  nats::Connection owner_side(co);
  nats::Connection consumer_side(co);
  auto [owner, view] = custody::make_store<Level>({0});
  nats::export_options eo;
  eo.bucket.name = "stale";
  eo.key = "level";
  std::optional<nats::Exporter<Level>> exporter(std::in_place, owner_side, view, eo);
  nats::remote_options ro;
  ro.bucket = eo.bucket;
  ro.key = eo.key;
  nats::RemoteStore<Level> remote(consumer_side, ro);
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64));
  (void)owner.publish(Level{1});
  ASSERT_TRUE(arrives(seen, 1));
  EXPECT_EQ(remote.stale_for(), std::chrono::steady_clock::duration::zero());

  exporter.reset();  // no owner to make the bucket again
  auto link = consumer_side.state().subscribe(custody::policy::latest());
  server.restart_empty();
  for (const auto deadline = Clock::now() + kGiveUp;;) {
    auto s = link.recv_until(deadline);
    ASSERT_TRUE(s) << "never reconnected";
    if (s->connected && s->reconnects == 1) break;
  }
  // Connected, and nothing to follow yet: stale since the reconnection, and growing.
  const auto first = remote.stale_for();
  EXPECT_GT(first, std::chrono::steady_clock::duration::zero());
  EXPECT_GE(remote.stale_for(), first);

  exporter.emplace(owner_side, view, eo);  // makes the bucket and writes 1
  (void)owner.publish(Level{2});
  ASSERT_TRUE(arrives(seen, 2));
  EXPECT_EQ(remote.stale_for(), std::chrono::steady_clock::duration::zero());
}

}  // namespace lost_state_test
}  // namespace
