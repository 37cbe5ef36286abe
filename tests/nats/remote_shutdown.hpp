#pragma once
// Scenarios where a remote store must not hold its callers up: a local policy::block
// subscriber that is full while a set() is in flight, a remote owner that never answers, a
// server that is gone. Each returns what the caller got and how long the bounded step took.
// remote_shutdown_test.cpp checks the outcomes with bounds that hold under sanitizers;
// remote_shutdown_timing_test.cpp checks the documented figures (labelled "stress", so
// sanitizer runs leave it out).

#include <chrono>
#include <cstdint>
#include <future>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"

namespace remote_shutdown {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
inline constexpr auto kGiveUp = 20s;

struct Count {
  std::int64_t n = 0;
  friend bool operator==(const Count&, const Count&) = default;
};
inline void to_json(nlohmann::json& j, const Count& c) { j = {{"n", c.n}}; }
inline void from_json(const nlohmann::json& j, Count& c) {
  if (!j.at("n").is_number_integer()) throw std::invalid_argument("Count: n must be an integer");
  c.n = j.at("n").get<std::int64_t>();
}

inline nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  o.reconnect_wait = 50ms;
  return o;
}

inline nats::remote_options follow(std::chrono::milliseconds request_timeout = 5s) {
  nats::remote_options o;
  o.bucket.name = "shutdown";
  o.key = "count";
  o.request_timeout = request_timeout;
  return o;
}

// An owner exported over a server whose task takes every set request and holds it unanswered
// (until the test ends), telling `taken` of each.
class SilentOwner {
 public:
  explicit SilentOwner(const custody_test::NatsServer& server)
      : connection_(options_for(server)),
        pair_(custody::make_store<Count>({0})),
        exporter_(connection_, pair_.store, export_options()),
        task_([this](std::stop_token stop) {
          std::vector<custody::SetRequest<Count>> held;
          for (;;) {
            auto r = pair_.owner.requests().recv(stop);
            if (!r) return;
            held.push_back(std::move(*r));
            (void)taken_.send(true);
          }
        }) {}
  ~SilentOwner() { task_.request_stop(); }
  SilentOwner(const SilentOwner&) = delete;
  SilentOwner& operator=(const SilentOwner&) = delete;

  // Publishes `n` (from the test's thread: the task only receives requests).
  void publish(std::int64_t n) { (void)pair_.owner.publish(Count{n}); }
  // True once the owner holds one more request; false after kGiveUp.
  bool took_one() { return taken_.recv_until(Clock::now() + kGiveUp).has_value(); }

 private:
  static nats::export_options export_options() {
    nats::export_options o;
    o.bucket.name = "shutdown";
    o.key = "count";
    o.set_timeout = 60s;  // the exporter would wait far longer than any remote caller
    return o;
  }

  nats::Connection connection_;
  custody::store_pair<Count> pair_;
  nats::Exporter<Count> exporter_;
  custody::Channel<bool> taken_{64};
  std::jthread task_;  // last: stops before what it uses
};

// The remote store's watch thread is held in a publish: a policy::block(1) subscriber holds
// `1` unreceived, and `2` waits for room. Returns that subscriber; `latest` has seen `2`.
inline custody::Subscription<Count> hold_the_watch(nats::RemoteStore<Count>& remote,
                                                   SilentOwner& owner) {
  custody::Subscriber<Count> view = remote;
  auto full = view.subscribe(custody::policy::block(1));
  auto latest = view.subscribe(custody::policy::latest());
  // One at a time: the exporter writes only the newest of values published together.
  const auto deadline = Clock::now() + kGiveUp;
  for (std::int64_t n : {1, 2}) {
    owner.publish(n);
    for (;;) {
      auto v = latest.recv_until(deadline);
      if (!v) throw std::runtime_error("the remote store never received " + std::to_string(n));
      if (v->n == n) break;
    }
  }
  // The mirror offers each value to every subscriber before it waits for the full ones: once
  // `latest` has 2, the watch thread is publishing 2 (waiting for `full`) or about to.
  return full;
}

struct outcome {
  custody::set_status status;
  Clock::duration took;
};

// A full policy::block subscriber, one set() in flight (the owner holds it), then the remote
// store is destroyed: what the setter got, and how long destruction took.
inline outcome destroy_with_set_in_flight() {
  custody_test::NatsServer server;
  SilentOwner owner(server);
  nats::Connection consumer_side(options_for(server));
  std::optional<nats::RemoteStore<Count>> remote(std::in_place, consumer_side, follow());
  auto full = hold_the_watch(*remote, owner);
  custody::Setter<Count> setter = *remote;
  auto answer = std::async(std::launch::async, [&] { return setter.set({7}).status(); });
  if (!owner.took_one()) throw std::runtime_error("the set request never reached the owner");
  const auto start = Clock::now();
  remote.reset();
  const auto took = Clock::now() - start;
  if (answer.wait_for(kGiveUp) != std::future_status::ready) {
    throw std::runtime_error("the set in flight was never answered");
  }
  return {answer.get(), took};
}

// set_for(v, `deadline`) against an owner that never answers (remote_options::request_timeout
// far longer), while a full policy::block subscriber holds the watch thread in a publish: what
// it returned, and after how long.
inline outcome set_for_against_silent_owner(std::chrono::milliseconds deadline) {
  custody_test::NatsServer server;
  SilentOwner owner(server);
  nats::Connection consumer_side(options_for(server));
  nats::RemoteStore<Count> remote(consumer_side, follow(60s));
  auto full = hold_the_watch(remote, owner);
  custody::Setter<Count> setter = remote;
  const auto start = Clock::now();
  const custody::set_status status = setter.set_for({9}, deadline).status();
  return {status, Clock::now() - start};
}

// The server is killed; once the consumer's connection knows, its remote store is destroyed:
// how long that took.
inline Clock::duration destroy_during_outage() {
  custody_test::NatsServer server;
  nats::Connection consumer_side(options_for(server));
  std::optional<nats::RemoteStore<Count>> remote(std::in_place, consumer_side, follow());
  auto link = consumer_side.state().subscribe(custody::policy::latest().with_current());
  server.kill();
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto s = link.recv_until(deadline);
    if (!s) throw std::runtime_error("the outage was never noticed");
    if (!s->connected) break;
  }
  const auto start = Clock::now();
  remote.reset();
  return Clock::now() - start;
}

// An exporter, its owner having just published a value, is destroyed against a frozen server
// (its write of that value, in flight or final, unanswered): how long that took.
inline Clock::duration destroy_exporter_against_frozen_server() {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  auto [owner, view] = custody::make_store<Count>({0});
  nats::export_options o;
  o.bucket.name = "shutdown";
  o.key = "count";
  std::optional<nats::Exporter<Count>> exporter(std::in_place, owner_side, view, o);
  server.freeze();
  (void)owner.publish(Count{1});
  const auto start = Clock::now();
  exporter.reset();
  const auto took = Clock::now() - start;
  server.thaw();
  return took;
}

}  // namespace remote_shutdown
