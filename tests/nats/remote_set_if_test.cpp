// set_if() on a remote view: the request names the bucket entry its value was based on, and the
// owner stores it only while its store is still at that entry's version; a set that raced with
// another is answered conflict and stores nothing.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {
namespace remote_set_if_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using custody::set_status;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 10s;

using nats_test::Level;

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  return o;
}

nats::export_options export_to() {
  nats::export_options o;
  o.bucket.name = "iffy";
  o.key = "level";
  return o;
}

nats::remote_options follow() {
  nats::remote_options o;
  o.bucket.name = "iffy";
  o.key = "level";
  return o;
}

// Accepts every request with Owner::accept until stopped.
void accept_until_stopped(custody::Owner<Level>& owner, std::stop_token stop) {
  auto requests = owner.requests();
  for (bool running = true; running;) {
    custody::select(
        custody::on_recv(requests,
                         [&](custody::SetRequest<Level> r) { owner.accept(std::move(r)); }),
        custody::on_stop(stop, [&] { running = false; }));
  }
}

std::string header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, name, &v) == NATS_OK && v != nullptr ? v : "";
}

TEST(NatsSetIf, AConditionalSetThatDidNotRaceIsAccepted) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto made = custody::make_store<Level>({1});
  auto& owner = made.owner;
  auto& view = made.store;
  nats::Exporter<Level> exporter(owner_side, view, export_to());
  std::jthread task([&](std::stop_token st) { accept_until_stopped(owner, st); });
  nats::RemoteStore<Level> remote(consumer_side, follow());

  const auto [value, version] = remote.store().get_versioned();
  ASSERT_EQ(value, Level{1});
  const auto r = remote.store().set_if_for(version, Level{value.n + 1}, kGiveUp);
  ASSERT_EQ(r.status(), set_status::accepted);
  EXPECT_EQ(view.get(), Level{2});
  EXPECT_EQ(remote.store().get(), Level{2});
}

TEST(NatsSetIf, TwoReadModifyWritesFromTheSameReadingTheSecondIsAConflict) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto made = custody::make_store<Level>({1});
  auto& owner = made.owner;
  auto& view = made.store;
  nats::Exporter<Level> exporter(owner_side, view, export_to());
  std::jthread task([&](std::stop_token st) { accept_until_stopped(owner, st); });
  nats::RemoteStore<Level> first(consumer_side, follow());
  nats::RemoteStore<Level> second(consumer_side, follow());

  const auto [a, a_version] = first.store().get_versioned();
  const auto [b, b_version] = second.store().get_versioned();
  ASSERT_EQ(a, Level{1});
  ASSERT_EQ(b, Level{1});
  ASSERT_EQ(first.store().set_if_for(a_version, Level{a.n + 1}, kGiveUp).status(),
            set_status::accepted);
  const auto raced = second.store().set_if_for(b_version, Level{b.n + 10}, kGiveUp);
  EXPECT_EQ(raced.status(), set_status::conflict);
  EXPECT_EQ(view.get(), Level{2});
}

TEST(NatsSetIf, TheOwnerAnswersConflictForAnEntryItsStoreMovedOnFrom) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection client(options_for(server));
  auto made = custody::make_store<Level>({1});
  auto& owner = made.owner;
  auto& view = made.store;
  nats::Exporter<Level> exporter(owner_side, view, export_to());
  // The entry the requests name: the owner's first value, as the bucket holds it.
  nats::KeyValue bucket(client, export_to().bucket);
  const auto entry = bucket.last("level");
  ASSERT_TRUE(entry);
  const std::string owner_tag = header(entry->entry.get(), nats::wire::owner_header);
  const std::string version = header(entry->entry.get(), nats::wire::version_header);
  ASSERT_FALSE(owner_tag.empty());

  const auto ask = [&](const std::string& expected_owner, const std::string& expected_version) {
    natsMsg* raw = nullptr;
    const std::string subject = nats::wire::request_subject("iffy", "level");
    EXPECT_EQ(natsMsg_Create(&raw, subject.c_str(), nullptr, R"({"n":5})", 7), NATS_OK);
    const nats::message request(raw);
    natsMsgHeader_Set(raw, nats::wire::expected_owner_header, expected_owner.c_str());
    natsMsgHeader_Set(raw, nats::wire::expected_version_header, expected_version.c_str());
    natsMsg* reply = nullptr;
    EXPECT_EQ(natsConnection_RequestMsg(&reply, client.native(), raw,
                                        std::chrono::milliseconds(kGiveUp).count()),
              NATS_OK);
    const nats::message answer(reply);
    return reply != nullptr ? header(reply, nats::wire::status_header) : std::string();
  };

  // Another run's entry: answered by the exporter, the owner is not asked (none serves yet).
  EXPECT_EQ(ask("another run", version), "conflict");
  EXPECT_EQ(view.get(), Level{1});
  ASSERT_EQ(owner.publish(Level{2}), custody::status::ok);  // the store moves on
  std::jthread task([&](std::stop_token st) { accept_until_stopped(owner, st); });
  EXPECT_EQ(ask(owner_tag, version), "conflict");
  EXPECT_EQ(view.get(), Level{2});
  EXPECT_EQ(ask(owner_tag, std::to_string(view.get_versioned().second)), "accepted");
  EXPECT_EQ(view.get(), Level{5});
}

}  // namespace remote_set_if_test
}  // namespace
