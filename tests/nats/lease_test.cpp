// One owner per key, fenced: an exporter holds the key's lease; a second one is refused while
// the lease is renewed, takes it over once it is not; consumers apply only the entries that
// carry the current lease's fencing token, so a forged entry or a deposed owner's cannot
// freeze or roll them back.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace lease_test {

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

nats::export_options export_to(std::string holder, std::chrono::milliseconds ttl = 600ms) {
  nats::export_options o;
  o.bucket.name = "fenced";
  o.key = "level";
  o.holder = std::move(holder);
  o.lease_ttl = ttl;
  return o;
}

nats::remote_options follow() {
  nats::remote_options o;
  o.bucket.name = "fenced";
  o.key = "level";
  return o;
}

// Receives until `want` arrives; every value received on the way is appended to `got`.
::testing::AssertionResult arrives(custody::Subscription<Level>& sub, std::int64_t want,
                                   std::vector<std::int64_t>* got = nullptr) {
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto r = sub.recv_until(deadline);
    if (!r) return ::testing::AssertionFailure() << "never received " << want;
    if (got != nullptr) got->push_back(r->n);
    if (r->n == want) return ::testing::AssertionSuccess();
  }
}

std::string header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, name, &v) == NATS_OK && v != nullptr ? v : "";
}

// A lease entry as an owner writes it (wire.hpp).
std::string lease_body(const std::string& holder, std::int64_t ttl_ms) {
  return nlohmann::json{{"holder", holder}, {"ttl_ms", ttl_ms}, {"renew_ms", ttl_ms / 3}}.dump();
}

// Waits until an entry holding `want` is published on the key's subject (a plain
// subscription sees every write of the bucket's stream).
::testing::AssertionResult written(natsSubscription* sub, std::int64_t want) {
  const auto deadline = Clock::now() + kGiveUp;
  while (Clock::now() < deadline) {
    natsMsg* raw = nullptr;
    if (natsSubscription_NextMsg(&raw, sub, 1000) != NATS_OK) continue;
    const nats::message m(raw);
    const std::string_view body(natsMsg_GetData(raw),
                                static_cast<std::size_t>(natsMsg_GetDataLength(raw)));
    if (nlohmann::json::parse(body, nullptr, false) == nlohmann::json{{"n", want}}) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "no entry holding " << want << " was written";
}

TEST(NatsLease, ASecondOwnerIsRefusedWithAnErrorNamingTheBucketAndTheHolder) {
  custody_test::NatsServer server;
  nats::Connection first_side(options_for(server));
  nats::Connection second_side(options_for(server));
  auto [first_owner, first_view] = custody::make_store<Level>({1});
  auto [second_owner, second_view] = custody::make_store<Level>({2});
  nats::Exporter<Level> first(first_side, first_view, export_to("car A"));

  try {
    nats::Exporter<Level> second(second_side, second_view, export_to("car B"));
    FAIL() << "a second owner of the key was accepted";
  } catch (const nats::lease_held& e) {
    EXPECT_EQ(e.holder(), "car A");
    const std::string what = e.what();
    EXPECT_NE(what.find("bucket fenced"), std::string::npos) << what;
    EXPECT_NE(what.find("car A"), std::string::npos) << what;
  }
  static_assert(std::is_base_of_v<nats::error, nats::lease_held>);

  // The refused owner left nothing behind: consumers still read the first owner's value.
  nats::RemoteStore<Level> remote(second_side, follow());
  EXPECT_EQ(remote.store().get(), Level{1});
  EXPECT_GE(first.stats().lease_renewals, 1u);  // the refusal saw a renewal
}

TEST(NatsLease, AForgedEntryWithTheOwnersHeadersCannotFreezeConsumers) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, view] = custody::make_store<Level>({1});
  nats::Exporter<Level> exporter(owner_side, view, export_to("car"));
  nats::RemoteStore<Level> remote(consumer_side, follow());
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64).with_current());
  ASSERT_TRUE(arrives(seen, 1));

  // The forger copies the owner's headers from the bucket and claims the highest version,
  // with no fencing token and with a wrong one.
  nats::KeyValue bucket(owner_side, export_to("").bucket);
  const auto last = bucket.last("level");
  ASSERT_TRUE(last);
  const std::string owner_tag = header(last->entry.get(), nats::wire::owner_header);
  ASSERT_FALSE(owner_tag.empty());
  ASSERT_EQ(header(last->entry.get(), nats::wire::fence_header), std::to_string(exporter.fence()));
  const std::string top = std::to_string(~std::uint64_t{0});
  bucket.put("level", R"({"n":666})",
             {{nats::wire::owner_header, owner_tag}, {nats::wire::version_header, top}});
  const std::string wrong_fence = std::to_string(exporter.fence() + 1);
  bucket.put("level", R"({"n":667})",
             {{nats::wire::owner_header, owner_tag},
              {nats::wire::version_header, top},
              {nats::wire::fence_header, wrong_fence}});

  // The owner's next value still arrives, and the forged ones never did.
  std::vector<std::int64_t> got;
  ASSERT_EQ(owner.publish({2}), custody::status::ok);
  ASSERT_TRUE(arrives(seen, 2, &got));
  EXPECT_EQ(got, std::vector<std::int64_t>{2});
  EXPECT_EQ(remote.store().get(), Level{2});
}

TEST(NatsLease, ALeaseNotRenewedWithinItsTtlIsTakenOver) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  // An owner that took the lease and died without releasing it: its lease is never renewed.
  nats::KeyValue bucket(owner_side, export_to("").bucket);
  const auto dead_fence =
      bucket.put_if(nats::wire::lease_key("level"), lease_body("dead car", 400), 0);
  ASSERT_TRUE(dead_fence);
  const std::string dead_fence_text = std::to_string(*dead_fence);
  bucket.put("level", R"({"n":5})", {{nats::wire::fence_header, dead_fence_text}});

  nats::RemoteStore<Level> remote(consumer_side, follow());
  ASSERT_EQ(remote.store().get(), Level{5});  // the dead owner's last value
  custody::Subscriber<Level> remote_view = remote;
  auto seen = remote_view.subscribe(custody::policy::block(64));

  auto [owner, view] = custody::make_store<Level>({7});
  nats::Exporter<Level> exporter(owner_side, view, export_to("new car"));  // waits out the ttl
  EXPECT_GT(exporter.fence(), *dead_fence);
  std::vector<std::int64_t> got;
  ASSERT_TRUE(arrives(seen, 7, &got));

  // The deposed owner wakes up and writes: ignored.
  bucket.put("level", R"({"n":6})", {{nats::wire::fence_header, dead_fence_text}});
  ASSERT_EQ(owner.publish({8}), custody::status::ok);
  ASSERT_TRUE(arrives(seen, 8, &got));
  EXPECT_EQ(got, (std::vector<std::int64_t>{7, 8}));
  EXPECT_GE(remote.stats().unfenced, 1u);
}

TEST(NatsLease, AnOwnerWhoseLeaseWasTakenOverStopsWritingAndServing) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, view] = custody::make_store<Level>({1});
  // No renewal within the test: only its write can tell it that it was deposed.
  nats::export_options eo = export_to("frozen car", 60s);
  eo.set_timeout = 100ms;  // nobody serves this owner's requests: they time out soon
  nats::Exporter<Level> exporter(owner_side, view, eo);
  nats::RemoteStore<Level> remote(consumer_side, follow());
  custody::Store<Level> remote_store = remote.store();
  auto seen = remote_store.subscribe(custody::policy::block(64).with_current());
  ASSERT_TRUE(arrives(seen, 1));

  // Another owner took the lease while this one was stopped (as if by SIGSTOP past its ttl).
  nats::KeyValue bucket(owner_side, export_to("").bucket);
  const std::uint64_t new_fence =
      bucket.put(nats::wire::lease_key("level"), lease_body("usurper", 60000));
  natsSubscription* raw = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&raw, owner_side.native(), "$KV.fenced.level"), NATS_OK);
  std::unique_ptr<natsSubscription, decltype(&natsSubscription_Destroy)> entries(
      raw, natsSubscription_Destroy);
  owner_side.flush(5s);

  // The new owner writes; the old owner still writes before it learns it was deposed: its
  // write, which expects the revision the new owner's replaced, is sent and refused by the
  // bucket, and the old owner learns from it that it was deposed.
  const std::string new_fence_text = std::to_string(new_fence);
  bucket.put("level", R"({"n":3})", {{nats::wire::fence_header, new_fence_text}});
  std::vector<std::int64_t> got;
  ASSERT_TRUE(arrives(seen, 3, &got));
  auto lease = exporter.lease().subscribe(custody::policy::latest().with_current());
  ASSERT_EQ(owner.publish({2}), custody::status::ok);
  ASSERT_TRUE(written(entries.get(), 2));
  const auto until = Clock::now() + kGiveUp;
  nats::lease_status status = nats::lease_status::held;
  while (status != nats::lease_status::deposed) {
    auto s = lease.recv_until(until);
    if (!s) break;
    status = *s;
  }
  EXPECT_EQ(status, nats::lease_status::deposed);
  bucket.put("level", R"({"n":5})", {{nats::wire::fence_header, new_fence_text}});
  ASSERT_TRUE(arrives(seen, 5, &got));
  EXPECT_EQ(got, (std::vector<std::int64_t>{3, 5}));

  // It knows, and answers requests "owner gone" without handing them to its owner.
  const auto deadline = Clock::now() + kGiveUp;
  custody::set_status last = custody::set_status::accepted;
  while (Clock::now() < deadline) {
    last = remote_store.set_for({4}, 1s).status();
    if (last == custody::set_status::owner_gone) break;
  }
  EXPECT_EQ(last, custody::set_status::owner_gone);
  EXPECT_TRUE(exporter.stats().lease_lost);
}

}  // namespace lease_test
}  // namespace
