#pragma once
// A contender waiting for a lease another owner holds: it is ended by a stop, its deadline,
// the holder's release or its renewal. The holder is a dead owner's lease with a ttl of a
// minute that nobody renews, so only what the scenario does can end the wait in time.
// lease_wait_test.cpp checks the outcomes; lease_wait_timing_test.cpp how soon a stop ends
// the wait (labelled "stress", so sanitizer runs leave it out).

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"

namespace lease_wait {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
inline constexpr auto kGiveUp = 10s;
// The held lease's ttl: far beyond kGiveUp, so that waiting it out shows as a failure.
inline constexpr auto kHeldTtl = 60s;

inline const std::string kBucket = "leased";
inline const std::string kLeaseKey = nats::wire::lease_key("level");

// How the contender's wait ended.
enum class ending { taken, held, stopped, timed_out, failed, never };

struct result {
  ending how = ending::never;
  std::uint64_t fence = 0;       // of the lease taken
  Clock::duration took{};        // from what the scenario did to the contender's end
  Clock::time_point ended_at{};  // when the contender ended
};

// What the scenario does once the contender waits: with the bucket, the held lease's
// revision and the contender's stop source.
using action = std::function<void(const nats::KeyValue&, std::uint64_t, std::stop_source&)>;

// Starts a contender for the dead owner's lease (waiting at most until `deadline`); unless
// `act` is empty, waits until the contender watches the lease (the server is asked for the
// watch's consumer) and does `act`. Returns how the contender ended.
inline result contend(const action& act, Clock::time_point deadline) {
  custody_test::NatsServer server;
  nats::connection_options co;
  co.servers = {server.url()};
  nats::Connection side(co);
  nats::bucket_options bo;
  bo.name = kBucket;
  const nats::KeyValue bucket(side, bo);
  const std::string dead = nlohmann::json{
      {"holder", "dead car"},
      {"ttl_ms", std::chrono::milliseconds(kHeldTtl).count()},
      {"renew_ms", 1000}}.dump();
  const auto held = bucket.put_if(kLeaseKey, dead, 0);
  if (!held) return {};

  // A plain subscriber of the consumer API sees the contender ask for its watch.
  natsSubscription* raw = nullptr;
  if (natsConnection_SubscribeSync(&raw, side.native(),
                                   ("$JS.API.CONSUMER.CREATE.KV_" + kBucket).c_str()) != NATS_OK) {
    return {};
  }
  const std::unique_ptr<natsSubscription, decltype(&natsSubscription_Destroy)> watching(
      raw, natsSubscription_Destroy);
  side.flush(5s);

  std::stop_source stop;
  custody::Channel<result> done(1);
  std::jthread contender([&] {
    result r;
    try {
      const nats::Lease lease(bucket, nats::lease_options{kLeaseKey, "new car", 3s},
                              stop.get_token(), deadline);
      r.how = ending::taken;
      r.fence = lease.fence();
    } catch (const nats::lease_held&) {
      r.how = ending::held;
    } catch (const nats::lease_wait_ended& e) {
      r.how = e.stopped() ? ending::stopped : ending::timed_out;
    } catch (const nats::error&) {
      r.how = ending::failed;
    }
    r.ended_at = Clock::now();
    (void)done.send(r);
  });

  auto acted = Clock::now();
  if (act) {
    natsMsg* asked = nullptr;
    if (natsSubscription_NextMsg(&asked, watching.get(),
                                 std::chrono::milliseconds(kGiveUp).count()) != NATS_OK) {
      stop.request_stop();
      return {};
    }
    natsMsg_Destroy(asked);
    acted = Clock::now();
    act(bucket, *held, stop);
  }
  auto r = done.recv_for(kGiveUp);
  if (!r) {
    stop.request_stop();  // a broken stop: the contender ends with the test's server
    return {};
  }
  r->took = r->ended_at - acted;
  return *r;
}

// Starts a contender for the dead owner's lease, waits until it watches the lease (the server
// is asked for the watch's consumer), does `act` and returns how the contender ended.
inline result contend(const action& act) { return contend(act, Clock::time_point::max()); }

// A contender waiting at most until `deadline`, which may pass before it watches the lease:
// nothing is done, only its end is awaited.
inline result contend_until(Clock::time_point deadline) { return contend(nullptr, deadline); }

// Stops the contender.
inline result stopped_while_waiting() {
  return contend(
      [](const nats::KeyValue&, std::uint64_t, std::stop_source& stop) { stop.request_stop(); });
}

}  // namespace lease_wait
