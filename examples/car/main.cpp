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
// With --nats URL the two stores are also published over NATS (custody::nats::Exporter): other
// processes (custody-car-monitor, or any NATS client) read them and send set requests, which
// reach the communication task exactly like the increase task's. It stays the only owner.

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
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <custody/select.hpp>
#include <custody/signals.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

#include "car_device.hpp"
#include "console.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "options.hpp"
#include "tasks.hpp"

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

std::string fixed1(double v) {
  char out[32];
  std::snprintf(out, sizeof out, "%.1f", v);
  return out;
}

std::string header(const Options& o, std::uint64_t seed) {
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
  line += o.duration ? "; stops after " + format_duration(*o.duration) : "; Ctrl-C stops";
  return line;
}

std::string summary(const RunStats& s, std::string_view reason, double ran_s, double stop_ms) {
  std::string line = "summary: " + count(s.updates, "update", "updates") + ", " +
                     count(s.sets_accepted, "set request", "set requests") + " accepted, " +
                     std::to_string(s.sets_rejected) + " rejected, " +
                     count(s.disconnects, "disconnect", "disconnects") + ", " +
                     count(s.write_errors, "write error", "write errors");
  if (s.lines_missed > 0) line += ", " + std::to_string(s.lines_missed) + " not logged";
  if (s.updates_not_shown > 0) line += ", " + std::to_string(s.updates_not_shown) + " not shown";
  line += "; stopped by " + std::string(reason) + " after " + fixed2(ran_s) +
          " s, every task ended " + fixed1(stop_ms) + " ms after the stop request";
  return line;
}

int run(const Options& o) {
  // Before anything starts: a log file we cannot open is the user's to fix.
  std::error_code open_error;
  std::unique_ptr<LogFile> log = LogFile::open(o.log_file, open_error);
  if (!log) {
    std::fprintf(stderr, "custody-car: cannot open log file %s: %s; nothing was started\n",
                 o.log_file.c_str(), open_error.message().c_str());
    return 1;
  }
  const std::uint64_t seed = o.seed ? *o.seed : random_seed();
#ifdef CUSTODY_CAR_WITH_NATS
  // Also before anything starts: a server we cannot reach, or one without JetStream.
  std::optional<NatsLink> nats;
  if (!o.nats_servers.empty()) {
    try {
      nats.emplace(connect_nats(o.nats_servers, o.nats_bucket, "custody-car"));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "custody-car: %s; nothing was started\n", e.what());
      return 1;
    }
  }
#endif

  Console console;
  RunStats stats;
  custody::TaskGroup tasks;
  custody::SignalStop on_signal(tasks.stop_source());
  std::atomic<SteadyTime> stop_requested{};
  std::stop_callback note_stop(tasks.stop_token(),
                               [&] { stop_requested.store(std::chrono::steady_clock::now()); });

  console.out(header(o, seed));
  const SteadyTime started = std::chrono::steady_clock::now();
  custody::Ticker poll_ticks(o.poll_interval);
  custody::Ticker increase_ticks(o.increase_every);

  auto car = std::make_unique<SimulatedCar>(
      Faults{o.disconnect_rate, o.set_failure_rate, o.device_latency}, seed, tasks.stop_token());
  CarStores stores = fireup_car_communication(tasks, std::move(car), poll_ticks.receiver(), stats);
  // An answer later than the next tick is no use: the next request supersedes it.
  fireup_increase_speed(tasks, stores.data, increase_ticks.receiver(),
                        IncreaseSettings{o.speed_step, o.increase_every}, console.out_sink(),
                        stats);
  fireup_print_out_data(tasks, stores.data, stores.status, console.out_sink(), stats);
  fireup_write_data_into_file(tasks, stores.data, std::move(log), console.err_sink(), stats);
#ifdef CUSTODY_CAR_WITH_NATS
  // Two more consumers of the stores, for other processes: the data store with its set
  // capability (set requests from NATS join the local ones in the owner's requests()), the
  // status store without. Made before the go-ahead, so they write the first readings too.
  std::optional<custody::nats::Exporter<CarData>> data_export;
  std::optional<custody::nats::Exporter<CarStatus>> status_export;
  if (nats) {
    data_export.emplace(nats->connection, stores.data, export_to(o.nats_bucket, kDataKey));
    status_export.emplace(nats->connection, stores.status, export_to(o.nats_bucket, kStatusKey));
  }
#endif
  // Every consumer has subscribed: none can miss the first reading.
  stores.start();

  // Task 4. A stop request comes from a signal (SignalStop), from a failing task (TaskGroup)
  // or from here when --duration is over. A nil receiver never fires: no --duration.
  const auto deadline = o.duration ? custody::after(*o.duration) : custody::Receiver<SteadyTime>();
  bool duration_over = false;
  custody::select(custody::on_recv(deadline, [&](SteadyTime) { duration_over = true; }),
                  custody::on_stop(tasks.stop_token()));
  tasks.request_stop();

  std::string failure;
  try {
    tasks.wait();
  } catch (const std::exception& e) {
    failure = "the " + tasks.failed_task().value_or("?") + " task failed: " + e.what();
  }
  const SteadyTime ended = std::chrono::steady_clock::now();
  const double stop_ms =
      std::chrono::duration<double, std::milli>(ended - stop_requested.load()).count();
  const double ran_s = std::chrono::duration<double>(ended - started).count();

#ifdef CUSTODY_CAR_WITH_NATS
  if (nats) {
    // The exporters stop at once; the bucket must still end with the owner's final values.
    data_export.reset();
    status_export.reset();
    for (const auto& problem : {publish_final(*nats, kDataKey, stores.data.get()),
                                publish_final(*nats, kStatusKey, stores.status.get())}) {
      if (problem) console.err("custody-car: " + *problem);
    }
  }
#endif

  std::string reason = "a failed task";
  if (failure.empty()) {
    const auto sig = on_signal.last_signal();
    reason = duration_over    ? "--duration"
             : sig == SIGINT  ? "SIGINT"
             : sig == SIGTERM ? "SIGTERM"
                              : "request";
  } else {
    console.err("custody-car: " + failure);
  }
  console.out(last_reading(stores.data.get()));
  console.out(summary(stats, reason, ran_s, stop_ms));
  return failure.empty() ? 0 : 1;
}

}  // namespace
}  // namespace car

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const car::ParsedOptions parsed = car::parse_options(args);
  if (parsed.help) {
    std::fputs(car::usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.options) {
    std::fprintf(stderr, "custody-car: %s\n\n%s", parsed.error.c_str(), car::usage().c_str());
    return 2;
  }
  try {
    return car::run(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custody-car: %s\n", e.what());
    return 1;
  }
}
