// The exporter answers a set request before it writes the value the owner published for it, but
// a value the owner publishes on its own while a request waits for it is written without waiting
// for that answer: consumers see it while the request is still with the owner.

#include <chrono>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using custody::set_status;
using nats_test::Level;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kGiveUp = 10s;
// The owner's wait for consumers to see its own value: shorter than the exporter's set_timeout,
// so that a write held back until the answer shows as a missed value, not as a timeout.
constexpr auto kOwnValueShown = 3s;

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  return o;
}

TEST(NatsAnswerFirst, AValuePublishedWhileARequestWaitsIsWrittenBeforeTheAnswer) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto made = custody::make_store<Level>({1});
  auto& owner = made.owner;
  nats::export_options out;
  out.bucket.name = "first";
  out.key = "level";
  nats::Exporter<Level> exporter(owner_side, made.store, out);
  nats::remote_options in;
  in.bucket.name = "first";
  in.key = "level";
  nats::RemoteStore<Level> remote(consumer_side, in);
  auto seen = remote.store().subscribe(custody::policy::block(64));

  // The owner holds the request, publishes a value of its own, and answers only once the
  // consumer has that value (or after kOwnValueShown, when it never came).
  bool own_value_shown = false;
  std::jthread task([&](std::stop_token stop) {
    auto requests = owner.requests();
    auto request = requests.recv_until(std::chrono::steady_clock::now() + kGiveUp, stop);
    if (!request) return;
    ASSERT_EQ(owner.publish(Level{7}), custody::status::ok);
    const auto deadline = std::chrono::steady_clock::now() + kOwnValueShown;
    for (;;) {
      auto v = seen.recv_until(deadline, stop);
      if (!v) break;
      if (*v == Level{7}) {
        own_value_shown = true;
        break;
      }
    }
    (void)owner.accept(std::move(*request));
  });

  const auto r = remote.store().set_for(Level{9}, kGiveUp);
  task.join();
  EXPECT_TRUE(own_value_shown);
  EXPECT_EQ(r.status(), set_status::accepted);
  EXPECT_EQ(remote.store().get(), Level{9});
}

}  // namespace
