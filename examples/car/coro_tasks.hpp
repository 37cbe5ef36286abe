#pragma once
// The car's tasks as coroutines, all on one io_context thread (--runtime coroutines). Each does
// what its thread twin in tasks.hpp does, with the same steps (task_steps.hpp), so both runtimes
// print, log and count the same; only the waiting differs: every wait on a channel, a store or
// a timer is custody::asio's asynchronous form, so the io_context thread never blocks on one.
//
// Two things still run on that thread and may take time: the device calls (the manufacturer's
// API, CarDevice, is blocking; the simulated car's --device-latency waits there, and a stop
// request cuts it short as it does for the threads) and the log file's write(2). Standard output
// and error are not: Console hands lines to writer threads of their own without waiting.

#include <functional>
#include <memory>
#include <thread>

// The whole of custody::asio, in the order its umbrella header includes it (asio/task.hpp does
// not compile after asio/task_group.hpp alone), with asio::io_context. Asio only after a
// standard header: Asio 1.22 picks its allocation functions by whether the standard library's
// configuration is defined already, and every translation unit must pick the same
// (AddressSanitizer reports the mix).
#include <custody/asio.hpp>

#include "car_device.hpp"
#include "log_file.hpp"
#include "schedule.hpp"
#include "tasks.hpp"

namespace car {

/// Where the coroutine runtime's tasks run: spawned in `group`, on `io`.
struct Coroutines {
  custody::asio::TaskGroup& group;
  asio::io_context& io;
};

/// fireup_car_communication (tasks.hpp) as a coroutine: the same task, the same answers.
CarStores fireup_car_communication(Coroutines tasks, std::unique_ptr<CarDevice> device, Ticks poll,
                                   RunStats& stats, WallClock now = std::chrono::system_clock::now,
                                   TickDone polled = {});

/// fireup_increase_speed (tasks.hpp) as a coroutine. Unconditional sets only: there is no
/// asynchronous set_if, so `settings.conditional` throws std::invalid_argument.
void fireup_increase_speed(Coroutines tasks, custody::GetSetter<CarData> data, Ticks ticks,
                           IncreaseSettings settings, LineSink out, RunStats& stats,
                           WallClock now = std::chrono::system_clock::now, TickDone tick_done = {});

/// fireup_print_out_data (tasks.hpp) as a coroutine. Subscribes before returning.
void fireup_print_out_data(Coroutines tasks, custody::Subscriber<CarData> data,
                           custody::GetSubscriber<CarStatus> status, LineSink out, RunStats& stats,
                           bool quiet = false);

/// fireup_write_data_into_file (tasks.hpp) as a coroutine. Subscribes before returning.
void fireup_write_data_into_file(Coroutines tasks, custody::Subscriber<CarData> data,
                                 std::unique_ptr<LineWriter> file, LineSink err, RunStats& stats);

/// Schedule::run as a coroutine task (see fireup_schedule in schedule.hpp). `schedule` must
/// outlive the task.
void fireup_schedule(Coroutines tasks, Schedule& schedule, std::function<bool()> enough,
                     std::function<void()> on_enough);

/// The coroutine runtime's io_context and the one thread that runs it.
class CoroutineRuntime {
 public:
  explicit CoroutineRuntime(custody::asio::TaskGroup& group) : group_(group) {}
  ~CoroutineRuntime() { join(); }
  CoroutineRuntime(const CoroutineRuntime&) = delete;
  CoroutineRuntime& operator=(const CoroutineRuntime&) = delete;

  Coroutines tasks() { return {group_, io_}; }

  /// Starts the thread that runs every task spawned so far (and later, by them). It ends once
  /// every task has ended.
  void start();
  /// Waits for that thread to end (at once if it was not started).
  void join();

 private:
  custody::asio::TaskGroup& group_;
  asio::io_context io_{1};  // one thread runs it
  std::thread runner_;
};

}  // namespace car
