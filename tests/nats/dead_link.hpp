#pragma once
// Scenarios of a link that stops working (the server killed, or frozen with SIGSTOP), each
// returning how long the step that must stay bounded took. dead_link_test.cpp checks that
// each ends at all, with bounds that hold under sanitizers; dead_link_timing_test.cpp checks
// the figures the documentation promises (labelled "stress", so sanitizer runs leave it out).

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include <custody/nats.hpp>

#include "../support/nats_server.hpp"

namespace dead_link {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
inline constexpr auto kGiveUp = 20s;

inline nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  o.reconnect_wait = 50ms;
  return o;
}

// Waits until the connection's state says connected == `want`; false after kGiveUp.
inline bool becomes(const nats::Connection& c, bool want) {
  auto changes = c.state().subscribe(custody::policy::latest().with_current());
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto s = changes.recv_until(deadline);
    if (!s) return false;
    if (s->connected == want) return true;
  }
}

// A connection with a subscription (whose drain must not wait for the server) and a bucket.
class Client {
 public:
  explicit Client(const nats::connection_options& o)
      : connection_(o),
        subscription_(*connection_, "dead-link.x", [](nats::message) {}),
        bucket_(std::in_place, *connection_, nats::bucket_options{"dead-link"}) {
    connection_->flush();  // the server knows of the subscription
  }
  const nats::Connection& connection() const { return *connection_; }

  // Unsubscribes and closes everything; how long that took.
  Clock::duration close() {
    const auto start = Clock::now();
    subscription_.unsubscribe();
    bucket_.reset();
    connection_.reset();
    return Clock::now() - start;
  }

 private:
  std::optional<nats::Connection> connection_;
  nats::MessageSubscription subscription_;
  std::optional<nats::KeyValue> bucket_;
};

// The server is killed; once the client knows, it is closed.
inline Clock::duration close_during_outage() {
  custody_test::NatsServer server;
  Client client(options_for(server));
  server.kill();
  if (!becomes(client.connection(), false)) throw std::runtime_error("outage never noticed");
  return client.close();
}

// The server is frozen; the client, not yet aware of it, is closed.
inline Clock::duration close_against_frozen_server() {
  custody_test::NatsServer server;
  Client client(options_for(server));
  server.freeze();
  const auto took = client.close();
  server.thaw();
  return took;
}

// The server is frozen; how long until the client's state says disconnected.
inline Clock::duration notice_frozen_server(std::chrono::milliseconds ping_interval) {
  custody_test::NatsServer server;
  nats::connection_options o = options_for(server);
  o.ping_interval = ping_interval;
  nats::Connection c(o);
  if (!becomes(c, true)) throw std::runtime_error("never connected");
  server.freeze();
  const auto start = Clock::now();
  const bool noticed = becomes(c, false);
  const auto took = Clock::now() - start;
  server.thaw();
  if (!noticed) throw std::runtime_error("frozen server never noticed");
  return took;
}

}  // namespace dead_link
