#pragma once
// The owner's server dies: a three-server cluster, an R3 bucket, an owner exporting its store
// and a remote store on another connection. The server the owner is connected to is killed
// while a remote setter keeps asking; run() returns what happened. failover_test.cpp checks the
// outcome (nothing accepted is lost, every set is answered) with bounds that hold under
// sanitizers; failover_timing_test.cpp checks that each set ends within its own timeout
// (labelled "stress", so sanitizer runs leave it out).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"
#include "level.hpp"

namespace failover {

using namespace std::chrono_literals;
namespace nats = custody::nats;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
inline constexpr auto kGiveUp = 20s;
// Each set during the failover waits at most this long for its answer.
inline constexpr auto kSetTimeout = 2s;
// After the kill, sets go on until this many were accepted (or kGiveUp passes).
inline constexpr std::int64_t kAcceptedAfterTheKill = 5;
// A set that was not accepted is made again after the owner's link changes, or this long.
inline constexpr auto kRetryPause = 20ms;

using nats_test::Level;

struct figures {
  std::int64_t sets = 0;                 // sets made after the kill
  std::int64_t last_set = 0;             // the value of the last of them
  std::int64_t accepted = 0;             // sets after the kill the owner accepted
  std::int64_t timed_out = 0;            // ... that ended with set_status::timeout
  std::int64_t disconnected = 0;         // ... with set_status::disconnected (a link was down)
  std::int64_t other = 0;                // ... that ended any other way (owner_gone, say)
  Clock::duration slowest_set{};         // the longest of them, from call to return
  std::int64_t last_accepted = 0;        // the newest value the owner accepted
  bool consumer_received_last = false;   // the remote subscriber got it
  bool new_consumer_reads_last = false;  // a remote store made afterwards reads it
  bool owner_moved_to_another_server = false;
};

// Receives from `sub` until a value with n == want; false if kGiveUp passes first.
inline bool arrives(custody::Subscription<Level>& sub, std::int64_t want) {
  const auto deadline = Clock::now() + kGiveUp;
  for (;;) {
    auto r = sub.recv_until(deadline);
    if (!r) return false;
    if (r->n == want) return true;
  }
}

// Makes `out` from `args`, again while the cluster refuses (just after it formed, or while it
// elects new leaders, opening a bucket can time out); throws once kGiveUp has passed.
template <class T, class... Args>
void make_once_the_cluster_answers(std::optional<T>& out, const Args&... args) {
  for (const auto deadline = Clock::now() + kGiveUp; !out;) {
    try {
      out.emplace(args...);
    } catch (const nats::error&) {
      if (Clock::now() >= deadline) throw;
    }
  }
}

inline figures run() {
  custody_test::NatsCluster cluster;
  nats::connection_options co;
  co.servers = cluster.urls();
  co.reconnect_wait = 50ms;
  nats::Connection owner_side(co);
  nats::Connection consumer_side(co);

  nats::bucket_options bucket;
  bucket.name = "failover";
  bucket.replicas = 3;
  bucket.timeout = 1s;
  auto [owner, local] = custody::make_store<Level>({0});
  nats::export_options eo;
  eo.bucket = bucket;
  eo.key = "level";
  std::optional<nats::Exporter<Level>> exporter;
  make_once_the_cluster_answers(exporter, owner_side, local, eo);
  std::jthread owner_task([&owner = owner](std::stop_token stop) {
    while (auto r = owner.requests().recv(stop)) (void)owner.accept(std::move(*r));
  });

  nats::remote_options ro;
  ro.bucket = bucket;
  ro.key = "level";
  ro.request_timeout = kSetTimeout;
  std::optional<nats::RemoteStore<Level>> remote;
  make_once_the_cluster_answers(remote, consumer_side, ro);
  custody::GetSetter<Level> setter = *remote;
  custody::Subscriber<Level> subscriber = *remote;
  auto seen = subscriber.subscribe(custody::policy::block(1024));
  if (!setter.set_for(Level{1}, kGiveUp).accepted() || !arrives(seen, 1)) {
    throw std::runtime_error("no set answered before the failover");
  }

  const std::string lost_url = owner_side.connected_url();
  const std::size_t lost = cluster.index_of(lost_url);
  if (lost == cluster.size()) throw std::runtime_error("owner connected to " + lost_url);
  cluster.server(lost).kill();

  figures f;
  auto owner_link = owner_side.state().subscribe(custody::policy::latest());
  const auto give_up = Clock::now() + kGiveUp;
  for (std::int64_t i = 2; f.accepted < kAcceptedAfterTheKill && Clock::now() < give_up; ++i) {
    ++f.sets;
    const auto start = Clock::now();
    const auto r = setter.set_for(Level{i}, kSetTimeout);
    f.slowest_set = std::max(f.slowest_set, Clock::now() - start);
    f.last_set = i;
    if (r.accepted()) {
      ++f.accepted;
      f.last_accepted = i;
      continue;
    }
    if (r.status() == custody::set_status::timeout) {
      ++f.timed_out;
    } else if (r.status() == custody::set_status::disconnected) {
      ++f.disconnected;
    } else {
      ++f.other;
      std::fprintf(stderr, "set %lld: %s\n", static_cast<long long>(i),
                   std::string(custody::to_string(r.status())).c_str());
    }
    (void)owner_link.recv_for(kRetryPause);  // as a caller would, before asking again
  }
  const std::string final_url = owner_side.connected_url();
  f.owner_moved_to_another_server = !final_url.empty() && final_url != lost_url;
  if (f.last_accepted != 0) {
    f.consumer_received_last = arrives(seen, f.last_accepted);
    nats::Connection late_side(co);
    std::optional<nats::RemoteStore<Level>> late;
    make_once_the_cluster_answers(late, late_side, ro);
    // The exporter writes an accepted value after answering: a new consumer may start before
    // the write, and must then receive it.
    custody::GetSubscriber<Level> late_view = *late;
    auto late_updates = late_view.subscribe(custody::policy::block(1024));
    f.new_consumer_reads_last =
        late_view.get().n == f.last_accepted || arrives(late_updates, f.last_accepted);
  }
  return f;
}

}  // namespace failover
