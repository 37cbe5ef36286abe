#pragma once
// Task 4 of both programs (custody-car and custody-car-monitor): what stops the other tasks (a
// signal, a failing task, --duration), how the run ended, and main()'s exit codes.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <custody/dump_on_signal.hpp>
#include <custody/select.hpp>
#include <custody/signals.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

#include "tasks.hpp"

namespace car {

/// How a run ended.
struct RunEnd {
  std::string failure;  ///< what the failing task threw; empty when none failed
  /// "--duration", "SIGINT", "SIGTERM", "a failed task", what stop() was given, or "request"
  std::string reason;
  double ran_s = 0;    ///< from the start to the end of the last task
  double stop_ms = 0;  ///< from the stop request to the end of the last task
};

/// Unblocks SIGINT and SIGTERM for the calling thread (and the threads it starts later).
void unblock_stop_signals();

/// RunEnd::reason: "a failed task", "--duration", "SIGINT", "SIGTERM", what stop() was given
/// (`stopped_because`, may be null), or "request", the first that applies.
const char* stop_reason(bool failed, bool duration_over, std::optional<int> signal,
                        const char* stopped_because);

/// The program's task group and the ways it is stopped. Made first in run(), before anything
/// starts: SIGINT and SIGTERM stop the group from then on. They are unblocked once their handler
/// is in place (threads started later inherit that), so one that arrived while a parent process
/// had them blocked is handled then too.
///
/// `Group` is custody::TaskGroup (tasks on threads: RunControl) or custody::asio::TaskGroup
/// (coroutines: coro_tasks.hpp). run_until_stopped() and finish() block: call them from one
/// thread, which runs none of the group's tasks.
template <class Group>
class BasicRunControl {
 public:
  /// `dump_dot`: where each SIGUSR1 dump also writes the wait-for graph (DOT); empty: nowhere.
  explicit BasicRunControl(std::string dump_dot = {})
      : on_signal_(tasks_.stop_source()),
        dump_on_signal_(SIGUSR1, STDERR_FILENO, std::move(dump_dot)),
        note_stop_(tasks_.stop_token(), note_time{&stop_requested_}),
        started_(std::chrono::steady_clock::now()) {
    unblock_stop_signals();
  }
  BasicRunControl(const BasicRunControl&) = delete;
  BasicRunControl& operator=(const BasicRunControl&) = delete;

  Group& tasks() { return tasks_; }

  /// Blocks until `duration` is over (never without one), a signal arrives, a task fails, stop()
  /// is called or `closed_output` is closed (a nil receiver never is), then asks every task to
  /// stop. A closed output is named "a closed standard output" in the summary.
  void run_until_stopped(std::optional<std::chrono::nanoseconds> duration,
                         custody::Receiver<int> closed_output = {}) {
    // A nil receiver never fires: no --duration.
    const auto deadline = duration ? custody::after(*duration) : custody::Receiver<SteadyTime>();
    custody::select(custody::on_recv(deadline, [&](SteadyTime) { duration_over_ = true; }),
                    custody::on_recv(
                        closed_output, [](int) {}, [&] { stop("a closed standard output"); }),
                    custody::on_stop(tasks_.stop_token()));
    tasks_.request_stop();
  }

  /// Asks every task to stop because of `reason` (kept as it is: a string literal), which the
  /// summary names unless a stop was requested before. Thread-safe; never blocks.
  void stop(const char* reason) {
    if (!tasks_.stop_token().stop_requested()) {
      const char* none = nullptr;
      stop_reason_.compare_exchange_strong(none, reason);
    }
    tasks_.request_stop();
  }

  /// Waits for every task to end and says how the run went.
  RunEnd finish() {
    RunEnd end;
    try {
      tasks_.wait();
    } catch (const std::exception& e) {
      end.failure = "the " + tasks_.failed_task().value_or("?") + " task failed: " + e.what();
    }
    const SteadyTime ended = std::chrono::steady_clock::now();
    // The tasks may have seen the stop and ended while the thread that asked for it still runs
    // the other stop callbacks (those registered later run first), before the one noting the
    // time. Asking again runs it here if nobody asked; otherwise wait the moment it takes. Noted
    // after the tasks ended, the stop took no time of its own: 0, not a negative figure.
    tasks_.request_stop();
    stop_requested_.wait(SteadyTime{});
    end.stop_ms = std::max(
        0.0, std::chrono::duration<double, std::milli>(ended - stop_requested_.load()).count());
    end.ran_s = std::chrono::duration<double>(ended - started_).count();
    end.reason = stop_reason(!end.failure.empty(), duration_over_, on_signal_.last_signal(),
                             stop_reason_.load());
    return end;
  }

 private:
  struct note_time {
    std::atomic<SteadyTime>* at;
    void operator()() const noexcept {
      at->store(std::chrono::steady_clock::now());
      at->notify_all();
    }
  };

  // The threads' group is named: custody::inspect() and the dump list its tasks.

  std::atomic<SteadyTime> stop_requested_{};
  std::atomic<const char*> stop_reason_{nullptr};  // set by stop(), if it came first
  // Named in both runtimes: the SIGUSR1 dump lists its tasks under the same name.
  Group tasks_{"tasks"};
  custody::SignalStop on_signal_;
  custody::DumpOnSignal dump_on_signal_;  // kill -USR1 <pid>: what every task is doing
  std::stop_callback<note_time> note_stop_;
  const SteadyTime started_;
  bool duration_over_ = false;
};

/// The threads' RunControl: each task on a thread of its own.
using RunControl = BasicRunControl<custody::TaskGroup>;

/// Both programs' exit statuses (README: "Exit status").
inline constexpr int kExitOk = 0;         ///< stopped by a signal or --duration; nothing lost
inline constexpr int kExitFailed = 1;     ///< could not start, or a task failed
inline constexpr int kExitBadFlags = 2;   ///< a bad flag: nothing started
inline constexpr int kExitLinesLost = 3;  ///< ran and stopped, but lines were lost

/// The set requests' part of both programs' summaries: "5 set requests accepted, 1 rejected,
/// 0 timed out, 2 unconfirmed".
std::string summary_sets(const RunStats& s);

/// The end of both programs' summaries: what was not logged or shown, then how the run stopped.
/// `console_dropped`: lines dropped so far because standard output or error did not keep up.
std::string summary_tail(const RunStats& s, std::uint64_t console_dropped, const RunEnd& end);

/// The lines a run lost: log lines not written (write errors, or the log fell behind),
/// readings not shown, and `console_lost` lines that did not reach standard output or error.
std::uint64_t lines_lost(const RunStats& s, std::uint64_t console_lost);

/// A finished run's exit status: kExitFailed if a task failed, kExitLinesLost if lines were
/// lost, otherwise kExitOk.
int exit_status(const RunEnd& end, std::uint64_t lost);

/// The version both programs print for --version.
std::string version();

/// Both programs' main(): --help prints the usage and --version the version (exit 0), bad
/// options the error and the usage (exit 2), otherwise run() (its exit code; 1 if it throws).
template <class Parsed, class Options>
int program_main(const char* program, int argc, char** argv,
                 Parsed (*parse)(std::span<const std::string_view>), std::string (*usage)(),
                 int (*run)(const Options&)) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const Parsed parsed = parse(args);
  if (parsed.help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  if (parsed.version) {
    std::printf("%s %s\n", program, version().c_str());
    return 0;
  }
  if (!parsed.options) {
    std::fprintf(stderr, "%s: %s\n\n%s", program, parsed.error.c_str(), usage().c_str());
    return kExitBadFlags;
  }
  try {
    return run(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kExitFailed;
  }
}

}  // namespace car
