#pragma once
// Task 4 of both programs (custody-car and custody-car-monitor): what stops the other tasks (a
// signal, a failing task, --duration), how the run ended, and main()'s exit codes.

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
#include <vector>

#include <custody/dump_on_signal.hpp>
#include <custody/signals.hpp>
#include <custody/task_group.hpp>

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

/// The program's task group and the ways it is stopped. Made first in run(), before anything
/// starts: SIGINT and SIGTERM stop the group from then on. They are unblocked once their handler
/// is in place (threads started later inherit that), so one that arrived while a parent process
/// had them blocked is handled then too.
class RunControl {
 public:
  RunControl();
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  custody::TaskGroup& tasks() { return tasks_; }

  /// Blocks until `duration` is over (never without one), a signal arrives, a task fails, stop()
  /// is called or `closed_output` is closed (a nil receiver never is), then asks every task to
  /// stop. A closed output is named "a closed standard output" in the summary.
  void run_until_stopped(std::optional<std::chrono::nanoseconds> duration,
                         custody::Receiver<int> closed_output = {});

  /// Asks every task to stop because of `reason` (kept as it is: a string literal), which the
  /// summary names unless a stop was requested before. Thread-safe; never blocks.
  void stop(const char* reason);

  /// Waits for every task to end and says how the run went.
  RunEnd finish();

 private:
  struct note_time {
    std::atomic<SteadyTime>* at;
    void operator()() const noexcept {
      at->store(std::chrono::steady_clock::now());
      at->notify_all();
    }
  };

  std::atomic<SteadyTime> stop_requested_{};
  std::atomic<const char*> stop_reason_{nullptr};  // set by stop(), if it came first
  custody::TaskGroup tasks_{"tasks"};  // named: custody::inspect() and the dump list its tasks
  custody::SignalStop on_signal_;
  custody::DumpOnSignal dump_on_signal_{SIGUSR1};  // kill -USR1 <pid>: what every task is doing
  std::stop_callback<note_time> note_stop_;
  const SteadyTime started_;
  bool duration_over_ = false;
};

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
