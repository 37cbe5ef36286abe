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

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <custody/nats.hpp>
#include <custody/select.hpp>
#include <custody/signals.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

#include "car_json.hpp"
#include "car_nats.hpp"
#include "console.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "options.hpp"
#include "tasks.hpp"

namespace car {
namespace {

std::string fixed1(double v) {
  char out[32];
  std::snprintf(out, sizeof out, "%.1f", v);
  return out;
}

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

std::string summary(const RunStats& s, const MonitorStats& m, std::string_view reason, double ran_s,
                    double stop_ms) {
  std::string line = "summary: " + count(m.received, "update", "updates") + " received, " +
                     count(s.sets_accepted, "set request", "set requests") + " accepted, " +
                     std::to_string(s.sets_rejected) + " rejected, " +
                     count(m.nats_disconnects, "NATS disconnect", "NATS disconnects") + ", " +
                     count(s.write_errors, "write error", "write errors");
  if (s.lines_missed > 0) line += ", " + std::to_string(s.lines_missed) + " not logged";
  if (s.updates_not_shown > 0) line += ", " + std::to_string(s.updates_not_shown) + " not shown";
  line += "; stopped by " + std::string(reason) + " after " + fixed2(ran_s) +
          " s, every task ended " + fixed1(stop_ms) + " ms after the stop request";
  return line;
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
  // Before anything starts, as in custody-car: the log file, then the NATS server.
  std::error_code open_error;
  std::unique_ptr<LogFile> log = LogFile::open(o.log_file, open_error);
  if (!log) {
    std::fprintf(stderr, "custody-car-monitor: cannot open log file %s: %s; nothing was started\n",
                 o.log_file.c_str(), open_error.message().c_str());
    return 1;
  }
  std::optional<NatsLink> nats;
  try {
    nats.emplace(connect_nats(o.nats_servers, o.nats_bucket, "custody-car-monitor"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custody-car-monitor: %s; nothing was started\n", e.what());
    return 1;
  }
  using custody::nats::RemoteStore;
  // In optionals: destroyed at the stop request, which closes their local stores, so that the
  // print and file tasks write what they hold and end at once.
  std::optional<RemoteStore<CarData>> data;
  std::optional<RemoteStore<CarStatus>> status;
  try {
    data.emplace(nats->connection, follow(o.nats_bucket, kDataKey));
    status.emplace(nats->connection, follow(o.nats_bucket, kStatusKey));
  } catch (const custody::nats::error& e) {
    std::fprintf(stderr,
                 "custody-car-monitor: cannot follow bucket %s at NATS %s: %s; nothing was "
                 "started\n",
                 o.nats_bucket.c_str(), redact(o.nats_servers).c_str(), e.what());
    return 1;
  }
  const custody::Store<CarData> car_data = data->store();
  const custody::GetSubscriber<CarStatus> car_status = status->store();

  Console console;
  RunStats stats;
  MonitorStats monitor;
  custody::TaskGroup tasks;
  custody::SignalStop on_signal(tasks.stop_source());
  std::atomic<SteadyTime> stop_requested{};
  std::stop_callback note_stop(tasks.stop_token(),
                               [&] { stop_requested.store(std::chrono::steady_clock::now()); });

  console.out(header(o));
  const SteadyTime started = std::chrono::steady_clock::now();
  custody::Ticker increase_ticks(o.increase_every);

  // Subscribed before they return, as in custody-car; with_current(): the car's state now.
  fireup_print_out_data(tasks, car_data, car_status, console.out_sink(), stats);
  fireup_write_data_into_file(tasks, car_data, std::move(log), console.err_sink(), stats);
  // An answer later than the next tick is no use: the next request supersedes it.
  tasks.spawn("increase speed",
              [car_data, published = car_data.subscribe(custody::policy::latest()),
               ticks = increase_ticks.receiver(),
               settings = IncreaseSettings{o.speed_step, o.increase_every},
               out = console.out_sink(), &stats](std::stop_token stop) {
                keep_increasing(std::move(stop), car_data, published, ticks, settings, out, stats);
              });

  // Task 4, as in custody-car.
  const auto deadline = o.duration ? custody::after(*o.duration) : custody::Receiver<SteadyTime>();
  bool duration_over = false;
  custody::select(custody::on_recv(deadline, [&](SteadyTime) { duration_over = true; }),
                  custody::on_stop(tasks.stop_token()));
  tasks.request_stop();
  monitor.received = data->stats().updates;
  monitor.nats_disconnects = nats->connection.state().get().disconnects;
  data.reset();
  status.reset();

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

  std::string reason = "a failed task";
  if (failure.empty()) {
    const auto sig = on_signal.last_signal();
    reason = duration_over    ? "--duration"
             : sig == SIGINT  ? "SIGINT"
             : sig == SIGTERM ? "SIGTERM"
                              : "request";
  } else {
    console.err("custody-car-monitor: " + failure);
  }
  console.out(last_reading(car_data.get()));
  console.out(summary(stats, monitor, reason, ran_s, stop_ms));
  return failure.empty() ? 0 : 1;
}

}  // namespace
}  // namespace car

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const car::ParsedMonitorOptions parsed = car::parse_monitor_options(args);
  if (parsed.help) {
    std::fputs(car::monitor_usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.options) {
    std::fprintf(stderr, "custody-car-monitor: %s\n\n%s", parsed.error.c_str(),
                 car::monitor_usage().c_str());
    return 2;
  }
  try {
    return car::run(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custody-car-monitor: %s\n", e.what());
    return 1;
  }
}
