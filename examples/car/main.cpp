// custody-car: the seed's car example as a program. Four tasks share one simulated car:
//
//   fireup_car_communication     talks to the car; the only owner of the car-data and
//                                car-status stores
//   fireup_increase_speed        task 3: asks for more speed every --increase-every
//   fireup_print_out_data        task 1: prints every update
//   fireup_write_data_into_file  task 2: appends every update to --log-file
//
// and main() is task 4: Ctrl-C, SIGTERM, --duration or a failing task stops them all.
//
// With --runtime coroutines the four tasks (and the schedule that paces them) run as coroutines
// on one io_context thread (coro_tasks.hpp) instead of a thread each, with the same output.
//
// With --nats URL the two stores are also published over NATS (custody::nats::Exporter): other
// processes (custody-car-monitor, or any NATS client) read them and send set requests, which
// reach the communication task exactly like the increase task's. It stays the only owner.
//
// With --metrics ADDR the named tasks, stores, subscriptions and channels are served as
// Prometheus metrics at http://ADDR/metrics (custody::metrics::Exporter) while the car runs.

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <custody/task_group.hpp>

#include "car_device.hpp"
#include "console.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "options.hpp"
#include "run_control.hpp"
#include "schedule.hpp"
#include "tasks.hpp"

#ifdef CUSTODY_CAR_WITH_ASIO
#include "coro_tasks.hpp"
#endif

#ifdef CUSTODY_CAR_WITH_METRICS
#include <custody/metrics.hpp>
#endif

#ifdef CUSTODY_CAR_WITH_NATS
#include <custody/nats.hpp>

#include "car_json.hpp"
#include "car_nats.hpp"
#endif

namespace car {
namespace {

std::uint64_t random_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

// `metrics`: where /metrics is served, with the port it listens on; empty: not served.
std::string header(const Options& o, std::uint64_t seed, const std::string& metrics) {
  std::string line = "custody-car: reading the car every " + format_duration(o.poll_interval) +
                     ", asking for +" + fixed2(o.speed_step) + " km/h every " +
                     format_duration(o.increase_every) + ", logging to " + o.log_file;
  if (o.disconnect_rate > 0 || o.set_failure_rate > 0 || o.device_latency.count() > 0) {
    line += "; faults: disconnect rate " + fixed2(o.disconnect_rate) + ", set failure rate " +
            fixed2(o.set_failure_rate) + ", device latency " + format_duration(o.device_latency);
  }
  line += " (seed " + std::to_string(seed) + ")";
#ifdef CUSTODY_CAR_WITH_NATS
  if (!o.nats_servers.empty()) {
    line += "; publishing to NATS " + redact(o.nats_servers) + " (bucket " + o.nats_bucket +
            ", set requests on " + custody::nats::wire::request_subject(o.nats_bucket, kDataKey) +
            ")";
  }
#endif
  if (!metrics.empty()) line += "; metrics at http://" + metrics + "/metrics";
  if (o.readings) line += "; stops after " + count(*o.readings, "reading", "readings");
  line += o.duration ? "; stops after " + format_duration(*o.duration) : "; Ctrl-C stops";
  return line;
}

std::string summary(const RunStats& s, std::uint64_t console_dropped, const RunEnd& end) {
  return "summary: " + count(s.updates, "update", "updates") + ", " + summary_sets(s) + ", " +
         count(s.disconnects, "disconnect", "disconnects") + ", " +
         count(s.write_errors, "write error", "write errors") +
         summary_tail(s, console_dropped, end);
}

// --runtime threads: each task on a thread of its own, running from its spawn on.
class ThreadRuntime {
 public:
  explicit ThreadRuntime(custody::TaskGroup& group) : group_(group) {}
  custody::TaskGroup& tasks() { return group_; }
  void start() {}
  void join() {}

 private:
  custody::TaskGroup& group_;
};

// One run, with its tasks as threads (ThreadRuntime) or as coroutines on one thread
// (CoroutineRuntime): the same tasks, output, log and exit codes.
template <class Group, class Runtime>
int run_as(const Options& o) {
  // First of all: from here on SIGINT and SIGTERM stop the run, and the summary still comes.
  BasicRunControl<Group> control(o.dump_dot);
  Group& tasks = control.tasks();
  // A standard output whose reader has gone (`custody-car | head -1`) fails with EPIPE instead
  // of killing the program: the run then stops with its summary (README: "Exit status").
  std::signal(SIGPIPE, SIG_IGN);

  // Before anything starts: a log file we cannot open is the user's to fix.
  std::error_code open_error;
  std::unique_ptr<LogFile> log = LogFile::open(o.log_file, open_error);
  if (!log) {
    std::fprintf(stderr, "custody-car: cannot open log file %s: %s; nothing was started\n",
                 o.log_file.c_str(), open_error.message().c_str());
    return kExitFailed;
  }
  const std::uint64_t seed = o.seed ? *o.seed : random_seed();
#ifdef CUSTODY_CAR_WITH_NATS
  // Also before anything starts: a server we cannot reach, or one without JetStream.
  std::optional<NatsLink> nats;
  if (!o.nats_servers.empty()) {
    try {
      nats.emplace(connect_nats(o.nats_servers, o.nats_access, o.nats_bucket, "custody-car"));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "custody-car: %s; nothing was started\n", e.what());
      return kExitFailed;
    }
  }
#endif

  // Also before anything starts: an address we cannot listen on. Serving begins here, and a
  // scrape lists whatever named objects exist at that moment.
  std::string metrics_address;
#ifdef CUSTODY_CAR_WITH_METRICS
  std::optional<custody::metrics::Exporter> metrics;
  if (!o.metrics_address.empty()) {
    try {
      metrics.emplace(o.metrics_address);
      metrics_address = metrics->address();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "custody-car: %s; nothing was started\n", e.what());
      return kExitFailed;
    }
  }
#endif

  Console console;
  RunStats stats;

  console.out(header(o, seed, metrics_address));
  // One tick at a time, in the order of their nominal time, which is also the car's clock: the
  // run is a function of the seed (README: "Reproducible runs").
  Schedule schedule(o.poll_interval, o.increase_every);
  // Where the tasks run. Made after what they use, so that it is gone (its thread joined, or
  // tasks it never ran destroyed) before that is.
  Runtime runtime(tasks);

  auto car = std::make_unique<SimulatedCar>(
      Faults{o.disconnect_rate, o.set_failure_rate, o.device_latency}, seed, tasks.stop_token(),
      [&schedule] { return schedule.now(); });
  CarStores stores =
      fireup_car_communication(runtime.tasks(), std::move(car), schedule.poll_ticks(), stats,
                               std::chrono::system_clock::now, schedule.tick_done());
  fireup_increase_speed(runtime.tasks(), stores.data, schedule.increase_ticks(),
                        IncreaseSettings{o.speed_step, set_timeout_for(o.increase_every)},
                        console.out_sink(), stats, std::chrono::system_clock::now,
                        schedule.tick_done());
  fireup_print_out_data(runtime.tasks(), stores.data, stores.status, console.out_sink(), stats,
                        o.quiet);
  fireup_write_data_into_file(runtime.tasks(), stores.data, std::move(log), console.err_sink(),
                              stats);
#ifdef CUSTODY_CAR_WITH_NATS
  // Two more consumers of the stores, for other processes: the data store with its set
  // capability (set requests from NATS join the local ones in the owner's requests()), the
  // status store without. Made before the go-ahead, so they write the first readings too.
  std::optional<custody::nats::Exporter<CarData>> data_export;
  std::optional<custody::nats::Exporter<CarStatus>> status_export;
  bool refused = false;               // another custody-car owns the bucket's keys
  std::atomic<bool> deposed = false;  // ...since it took them over from this one
  if (nats) {
    // A bucket the exporters make again (the server lost it) keeps --nats-replicas.
    const auto out = [&](const char* key) {
      custody::nats::export_options e = export_to(o.nats_bucket, key);
      e.bucket.replicas = o.nats_access.replicas.value_or(1);
      return e;
    };
    try {
      // Waiting for another owner's lease to end: a signal stops the wait at once.
      data_export.emplace(nats->connection, stores.data, out(kDataKey), tasks.stop_token());
      status_export.emplace(nats->connection, stores.status, out(kStatusKey), tasks.stop_token());
    } catch (const custody::nats::lease_held& e) {
      console.err(std::string("custody-car: ") + e.what() + "; stopping");
      refused = true;
      control.stop("another owner of the bucket");
    } catch (const custody::nats::lease_wait_ended&) {  // stopped: the run is ending anyway
    }
    // Only the threads' runtime gets here: --nats with coroutines is refused with the flags.
    if constexpr (std::is_same_v<Group, custody::TaskGroup>) {
      if (data_export && status_export) {
        tasks.spawn("nats-lease", [&](std::stop_token stop) {
          if (auto why = wait_until_deposed(o.nats_bucket, data_export->lease(),
                                            status_export->lease(), stop)) {
            console.err("custody-car: " + *why + "; stopping");
            deposed = true;
            control.stop("another owner taking a key over");
          }
        });
      }
    }
  }
#endif
  fireup_schedule(
      runtime.tasks(), schedule, [&] { return o.readings && stats.updates >= *o.readings; },
      [&] { control.stop("--readings"); });
  // Every consumer has subscribed: none can miss the first reading.
  stores.start();
  runtime.start();

  // Task 4. A stop request comes from a signal, from a failing task, when --duration is over,
  // after --readings, or once standard output's reader has gone.
  control.run_until_stopped(o.duration, console.out_closed());
  const RunEnd end = control.finish();
  runtime.join();

#ifdef CUSTODY_CAR_WITH_NATS
  if (nats) {
    // The bucket must end with the owner's final values, written while the exporters still
    // hold the keys' leases; then the exporters stop at once and release them.
    if (data_export && status_export && !deposed) {
      for (const auto& problem :
           {publish_final(*nats, kDataKey, stores.data.get(), data_export->fence()),
            publish_final(*nats, kStatusKey, stores.status.get(), status_export->fence())}) {
        if (problem) console.err("custody-car: " + *problem);
      }
    }
    data_export.reset();
    status_export.reset();
  }
#endif

  if (!end.failure.empty()) console.err("custody-car: " + end.failure);
  // With standard output gone, the end of the run still has somewhere to go.
  const bool out_gone = console.out_closed().is_closed();
  for (const std::string& line :
       {last_reading(stores.data.get()), summary(stats, console.dropped(), end)}) {
    if (out_gone) {
      console.err(line);
    } else {
      console.out(line);
    }
  }
  // A terminal that does not keep up gets a short grace period, and then loses what is left.
  const int status = exit_status(end, lines_lost(stats, console.finish()));
#ifdef CUSTODY_CAR_WITH_NATS
  if (refused || deposed) return kExitFailed;
#endif
  return status;
}

int run(const Options& o) {
#ifdef CUSTODY_CAR_WITH_ASIO
  if (o.runtime == Runtime::coroutines) {
    return run_as<custody::asio::TaskGroup, CoroutineRuntime>(o);
  }
#endif
  return run_as<custody::TaskGroup, ThreadRuntime>(o);
}

}  // namespace
}  // namespace car

int main(int argc, char** argv) {
  const int status =
      car::program_main("custody-car", argc, argv, car::parse_options, car::usage, car::run);
#ifdef CUSTODY_CAR_WITH_NATS
  car::close_nats_client();
#endif
  return status;
}
