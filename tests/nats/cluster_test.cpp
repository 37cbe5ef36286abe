// A three-server JetStream cluster on loopback (tests/support/nats_server.hpp): a bucket with
// three replicas keeps working when the server a client is connected to is killed. The client
// fails over to another server, writes go on, and every write the cluster acknowledged before,
// during or after the failover reads back, through the client and through a new connection.

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"

namespace {
namespace cluster_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 20s;

nats::connection_options options_for(const custody_test::NatsCluster& cluster) {
  nats::connection_options o;
  o.servers = cluster.urls();
  o.reconnect_wait = 50ms;
  return o;
}

nats::bucket_options replicated(std::string name) {
  nats::bucket_options b;
  b.name = std::move(name);
  b.replicas = 3;
  b.timeout = 1s;
  return b;
}

// Waits for the connection's state to change, or `most` to pass: the pause between two
// attempts of an operation the cluster refused while electing a new leader.
void await_change(const nats::Connection& c, std::chrono::milliseconds most) {
  auto changes = c.state().subscribe(custody::policy::latest());
  (void)changes.recv_for(most);
}

// Writes `key` = `value` until the cluster acknowledges it; false after kGiveUp. Counts the
// attempts the cluster did not acknowledge in `refused`.
bool put_acknowledged(const nats::Connection& c, const nats::KeyValue& kv, const std::string& key,
                      const std::string& value, int& refused) {
  const auto deadline = Clock::now() + kGiveUp;
  while (Clock::now() < deadline) {
    try {
      kv.put(key, value);
      return true;
    } catch (const nats::error&) {
      ++refused;
      await_change(c, 100ms);
    }
  }
  return false;
}

// The value under `key`, read once the cluster answers; nothing after kGiveUp.
std::optional<std::string> read(const nats::Connection& c, const nats::KeyValue& kv,
                                const std::string& key) {
  const auto deadline = Clock::now() + kGiveUp;
  while (Clock::now() < deadline) {
    try {
      const auto entry = kv.get(key);
      return entry ? std::optional<std::string>(entry->bytes) : std::optional<std::string>("");
    } catch (const nats::error&) {
      await_change(c, 100ms);
    }
  }
  return std::nullopt;
}

// Opens (or creates) the bucket once the cluster can: just after it started, the servers may
// still be agreeing on who holds what, and the first attempts fail ("no suitable peers") or
// time out.
nats::KeyValue open(const nats::Connection& c, const nats::bucket_options& b) {
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    try {
      return nats::KeyValue(c, b);
    } catch (const nats::error&) {
      if (Clock::now() >= deadline) throw;
      await_change(c, 100ms);
    }
  }
}

TEST(NatsCluster, BucketReplicasAreConfigurable) {
  custody_test::NatsCluster cluster;
  nats::Connection c(options_for(cluster));
  EXPECT_EQ(open(c, replicated("three")).replicas(), 3);
  nats::bucket_options single;
  single.name = "one";
  EXPECT_EQ(open(c, single).replicas(), 1);
  nats::bucket_options too_many = replicated("six");
  too_many.replicas = 6;                                   // more than there are servers
  EXPECT_THROW(nats::KeyValue(c, too_many), nats::error);  // the cluster is formed by now
}

// The index of the server leading the bucket's stream (the one that orders its writes).
std::size_t leader_of(const custody_test::NatsCluster& cluster, const nats::KeyValue& kv) {
  jsStreamInfo* info = nullptr;
  jsErrCode code{};
  nats::detail::check(
      js_GetStreamInfo(&info, kv.jetstream(), ("KV_" + kv.name()).c_str(), nullptr, &code),
      "stream info");
  const std::string leader =
      info->Cluster != nullptr && info->Cluster->Leader != nullptr ? info->Cluster->Leader : "";
  jsStreamInfo_Destroy(info);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (leader == "n" + std::to_string(i + 1)) return i;  // NatsCluster's names
  }
  return cluster.size();
}

TEST(NatsCluster, KeyValueWorksThroughTheLossOfTheConnectedServer) {
  custody_test::NatsCluster cluster;
  nats::Connection setup(options_for(cluster));
  const std::size_t lost = leader_of(cluster, open(setup, replicated("failover")));
  ASSERT_LT(lost, cluster.size());
  // The client is connected to the server leading the bucket, so that its loss takes both
  // the client's server and the bucket's leader: the harder failover.
  nats::connection_options client = options_for(cluster);
  std::swap(client.servers.front(), client.servers[lost]);
  client.randomize_servers = false;
  nats::Connection c(client);
  ASSERT_EQ(cluster.index_of(c.connected_url()), lost) << c.connected_url();
  nats::KeyValue kv = open(c, replicated("failover"));
  std::map<std::string, std::string> acknowledged;
  int refused = 0;
  const auto write = [&](int i) {
    const std::string key = "k" + std::to_string(i);
    const std::string value = "v" + std::to_string(i);
    ASSERT_TRUE(put_acknowledged(c, kv, key, value, refused)) << key << " never acknowledged";
    acknowledged[key] = value;
    // Overwritten each time: the newest acknowledged value must be the one read.
    ASSERT_TRUE(put_acknowledged(c, kv, "latest", value, refused)) << "latest = " << value;
    acknowledged["latest"] = value;
  };
  for (int i = 0; i < 20; ++i) ASSERT_NO_FATAL_FAILURE(write(i));

  cluster.server(lost).kill();

  // Writes go on while the client reconnects and the cluster elects new leaders.
  for (int i = 20; i < 40; ++i) ASSERT_NO_FATAL_FAILURE(write(i));
  const std::size_t now = cluster.index_of(c.connected_url());
  EXPECT_NE(now, lost);
  EXPECT_LT(now, cluster.size());

  for (const auto& [key, value] : acknowledged) EXPECT_EQ(read(c, kv, key), value) << key;
  // A client that never saw the lost server reads the same.
  nats::connection_options fresh_options = options_for(cluster);
  fresh_options.servers.erase(fresh_options.servers.begin() + static_cast<long>(lost));
  nats::Connection fresh(fresh_options);
  nats::KeyValue fresh_kv = open(fresh, replicated("failover"));
  for (const auto& [key, value] : acknowledged) EXPECT_EQ(read(fresh, fresh_kv, key), value) << key;
  std::printf("writes refused during the failover: %d\n", refused);
}

}  // namespace cluster_test
}  // namespace
