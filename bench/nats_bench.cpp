// NATS workloads: custody's stores over NATS JetStream (custody::nats), owner and consumers in
// this one process but on separate connections, as separate processes would be, against a real
// nats-server on loopback. Each message crosses the server, so the figures are latencies of
// the whole path (client library, TCP loopback, server, JetStream storage, custody's threads).
//
// Needs a nats-server with JetStream, given by URL:
//
//   bench/nats                                           # starts a server, runs, prints a table
//   CUSTODY_NATS_URL=nats://127.0.0.1:4222 build/release/bench/custody-bench-nats
//
// Workloads (one benchmark iteration = one full run, including connecting; only the measured
// loop is timed). Counters are in microseconds unless named otherwise:
//
//   nats_set_roundtrip          RemoteStore::set() on a second connection, accepted by the
//                               owner's task through an Exporter; each set timed alone, and
//                               after each a bare request/reply between the same two
//                               connections (an echo, same payload) and the same set as a bare
//                               NATS request to the exporter, so all three see the same load.
//                               p50_us, p99_us, sets_per_s; bare_p50_us, bare_p99_us;
//                               wire_set_p50_us, wire_set_p99_us; set_to_bare_p50 =
//                               p50_us / bare_p50_us (target: <= 1.5)
//   nats_update_to_subscriber   the owner publishes a value carrying its send time; a remote
//                               subscriber (policy::block) receives it; the next is published
//                               once it arrived and the exporter's write was acknowledged.
//                               p50_us, p99_us, updates_per_s (target: p50 <= 250 us)
//   nats_supersede_window       the owner publishes 2,000 readings, each after a random pause
//                               of 10 us to 20 ms, spread evenly on a log scale (the pauses
//                               counted are as measured, not as asked for); one remote
//                               subscriber (policy::block) records which arrive. A reading is
//                               skipped only when the next one came before the exporter wrote
//                               it or before the watch sent it. window_us: the longest pause
//                               after a skipped reading (every reading followed by a longer
//                               pause arrived); skipped: how many were; skipped_after_1ms:
//                               how many of them were followed by a pause over 1 ms.
//   nats_fanout_10_subscribers  10 RemoteStores, each on its own connection, subscribed with
//                               policy::block; the owner publishes 5,000 updates, each as soon
//                               as the exporter has written the previous one (the fastest rate
//                               at which the exporter conflates none). updates_per_s: updates
//                               that reached all 10, per second until all had the last one;
//                               p50_us/p99_us: latency of each update to each subscriber
//   nats_fanout_10_burst        the same, but the owner publishes in a tight loop for 2 s, as
//                               fast as it can (taking one core). The exporter writes only the
//                               newest value whenever its previous write is done, so `delivered`
//                               of the `published` updates reach the subscribers; settle_us:
//                               from the last publish until all 10 had it
//
// Floors, for reading the figures above (what each step of the path costs on its own):
//
//   floor_local_set             a local store's set() with an owner task (no NATS)
//   floor_request_reply         a bare NATS request/reply between two connections
//   floor_kv_put                a JetStream key-value put (file storage, as the exporter uses)
//   floor_kv_put_memory         the same in a memory-storage bucket
//   floor_kv_put_to_watch       a put on one connection until a key watcher on another has it
//   probe_exporter_request      a set request sent with a bare NATS request to an Exporter
//                               (the wire protocol, as a non-custody client uses it)

#include <nats/nats.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <custody/nats.hpp>
#include <custody/select.hpp>
#include <custody/store.hpp>

namespace {

using namespace std::chrono_literals;
using bench_clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace cn = custody::nats;

constexpr int set_warmup = 200;
constexpr int set_count = 2'000;
constexpr int update_warmup = 100;
constexpr int update_count = 2'000;
constexpr int fanout_subscribers = 10;
constexpr std::int64_t fanout_updates = 5'000;
constexpr nanoseconds fanout_burst = 2s;
constexpr int floor_warmup = 200;
constexpr int floor_count = 2'000;

constexpr int window_readings = 2'000;
constexpr nanoseconds window_shortest_pause = 10us;
constexpr nanoseconds window_longest_pause = 20ms;

/// Targets: a set costs at most 1.5 bare request/replies measured alongside it; an update
/// reaches a remote subscriber within 250 us (p50).
constexpr double set_target_to_bare_p50 = 1.5;
constexpr double update_target_p50_us = 250;

/// The value the workloads move: a small struct, like the car example's reading.
struct Sample {
  std::int64_t seq = -1;     ///< which update or request this is
  std::int64_t sent_ns = 0;  ///< steady_clock at publish, in ns (one process: one clock)
  double speed = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Sample, seq, sent_ns, speed)

std::string server_url;  // CUSTODY_NATS_URL

[[noreturn]] void fail(std::string_view workload, std::string_view what) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(workload.size()), workload.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<nanoseconds>(bench_clock::now().time_since_epoch()).count();
}

nanoseconds since(bench_clock::time_point start) {
  return std::chrono::duration_cast<nanoseconds>(bench_clock::now() - start);
}

cn::Connection connect(const std::string& name) {
  cn::connection_options o;
  o.servers = {server_url};
  o.name = name;
  return cn::Connection(o);
}

/// A bucket name no earlier run in this server used.
std::string fresh_bucket(std::string_view stem) {
  static int runs = 0;
  return "bench_" + std::string(stem) + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(++runs);
}

cn::bucket_options bucket(const std::string& name, jsStorageType storage = js_FileStorage) {
  cn::bucket_options b;
  b.name = name;
  b.storage = storage;
  return b;
}

cn::export_options export_to(const std::string& name) {
  cn::export_options o;
  o.bucket = bucket(name);
  o.key = "value";
  return o;
}

cn::remote_options follow(const std::string& name) {
  cn::remote_options o;
  o.bucket = bucket(name);
  o.key = "value";
  return o;
}

/// Polls `done` every 20 us until it holds; fails the workload after `limit`.
void wait_until(std::string_view workload, std::string_view what, const std::function<bool()>& done,
                nanoseconds limit = 10s) {
  const auto deadline = bench_clock::now() + limit;
  while (!done()) {
    if (bench_clock::now() > deadline)
      fail(workload, std::string("timed out waiting: ") + std::string(what));
    std::this_thread::sleep_for(20us);
  }
}

/// Latencies of single operations, in microseconds.
class latencies {
 public:
  explicit latencies(std::size_t n) { us_.reserve(n); }
  void add(nanoseconds d) { us_.push_back(std::chrono::duration<double, std::micro>(d).count()); }
  std::size_t size() const { return us_.size(); }
  /// The q-quantile (nearest rank), q in (0, 1].
  double quantile(double q) {
    if (us_.empty()) return 0;
    std::sort(us_.begin(), us_.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(us_.size())));
    return us_[std::clamp<std::size_t>(rank, 1, us_.size()) - 1];
  }

 private:
  std::vector<double> us_;
};

/// Sets the run's time and the latency counters; `rate_name` gets ops per second.
void report(benchmark::State& state, latencies& lat, nanoseconds elapsed, const char* rate_name,
            double target_p50_us = 0) {
  state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
  state.counters["p50_us"] = lat.quantile(0.50);
  state.counters["p99_us"] = lat.quantile(0.99);
  state.counters["max_us"] = lat.quantile(1.0);
  if (target_p50_us > 0) state.counters["target_p50_us"] = target_p50_us;
  state.counters[rate_name] =
      static_cast<double>(lat.size()) / std::chrono::duration<double>(elapsed).count();
  state.SetItemsProcessed(static_cast<std::int64_t>(lat.size()));
}

/// A local store whose owner task accepts every set request, as it is.
class accepting_owner {
 public:
  accepting_owner() : made_(custody::make_store<Sample>(Sample{})) {
    task_ = std::jthread([owner = std::move(made_.owner)](std::stop_token stop) mutable {
      owner.set_stop_token(stop);
      auto requests = owner.requests();
      for (bool running = true; running;) {
        custody::select(
            custody::on_recv(
                requests, [&](custody::SetRequest<Sample> r) { (void)owner.accept(std::move(r)); }),
            custody::on_stop(stop, [&] { running = false; }));
      }
    });
  }
  custody::Store<Sample> store() const { return made_.store; }

 private:
  custody::store_pair<Sample> made_;
  std::jthread task_;  // last: stops first
};

// --- the workloads --------------------------------------------------------------------

/// Answers every request on `subject` of `conn` with its own payload, while it lives.
class echo_responder {
 public:
  echo_responder(std::string_view workload, const cn::Connection& conn,
                 const std::string& subject) {
    const auto echo = [](natsConnection* nc, natsSubscription*, natsMsg* m, void*) {
      natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
      natsMsg_Destroy(m);
    };
    if (natsConnection_Subscribe(&sub_, conn.native(), subject.c_str(), echo, nullptr) != NATS_OK) {
      fail(workload, "subscribe failed");
    }
    conn.flush();
  }
  ~echo_responder() {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }
  echo_responder(const echo_responder&) = delete;
  echo_responder& operator=(const echo_responder&) = delete;

 private:
  natsSubscription* sub_ = nullptr;
};

nanoseconds timed_request(std::string_view workload, const cn::Connection& conn,
                          const std::string& subject, const std::string& payload,
                          cn::message& reply);

void nats_set_roundtrip(benchmark::State& state) {
  constexpr std::string_view name = "nats_set_roundtrip";
  for (auto _ : state) {
    const auto owner_conn = connect("bench-owner");
    const auto client_conn = connect("bench-client");
    const std::string b = fresh_bucket("set");
    accepting_owner owner;
    cn::Exporter<Sample> exporter(owner_conn, owner.store(), export_to(b));
    cn::RemoteStore<Sample> remote(client_conn, follow(b));
    const custody::Store<Sample> store = remote.store();
    // The bare request/reply: from the requester's connection to the owner's, and back.
    const std::string echo_subject = fresh_bucket("echo");
    const echo_responder echo(name, owner_conn, echo_subject);

    const auto set_one = [&](std::int64_t i) {
      const auto start = bench_clock::now();
      auto r = store.set(Sample{i, 0, static_cast<double>(i % 200)});
      const nanoseconds took = since(start);
      if (!r) fail(name, "set() answered " + std::string(custody::to_string(r.status())));
      if (r.value().seq != i) fail(name, "set() accepted another value");
      // accepted: get() already returns the stored value or a newer one.
      if (store.get().seq < i) fail(name, "get() older than an accepted set()");
      return took;
    };
    const auto bare_one = [&](std::int64_t i) {
      cn::message reply;
      const std::string payload = cn::json_codec<Sample>::encode(Sample{i, 0, 0});
      return timed_request(name, client_conn, echo_subject, payload, reply);
    };
    // The same set as a bare NATS request to the exporter (the wire protocol, no RemoteStore):
    // what the exporter and the owner add to the bare request/reply, and what the RemoteStore
    // adds to that.
    const std::string set_subject = cn::wire::request_subject(b, "value");
    std::int64_t next_wire_seq = -1;  // below the sets' own, so get() checks still hold
    const auto wire_one = [&] {
      cn::message reply;
      const std::string payload = cn::json_codec<Sample>::encode(Sample{next_wire_seq--, 0, 0});
      const nanoseconds took = timed_request(name, client_conn, set_subject, payload, reply);
      const char* status = nullptr;
      if (natsMsgHeader_Get(reply.get(), cn::wire::status_header, &status) != NATS_OK ||
          status != cn::wire::accepted) {
        fail(name, "a bare set request not accepted");
      }
      return took;
    };
    for (std::int64_t i = 0; i < set_warmup; ++i) {
      set_one(i);
      bare_one(i);
      wire_one();
    }
    latencies lat(set_count);
    latencies bare(set_count);
    latencies wire(set_count);
    nanoseconds setting{0};
    for (std::int64_t i = set_warmup; i < set_warmup + set_count; ++i) {
      const nanoseconds took = set_one(i);
      setting += took;
      lat.add(took);
      bare.add(bare_one(i));
      wire.add(wire_one());
    }
    const double bare_p50 = bare.quantile(0.50);
    state.counters["bare_p50_us"] = bare_p50;
    state.counters["bare_p99_us"] = bare.quantile(0.99);
    state.counters["wire_set_p50_us"] = wire.quantile(0.50);
    state.counters["wire_set_p99_us"] = wire.quantile(0.99);
    state.counters["set_to_bare_p50"] = lat.quantile(0.50) / bare_p50;
    state.counters["target_set_to_bare_p50"] = set_target_to_bare_p50;
    report(state, lat, setting, "sets_per_s");
  }
}

void nats_update_to_subscriber(benchmark::State& state) {
  constexpr std::string_view name = "nats_update_to_subscriber";
  for (auto _ : state) {
    const auto owner_conn = connect("bench-owner");
    const auto client_conn = connect("bench-client");
    const std::string b = fresh_bucket("update");
    auto made = custody::make_store<Sample>(Sample{});
    cn::Exporter<Sample> exporter(owner_conn, made.store, export_to(b));
    wait_until(name, "the first write", [&] { return exporter.stats().writes >= 1; });
    cn::RemoteStore<Sample> remote(client_conn, follow(b));
    auto sub = remote.store().subscribe(custody::policy::block());

    // Publishes update i and waits until the subscriber has it; then until the exporter's
    // write was acknowledged too, so that the next update never queues behind this one.
    const auto one = [&](std::int64_t i) {
      const std::uint64_t writes = exporter.stats().writes;
      (void)made.owner.publish(Sample{i, now_ns(), 0});
      for (;;) {
        auto r = sub.recv_for(10s);
        if (!r) fail(name, "no update within 10 s");
        if (r->seq > i) fail(name, "an update from the future");
        if (r->seq == i) {
          const nanoseconds took(now_ns() - r->sent_ns);
          wait_until(name, "the exporter's write",
                     [&] { return exporter.stats().writes > writes; });
          return took;
        }
      }
    };
    for (std::int64_t i = 0; i < update_warmup; ++i) one(i);
    latencies lat(update_count);
    const auto start = bench_clock::now();
    for (std::int64_t i = update_warmup; i < update_warmup + update_count; ++i) lat.add(one(i));
    report(state, lat, since(start), "updates_per_s", update_target_p50_us);
  }
}

/// 10 remote subscribers (each RemoteStore on its own connection, as 10 processes would have,
/// subscribed with policy::block) follow one exported store while the owner publishes.
/// paced: `n` updates, each once the exporter has written the previous one, the fastest rate at
/// which none is conflated. Otherwise: in a tight loop, as fast as the owner can, for `burst`.
void fanout(benchmark::State& state, std::string_view name, bool paced, std::int64_t n,
            nanoseconds burst = {}) {
  for (auto _ : state) {
    const auto owner_conn = connect("bench-owner");
    const std::string b = fresh_bucket("fanout");
    auto made = custody::make_store<Sample>(Sample{});
    cn::Exporter<Sample> exporter(owner_conn, made.store, export_to(b));
    wait_until(name, "the first write", [&] { return exporter.stats().writes >= 1; });

    std::vector<std::optional<cn::Connection>> conns;
    std::vector<std::unique_ptr<cn::RemoteStore<Sample>>> remotes;
    std::vector<custody::Subscription<Sample>> subs;
    for (int s = 0; s < fanout_subscribers; ++s) {
      conns.emplace_back(connect("bench-subscriber-" + std::to_string(s)));
      remotes.push_back(std::make_unique<cn::RemoteStore<Sample>>(*conns.back(), follow(b)));
      subs.push_back(remotes.back()->store().subscribe(custody::policy::block()));
    }
    const std::uint64_t writes_before = exporter.stats().writes;

    struct outcome {
      bench_clock::time_point last{};
      std::int64_t received = 0;
      std::int64_t duplicates = 0;
      std::vector<std::int64_t> latency_ns;
      std::string error;
    };
    std::vector<outcome> out(fanout_subscribers);
    std::atomic<int> ready{0};
    // The last update's seq; stored before it is published, so a reader that has it knows.
    std::atomic<std::int64_t> last{paced ? n - 1 : std::numeric_limits<std::int64_t>::max()};
    bench_clock::time_point start;
    bench_clock::time_point published;
    {
      std::vector<std::jthread> readers;
      for (int s = 0; s < fanout_subscribers; ++s) {
        readers.emplace_back([&, s] {
          outcome& o = out[static_cast<std::size_t>(s)];
          o.latency_ns.reserve(1 << 14);
          custody::Subscription<Sample>& sub = subs[static_cast<std::size_t>(s)];
          ready.fetch_add(1);
          std::int64_t last_seq = -1;
          for (;;) {
            auto r = sub.recv_for(30s);
            if (!r) {
              o.error = "no update within 30 s";
              return;
            }
            const std::int64_t at = now_ns();
            if (r->seq < 0) continue;  // the value from before the run
            if (r->seq == last_seq) {  // the same update again: counted, see `duplicates`
              ++o.duplicates;
              continue;
            }
            if (r->seq < last_seq) {
              o.error = "update " + std::to_string(r->seq) + " after update " +
                        std::to_string(last_seq) + " (subscriber " + std::to_string(s) + ")";
              return;
            }
            last_seq = r->seq;
            ++o.received;
            o.latency_ns.push_back(at - r->sent_ns);
            if (r->seq == last.load(std::memory_order_acquire)) {
              o.last = bench_clock::time_point(nanoseconds(at));
              return;
            }
          }
        });
      }
      wait_until(name, "the readers", [&] { return ready.load() == fanout_subscribers; });
      start = bench_clock::now();
      if (paced) {
        for (std::int64_t i = 0; i < n; ++i) {
          const std::uint64_t writes = exporter.stats().writes;
          (void)made.owner.publish(Sample{i, now_ns(), 0});
          const auto deadline = bench_clock::now() + 10s;
          while (exporter.stats().writes == writes) {
            if (bench_clock::now() > deadline) fail(name, "the exporter wrote nothing in 10 s");
            std::this_thread::sleep_for(10us);
          }
        }
      } else {
        const auto until = start + burst;
        std::int64_t i = 0;
        for (; (i & 255) != 0 || bench_clock::now() < until; ++i) {
          (void)made.owner.publish(Sample{i, now_ns(), 0});
        }
        last.store(i, std::memory_order_release);
        (void)made.owner.publish(Sample{i, now_ns(), 0});
        n = i + 1;
      }
      published = bench_clock::now();
    }
    bench_clock::time_point end = start;
    std::int64_t fewest = n;
    std::int64_t duplicates = 0;
    latencies lat(4096);
    for (const outcome& o : out) {
      if (!o.error.empty()) fail(name, o.error);
      duplicates += o.duplicates;
      end = std::max(end, o.last);
      fewest = std::min(fewest, o.received);
      for (const std::int64_t ns : o.latency_ns) lat.add(nanoseconds(ns));
    }
    const double seconds = std::chrono::duration<double>(end - start).count();
    state.SetIterationTime(seconds);
    state.counters["p50_us"] = lat.quantile(0.50);
    state.counters["p99_us"] = lat.quantile(0.99);
    state.counters["max_us"] = lat.quantile(1.0);
    // Updates that reached every subscriber, per second until all had the last one.
    state.counters["updates_per_s"] = static_cast<double>(fewest) / seconds;
    state.counters["delivered"] = static_cast<double>(fewest);
    state.counters["published"] = static_cast<double>(n);
    state.counters["published_per_s"] =
        static_cast<double>(n) / std::chrono::duration<double>(published - start).count();
    // From the last publish until every subscriber had it.
    state.counters["settle_us"] =
        std::chrono::duration<double, std::micro>(end - published).count();
    // Updates a subscriber received twice (the same seq right after itself): none expected.
    state.counters["duplicates"] = static_cast<double>(duplicates);
    state.counters["kv_writes"] = static_cast<double>(exporter.stats().writes - writes_before);
    state.SetItemsProcessed(fewest * fanout_subscribers);
  }
}

void nats_fanout_10_subscribers(benchmark::State& state) {
  fanout(state, "nats_fanout_10_subscribers", true, fanout_updates);
}

void nats_fanout_10_burst(benchmark::State& state) {
  fanout(state, "nats_fanout_10_burst", false, 0, fanout_burst);
}

void nats_supersede_window(benchmark::State& state) {
  constexpr std::string_view name = "nats_supersede_window";
  for (auto _ : state) {
    const auto owner_conn = connect("bench-owner");
    const auto client_conn = connect("bench-client");
    const std::string b = fresh_bucket("window");
    auto made = custody::make_store<Sample>(Sample{});
    cn::Exporter<Sample> exporter(owner_conn, made.store, export_to(b));
    wait_until(name, "the first write", [&] { return exporter.stats().writes >= 1; });
    cn::RemoteStore<Sample> remote(client_conn, follow(b));
    auto sub = remote.store().subscribe(custody::policy::block());

    std::vector<char> arrived(window_readings, 0);
    std::atomic<std::int64_t> newest{-1};
    std::jthread receiver([&](std::stop_token stop) {
      for (;;) {
        auto r = sub.recv(stop);
        if (!r) return;
        if (r->seq >= 0) {
          arrived[static_cast<std::size_t>(r->seq)] = 1;
          newest.store(r->seq, std::memory_order_release);
        }
      }
    });
    std::vector<std::int64_t> published_ns(window_readings);
    // Pauses spread evenly on a log scale: as many from 10 to 100 us as from 1 to 10 ms.
    std::minstd_rand random(12345);
    std::uniform_real_distribution<double> log_pause(
        std::log(static_cast<double>(window_shortest_pause.count())),
        std::log(static_cast<double>(window_longest_pause.count())));
    const auto start = bench_clock::now();
    for (std::int64_t i = 0; i < window_readings; ++i) {
      published_ns[static_cast<std::size_t>(i)] = now_ns();
      (void)made.owner.publish(Sample{i, published_ns[static_cast<std::size_t>(i)], 0});
      std::this_thread::sleep_for(nanoseconds(std::llround(std::exp(log_pause(random)))));
    }
    wait_until(name, "the last reading",
               [&] { return newest.load(std::memory_order_acquire) == window_readings - 1; });
    const nanoseconds elapsed = since(start);
    receiver.request_stop();
    receiver.join();  // before `arrived` is read

    double window_us = 0;
    std::int64_t skipped = 0;
    std::int64_t skipped_after_1ms = 0;  // the tail: superseded after more than 1 ms
    double shortest_kept_us = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i + 1 < arrived.size(); ++i) {
      const double pause_us = static_cast<double>(published_ns[i + 1] - published_ns[i]) / 1e3;
      if (arrived[i] != 0) {
        shortest_kept_us = std::min(shortest_kept_us, pause_us);
        continue;
      }
      ++skipped;
      if (pause_us > 1'000) ++skipped_after_1ms;
      window_us = std::max(window_us, pause_us);
    }
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
    state.counters["window_us"] = window_us;
    state.counters["skipped"] = static_cast<double>(skipped);
    state.counters["skipped_after_1ms"] = static_cast<double>(skipped_after_1ms);
    state.counters["published"] = window_readings;
    state.counters["shortest_kept_us"] = shortest_kept_us;
  }
}

// --- floors ---------------------------------------------------------------------------

/// Runs `one()` floor_warmup times untimed, then floor_count times, each timed.
template <class One>
void measure(benchmark::State& state, One one, const char* rate_name) {
  for (int i = 0; i < floor_warmup; ++i) (void)one(i);
  latencies lat(floor_count);
  const auto start = bench_clock::now();
  for (int i = floor_warmup; i < floor_warmup + floor_count; ++i) lat.add(one(i));
  report(state, lat, since(start), rate_name);
}

/// One request on `conn`, timed from sending to the reply, which `reply` takes. Fails the
/// workload if no reply comes within 5 s.
nanoseconds timed_request(std::string_view workload, const cn::Connection& conn,
                          const std::string& subject, const std::string& payload,
                          cn::message& reply) {
  const auto start = bench_clock::now();
  natsMsg* raw = nullptr;
  if (natsConnection_Request(&raw, conn.native(), subject.c_str(), payload.data(),
                             static_cast<int>(payload.size()), 5000) != NATS_OK) {
    fail(workload, "request failed");
  }
  const nanoseconds took = since(start);
  reply.reset(raw);
  return took;
}

void floor_local_set(benchmark::State& state) {
  for (auto _ : state) {
    accepting_owner owner;
    const custody::Store<Sample> store = owner.store();
    measure(
        state,
        [&](std::int64_t i) {
          const auto start = bench_clock::now();
          if (!store.set(Sample{i, 0, 0})) fail("floor_local_set", "set() not accepted");
          return since(start);
        },
        "sets_per_s");
  }
}

void floor_request_reply(benchmark::State& state) {
  constexpr std::string_view name = "floor_request_reply";
  for (auto _ : state) {
    const auto responder = connect("bench-responder");
    const auto requester = connect("bench-requester");
    const std::string subject = fresh_bucket("echo");
    natsSubscription* raw = nullptr;
    const auto echo = [](natsConnection* nc, natsSubscription*, natsMsg* m, void*) {
      natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m), natsMsg_GetDataLength(m));
      natsMsg_Destroy(m);
    };
    if (natsConnection_Subscribe(&raw, responder.native(), subject.c_str(), echo, nullptr) !=
        NATS_OK) {
      fail(name, "subscribe failed");
    }
    responder.flush();
    const std::string payload = cn::json_codec<Sample>::encode(Sample{1, 2, 3});
    measure(
        state,
        [&](int) {
          cn::message reply;
          return timed_request(name, requester, subject, payload, reply);
        },
        "requests_per_s");
    natsSubscription_Unsubscribe(raw);
    natsSubscription_Destroy(raw);
  }
}

void kv_put(benchmark::State& state, jsStorageType storage) {
  for (auto _ : state) {
    const auto conn = connect("bench-kv");
    cn::KeyValue kv(conn, bucket(fresh_bucket("put"), storage));
    const std::string payload = cn::json_codec<Sample>::encode(Sample{1, now_ns(), 3});
    const std::string key = "value";
    measure(
        state,
        [&](int) {
          const auto start = bench_clock::now();
          (void)kv.put(key, payload);
          return since(start);
        },
        "puts_per_s");
  }
}

void floor_kv_put(benchmark::State& state) { kv_put(state, js_FileStorage); }
void floor_kv_put_memory(benchmark::State& state) { kv_put(state, js_MemoryStorage); }

void floor_kv_put_to_watch(benchmark::State& state) {
  constexpr std::string_view name = "floor_kv_put_to_watch";
  for (auto _ : state) {
    const auto writer = connect("bench-kv-writer");
    const auto watcher_conn = connect("bench-kv-watcher");
    const std::string b = fresh_bucket("watch");
    cn::KeyValue out(writer, bucket(b));
    cn::KeyValue in(watcher_conn, bucket(b));
    const std::string key = "value";
    kvWatcher* raw = nullptr;
    if (kvStore_Watch(&raw, in.native(), key.c_str(), nullptr) != NATS_OK) {
      fail(name, "watch failed");
    }
    const cn::kv_watcher watcher(raw);
    const std::string payload = cn::json_codec<Sample>::encode(Sample{1, now_ns(), 3});
    measure(
        state,
        [&](int) {
          const auto start = bench_clock::now();
          const std::uint64_t revision = out.put(key, payload);
          for (;;) {
            kvEntry* e = nullptr;
            if (kvWatcher_Next(&e, raw, 5000) != NATS_OK) fail(name, "watch: nothing in 5 s");
            if (e == nullptr) continue;  // "all current values delivered"
            const cn::kv_entry owned(e);
            if (kvEntry_Revision(e) >= revision) return since(start);
          }
        },
        "puts_per_s");
  }
}

void probe_exporter_request(benchmark::State& state) {
  constexpr std::string_view name = "probe_exporter_request";
  for (auto _ : state) {
    const auto owner_conn = connect("bench-owner");
    const auto client_conn = connect("bench-client");
    const std::string b = fresh_bucket("probe");
    accepting_owner owner;
    cn::Exporter<Sample> exporter(owner_conn, owner.store(), export_to(b));
    const std::string subject = cn::wire::request_subject(b, "value");
    measure(
        state,
        [&](std::int64_t i) {
          const std::string payload = cn::json_codec<Sample>::encode(Sample{i, 0, 0});
          cn::message reply;
          const nanoseconds took = timed_request(name, client_conn, subject, payload, reply);
          const char* status = nullptr;
          if (natsMsgHeader_Get(reply.get(), cn::wire::status_header, &status) != NATS_OK ||
              status != cn::wire::accepted) {
            fail(name, "not accepted");
          }
          return took;
        },
        "sets_per_s");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const struct {
    const char* name;
    void (*run)(benchmark::State&);
  } workloads[] = {
      {"nats_set_roundtrip", nats_set_roundtrip},
      {"nats_update_to_subscriber", nats_update_to_subscriber},
      {"nats_fanout_10_subscribers", nats_fanout_10_subscribers},
      {"nats_fanout_10_burst", nats_fanout_10_burst},
      {"nats_supersede_window", nats_supersede_window},
      {"floor_local_set", floor_local_set},
      {"floor_request_reply", floor_request_reply},
      {"floor_kv_put", floor_kv_put},
      {"floor_kv_put_memory", floor_kv_put_memory},
      {"floor_kv_put_to_watch", floor_kv_put_to_watch},
      {"probe_exporter_request", probe_exporter_request},
  };
  for (const auto& w : workloads) {
    benchmark::RegisterBenchmark(w.name, w.run)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  // Before Initialize(), which takes the benchmark flags out of argv.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::strstr(argv[i], "list_tests") != nullptr;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const char* url = std::getenv("CUSTODY_NATS_URL");
  if (!listing && (url == nullptr || *url == '\0')) {
    std::fprintf(stderr,
                 "custody-bench-nats: CUSTODY_NATS_URL is not set. It needs a nats-server with "
                 "JetStream:\n"
                 "  nats-server -js -a 127.0.0.1 -p 4222 &\n"
                 "  CUSTODY_NATS_URL=nats://127.0.0.1:4222 %s\n"
                 "or let bench/nats start one and run this.\n",
                 argv[0]);
    return 2;
  }
  if (url != nullptr) server_url = url;
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custody-bench-nats: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
