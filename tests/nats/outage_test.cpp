// The server is killed (SIGKILL) mid-run and restarted: acknowledged state survives, set()
// during the outage is answered within its timeout, and remote stores resync to the latest
// value afterwards.

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace outage_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;

using nats_test::Level;

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  o.reconnect_wait = 50ms;
  return o;
}

// Waits until the connection's state says connected == `want`.
::testing::AssertionResult becomes(const nats::Connection& c, bool want) {
  auto changes = c.state().subscribe(custody::policy::latest().with_current());
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    auto s = changes.recv_until(deadline);
    if (!s) return ::testing::AssertionFailure() << "connection never became " << want;
    if (s->connected == want) return ::testing::AssertionSuccess();
  }
}

::testing::AssertionResult arrives(custody::Subscription<Level>& sub, Level want) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    auto r = sub.recv_until(deadline);
    if (!r) return ::testing::AssertionFailure() << "never received " << want.n;
    if (*r == want) return ::testing::AssertionSuccess();
  }
}

TEST(NatsOutage, AcknowledgedStateSurvivesAKilledServerAndStoresResync) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Level>({0});
  nats::export_options out;
  out.bucket.name = "levels";
  out.key = "x";
  nats::Exporter<Level> exporter(owner_side, local, out);
  std::jthread owner_task([&owner = owner](std::stop_token stop) {
    for (;;) {
      auto r = owner.requests().recv(stop);
      if (!r) return;
      (void)owner.accept(std::move(*r));
    }
  });
  nats::remote_options in;
  in.bucket.name = "levels";
  in.key = "x";
  in.request_timeout = 2s;
  nats::RemoteStore<Level> remote(consumer_side, in);
  custody::Store<Level> store = remote.store();
  auto sub = store.subscribe(custody::policy::block());

  // Acknowledged: the server stored it (the remote side received it from the bucket).
  ASSERT_EQ(owner.publish({10}), custody::status::ok);
  ASSERT_TRUE(arrives(sub, {10}));
  const std::uint64_t acknowledged = remote.stats().revision;
  ASSERT_GT(acknowledged, 0u);
  EXPECT_EQ(remote.stale_for(), std::chrono::steady_clock::duration::zero());

  // Outage 1: a set is answered "disconnected", not left hanging.
  server.kill();
  ASSERT_TRUE(becomes(consumer_side, false));
  const auto asked = std::chrono::steady_clock::now();
  auto during = store.set_for({11}, 3s);
  EXPECT_EQ(during.status(), custody::set_status::disconnected);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 3s);
  EXPECT_GT(remote.stale_for(), std::chrono::steady_clock::duration::zero());
  EXPECT_EQ(store.get(), (Level{10}));  // the last value seen, stale but there

  server.restart();
  ASSERT_TRUE(becomes(consumer_side, true));
  {
    // A client that was never connected before reads what was acknowledged.
    nats::Connection fresh(options_for(server));
    nats::bucket_options bucket;
    bucket.name = "levels";
    nats::KeyValue kv(fresh, bucket);
    auto entry = kv.get("x");
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->revision, acknowledged);
    EXPECT_EQ(nats::json_codec<Level>::decode(entry->bytes), (Level{10}));
  }

  // After reconnection the remote store follows again, and sets work.
  ASSERT_EQ(owner.publish({20}), custody::status::ok);
  EXPECT_TRUE(arrives(sub, {20}));
  for (;;) {  // the owner side may still be reconnecting: then "owner gone" or "disconnected"
    auto r = store.set_for({21}, 3s);
    if (r.accepted()) break;
    ASSERT_TRUE(r.status() == custody::set_status::owner_gone ||
                r.status() == custody::set_status::disconnected)
        << custody::to_string(r.status());
    ASSERT_TRUE(becomes(owner_side, true));
  }
  EXPECT_EQ(store.get(), (Level{21}));

  // Outage 2: the owner publishes while the server is down; once it is back, the exporter
  // writes the newest value and the remote store resyncs to it.
  server.kill();
  ASSERT_TRUE(becomes(owner_side, false));
  ASSERT_EQ(owner.publish({30}), custody::status::ok);
  ASSERT_EQ(owner.publish({31}), custody::status::ok);
  server.restart();
  EXPECT_TRUE(arrives(sub, {31}));
  EXPECT_EQ(store.get(), (Level{31}));
}

}  // namespace outage_test
}  // namespace
