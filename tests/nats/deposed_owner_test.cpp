// A deposed owner: its lease is deleted and another owner takes the key, while the first one
// keeps publishing. Its conditional writes are refused, so none of its later values reaches the
// bucket or a consumer, and it learns at its next write that it was deposed.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace deposed_owner_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using nats_test::Level;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 10s;
// Longer than the test, so that no renewal finds the lease gone: only a write can.
constexpr auto kLongLease = 60s;
// The first owner's values after it was deposed.
constexpr std::int64_t kDeposedValues = 1000;

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  return o;
}

nats::export_options export_to() {
  nats::export_options o;
  o.bucket.name = "deposed";
  o.key = "level";
  o.lease_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(kLongLease);
  return o;
}

nats::remote_options follow() {
  nats::remote_options o;
  o.bucket = export_to().bucket;
  o.key = "level";
  return o;
}

std::string header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, name, &v) == NATS_OK && v != nullptr ? v : "";
}

// Receives from `seen` until `wanted` arrives (true) or kGiveUp passes, keeping every value.
bool receive_until(custody::Subscription<Level>& seen, Level wanted, std::vector<Level>& all) {
  const auto deadline = std::chrono::steady_clock::now() + kGiveUp;
  for (;;) {
    auto v = seen.recv_until(deadline);
    if (!v) return false;
    all.push_back(*v);
    if (*v == wanted) return true;
  }
}

TEST(NatsDeposedOwner, ItsLaterValuesReachNoConsumerAndItLearnsItWasDeposed) {
  custody_test::NatsServer server;
  nats::Connection first_side(options_for(server));
  nats::Connection second_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  nats::Connection admin(options_for(server));

  auto first = custody::make_store<Level>({1});
  nats::Exporter<Level> first_export(first_side, first.store, export_to());
  nats::RemoteStore<Level> consumer(consumer_side, follow());
  auto seen = consumer.store().subscribe(custody::policy::block(1024).with_current());
  std::vector<Level> all;
  ASSERT_EQ(first.owner.publish(Level{2}), custody::status::ok);
  ASSERT_TRUE(receive_until(seen, Level{2}, all));

  // The lease is taken from the first owner: deleted, then taken by a second owner, which
  // writes its value at once.
  nats::KeyValue bucket(admin, export_to().bucket);
  bucket.put(nats::wire::lease_key("level"), {}, {{"KV-Operation", "DEL"}});
  auto second = custody::make_store<Level>({100});
  nats::Exporter<Level> second_export(second_side, second.store, export_to());
  ASSERT_NE(second_export.fence(), first_export.fence());
  ASSERT_TRUE(receive_until(seen, Level{100}, all));

  // The first owner does not know yet, and keeps publishing.
  auto first_lease = first_export.lease().subscribe(custody::policy::latest().with_current());
  for (std::int64_t n = kDeposedValues; n < kDeposedValues + 3; ++n) {
    ASSERT_EQ(first.owner.publish(Level{n}), custody::status::ok);
  }
  bool deposed = false;
  const auto deadline = std::chrono::steady_clock::now() + kGiveUp;
  while (!deposed) {
    auto s = first_lease.recv_until(deadline);
    if (!s) break;
    deposed = *s == nats::lease_status::deposed;
  }
  EXPECT_TRUE(deposed);
  EXPECT_TRUE(first_export.stats().lease_lost);

  // The bucket still holds the second owner's value, with its fencing token.
  const auto last = bucket.last("level");
  ASSERT_TRUE(last);
  EXPECT_EQ(header(last->entry.get(), nats::wire::fence_header),
            std::to_string(second_export.fence()));
  EXPECT_EQ(std::string(natsMsg_GetData(last->entry.get()),
                        static_cast<std::size_t>(natsMsg_GetDataLength(last->entry.get()))),
            R"({"n":100})");

  // The second owner's next value arrives, and none of the first's came before it.
  ASSERT_EQ(second.owner.publish(Level{101}), custody::status::ok);
  ASSERT_TRUE(receive_until(seen, Level{101}, all));
  for (const Level& l : all) EXPECT_LT(l.n, kDeposedValues) << "a deposed owner's value applied";
  EXPECT_EQ(consumer.store().get(), Level{101});
}

}  // namespace deposed_owner_test
}  // namespace
