// custody-car-monitor: the seed's tasks 1 to 3 in another process. `custody-car --nats URL`
// owns the car and publishes its two stores over NATS; this program follows them with
// custody::nats::RemoteStore and runs the very same fire-up functions against them:
//
//   fireup_print_out_data        task 1: prints every reading the car publishes
//   fireup_write_data_into_file  task 2: appends it to --log-file
//   fireup_increase_speed        task 3: asks the car's owner for more speed, over NATS
//
// and main() is task 4: Ctrl-C, SIGTERM, --duration or a failing task stops them all. The
// owner is not ours: it may come later, go away and come back; the monitor keeps following.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>

#include <custody/nats.hpp>
#include <custody/select.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

#include "car_json.hpp"
#include "car_nats.hpp"
#include "console.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "options.hpp"
#include "run_control.hpp"
#include "tasks.hpp"

namespace car {
namespace {

std::string header(const MonitorOptions& o) {
  std::string line = "custody-car-monitor: following the car at NATS " + redact(o.nats_servers) +
                     " (bucket " + o.nats_bucket + "), asking for +" + fixed2(o.speed_step) +
                     " km/h every " + format_duration(o.increase_every) + ", logging to " +
                     o.log_file;
  line += o.duration ? "; stops after " + format_duration(*o.duration) : "; Ctrl-C stops";
  return line;
}

struct MonitorStats {
  std::uint64_t received = 0;          // readings the data store received from the bucket
  std::uint64_t nats_disconnects = 0;  // times the NATS connection was lost
};

std::string summary(const RunStats& s, const MonitorStats& m, std::uint64_t console_dropped,
                    const RunEnd& end) {
  return "summary: " + count(m.received, "update", "updates") + " received, " + summary_sets(s) +
         ", " + count(m.nats_disconnects, "NATS disconnect", "NATS disconnects") + ", " +
         count(s.write_errors, "write error", "write errors") +
         summary_tail(s, console_dropped, end);
}

// Task 3 with an owner that comes and goes. The increase task (unchanged from custody-car)
// ends when a set request finds the owner gone, which in one process means the program is
// shutting down; here it means that no custody-car serves the store right now (not started
// yet, or ended). So it runs in a group of its own, started again once the owner publishes a
// new reading.
void keep_increasing(std::stop_token stop, custody::GetSetter<CarData> data,
                     custody::Subscription<CarData> published, Ticks ticks,
                     IncreaseSettings settings, const LineSink& out, RunStats& stats) {
  const auto now = [] { return time_of_day(std::chrono::system_clock::now()); };
  while (!stop.stop_requested()) {
    {
      custody::TaskGroup increase;
      std::stop_callback forward(stop, [&] { increase.request_stop(); });
      fireup_increase_speed(increase, data, ticks, settings, out, stats);
      increase.wait();  // rethrows what the task threw
    }
    if (stop.stop_requested()) return;
    // What arrived before the owner went is no sign of its return.
    while (published.try_recv()) {
    }
    out(now() +
        "  no owner answers set requests (is custody-car --nats running?); asking "
        "again once the car publishes");
    bool back = false;
    custody::select(custody::on_recv(
                        published, [&](CarData) { back = true; }, [] {}),
                    custody::on_stop(stop));
    if (!back) return;  // stopping, or the store closed
    out(now() + "  the car publishes again: asking for more speed");
  }
}

int run(const MonitorOptions& o) {
  // First of all, as in custody-car: signals stop the run from here on.
  RunControl control;
  custody::TaskGroup& tasks = control.tasks();

  // Before anything starts, as in custody-car: the log file, then the NATS server.
  std::error_code open_error;
  std::unique_ptr<LogFile> log = LogFile::open(o.log_file, open_error);
  if (!log) {
    std::fprintf(stderr, "custody-car-monitor: cannot open log file %s: %s; nothing was started\n",
                 o.log_file.c_str(), open_error.message().c_str());
    return kExitFailed;
  }
  std::optional<NatsLink> nats;
  using custody::nats::RemoteStore;
  // In optionals: destroyed at the stop request, which closes their local stores, so that the
  // print and file tasks write what they hold and end at once.
  std::optional<RemoteStore<CarData>> data;
  std::optional<RemoteStore<CarStatus>> status;
  // A monitor may start before the server (or its JetStream): it says so once and tries again
  // every second until the server answers or it is stopped. A refusal ends it at once.
  for (bool told = false; !nats;) {
    try {
      nats.emplace(
          connect_nats(o.nats_servers, o.nats_access, o.nats_bucket, "custody-car-monitor"));
    } catch (const nats_unreachable& e) {
      if (!told) {  // on standard output, as the monitor's other progress lines
        std::printf(
            "custody-car-monitor: %s; trying again every second until it answers (Ctrl-C "
            "stops)\n",
            e.what());
        std::fflush(stdout);
        told = true;
      }
      bool stopped = false;
      custody::select(custody::on_timeout(std::chrono::seconds(1)),
                      custody::on_stop(tasks.stop_token(), [&] { stopped = true; }));
      if (stopped) {
        std::printf("custody-car-monitor: stopped before NATS answered\n");
        return kExitOk;
      }
      continue;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "custody-car-monitor: %s; nothing was started\n", e.what());
      return kExitFailed;
    }
    if (told) {
      std::printf("custody-car-monitor: NATS answers now\n");
      std::fflush(stdout);
    }
  }
  try {
    // A bucket made again by a remote store keeps --nats-replicas.
    const auto in = [&](const char* key) {
      custody::nats::remote_options r = follow(o.nats_bucket, key);
      r.bucket.replicas = o.nats_access.replicas.value_or(1);
      return r;
    };
    data.emplace(nats->connection, in(kDataKey));
    status.emplace(nats->connection, in(kStatusKey));
  } catch (const custody::nats::error& e) {
    std::fprintf(stderr,
                 "custody-car-monitor: cannot follow bucket %s at NATS %s: %s; nothing was "
                 "started\n",
                 o.nats_bucket.c_str(), redact(o.nats_servers).c_str(), e.what());
    return kExitFailed;
  }
  const custody::Store<CarData> car_data = data->store();
  const custody::GetSubscriber<CarStatus> car_status = status->store();

  Console console;
  RunStats stats;
  MonitorStats monitor;

  console.out(header(o));
  custody::Ticker increase_ticks(o.increase_every);

  // Subscribed before they return, as in custody-car; with_current(): the car's state now.
  fireup_print_out_data(tasks, car_data, car_status, console.out_sink(), stats);
  fireup_write_data_into_file(tasks, car_data, std::move(log), console.err_sink(), stats);
  tasks.spawn("increase speed",
              [car_data, published = car_data.subscribe(custody::policy::latest()),
               ticks = increase_ticks.receiver(),
               // Conditional: a +1 computed from a stale reading must not roll the car back.
               settings = IncreaseSettings{o.speed_step, set_timeout_for(o.increase_every), true},
               out = console.out_sink(), &stats](std::stop_token stop) {
                keep_increasing(std::move(stop), car_data, published, ticks, settings, out, stats);
              });

  // Task 4, as in custody-car.
  control.run_until_stopped(o.duration);
  monitor.received = data->stats().updates;
  monitor.nats_disconnects = nats->connection.state().get().disconnects;
  data.reset();
  status.reset();

  const RunEnd end = control.finish();
  if (!end.failure.empty()) console.err("custody-car-monitor: " + end.failure);
  console.out(last_reading(car_data.get()));
  console.out(summary(stats, monitor, console.dropped(), end));
  return exit_status(end, lines_lost(stats, console.finish()));
}

}  // namespace
}  // namespace car

int main(int argc, char** argv) {
  const int status = car::program_main("custody-car-monitor", argc, argv,
                                       car::parse_monitor_options, car::monitor_usage, car::run);
  car::close_nats_client();
  return status;
}
