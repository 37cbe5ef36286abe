// A remote store's watch heals: when the server loses the watch's consumer (deleted while the
// connection stays up), or the cluster member that holds it dies, the watch's heartbeats stop
// and it is made again, so later values still arrive.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace watch_heal_test {

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

// The consumers of the bucket's stream, as the server lists them.
// The consumers of the bucket's stream that watch the value (a remote store also watches the
// key's lease with another).
std::vector<std::string> consumers_of(const nats::KeyValue& kv) {
  jsConsumerNamesList* list = nullptr;
  const std::string stream = "KV_" + kv.name();
  if (js_ConsumerNames(&list, kv.jetstream(), stream.c_str(), nullptr, nullptr) != NATS_OK) {
    return {};
  }
  std::vector<std::string> names;
  const std::string value_subject = "$KV." + kv.name() + ".level";
  for (int i = 0; i < list->Count; ++i) {
    jsConsumerInfo* info = nullptr;
    if (js_GetConsumerInfo(&info, kv.jetstream(), stream.c_str(), list->List[i], nullptr,
                           nullptr) != NATS_OK) {
      continue;
    }
    const char* filter = info->Config != nullptr ? info->Config->FilterSubject : nullptr;
    if (filter != nullptr && value_subject == filter) names.emplace_back(list->List[i]);
    jsConsumerInfo_Destroy(info);
  }
  jsConsumerNamesList_Destroy(list);
  return names;
}

nats::remote_options follow(nats::bucket_options bucket) {
  nats::remote_options o;
  o.bucket = std::move(bucket);
  o.key = "level";
  o.heartbeat = 200ms;  // a lost watch shows within 400 ms
  return o;
}

TEST(NatsWatchHeal, AConsumerDeletedOnTheServerIsMadeAgain) {
  custody_test::NatsServer server;
  nats::connection_options co;
  co.servers = {server.url()};
  nats::Connection owner_side(co);
  nats::Connection consumer_side(co);
  auto [owner, view] = custody::make_store<Level>({0});
  nats::export_options eo;
  eo.bucket.name = "heal";
  eo.key = "level";
  nats::Exporter<Level> exporter(owner_side, view, eo);
  nats::RemoteStore<Level> remote(consumer_side, follow(eo.bucket));
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64));

  (void)owner.publish(Level{1});
  ASSERT_TRUE(arrives(seen, 1));  // the watch's consumer exists
  const nats::KeyValue admin(owner_side, eo.bucket);
  const std::vector<std::string> before = consumers_of(admin);
  ASSERT_EQ(before.size(), 1u);
  jsErrCode code{};
  ASSERT_EQ(js_DeleteConsumer(admin.jetstream(), "KV_heal", before[0].c_str(), nullptr, &code),
            NATS_OK);
  EXPECT_TRUE(consumer_side.connected());  // nothing tells the client but the silence

  (void)owner.publish(Level{2});
  EXPECT_TRUE(arrives(seen, 2));
  EXPECT_GE(remote.stats().watches_ended, 1u);
  const std::vector<std::string> after = consumers_of(admin);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);  // a new consumer
}

TEST(NatsWatchHeal, TheWatchSurvivesTheDeathOfTheClusterMemberThatHoldsIt) {
  custody_test::NatsCluster cluster;
  nats::connection_options co;
  co.servers = cluster.urls();
  co.reconnect_wait = 50ms;
  nats::Connection owner_side(co);
  nats::Connection consumer_side(co);
  nats::bucket_options bucket;
  bucket.name = "heal";
  bucket.replicas = 3;
  bucket.timeout = 1s;
  auto [owner, view] = custody::make_store<Level>({0});
  nats::export_options eo;
  eo.bucket = bucket;
  eo.key = "level";
  // The cluster may refuse the first bucket for a moment, until every member has joined.
  std::optional<nats::Exporter<Level>> exporter;
  for (const auto deadline = Clock::now() + kGiveUp; !exporter;) {
    try {
      exporter.emplace(owner_side, view, eo);
    } catch (const nats::error&) {
      ASSERT_LT(Clock::now(), deadline) << "the cluster never made the bucket";
    }
  }
  nats::RemoteStore<Level> remote(consumer_side, follow(bucket));
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64));
  (void)owner.publish(Level{1});
  ASSERT_TRUE(arrives(seen, 1));

  // The member that holds the watch's consumer.
  const nats::KeyValue admin(owner_side, bucket);
  const std::vector<std::string> names = consumers_of(admin);
  ASSERT_EQ(names.size(), 1u);
  jsConsumerInfo* info = nullptr;
  ASSERT_EQ(
      js_GetConsumerInfo(&info, admin.jetstream(), "KV_heal", names[0].c_str(), nullptr, nullptr),
      NATS_OK);
  ASSERT_NE(info->Cluster, nullptr);
  const std::string holder = info->Cluster->Leader != nullptr ? info->Cluster->Leader : "";
  jsConsumerInfo_Destroy(info);
  ASSERT_EQ(holder.size(), 2u);  // "n1", "n2" or "n3"
  const std::size_t member = static_cast<std::size_t>(holder[1] - '1');
  ASSERT_LT(member, cluster.size());
  cluster.server(member).kill();

  // The exporter retries the write while the cluster elects new leaders.
  (void)owner.publish(Level{2});
  EXPECT_TRUE(arrives(seen, 2));
  EXPECT_GE(remote.stats().watches_ended, 1u);
}

}  // namespace watch_heal_test
}  // namespace
