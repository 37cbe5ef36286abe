#include "run_control.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include <custody/select.hpp>
#include <custody/timer.hpp>

#include "format.hpp"

namespace car {

RunControl::RunControl()
    : on_signal_(tasks_.stop_source()),
      note_stop_(tasks_.stop_token(), note_time{&stop_requested_}),
      started_(std::chrono::steady_clock::now()) {
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGINT);
  sigaddset(&watched, SIGTERM);
  sigaddset(&watched, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &watched, nullptr);
}

void RunControl::run_until_stopped(std::optional<std::chrono::nanoseconds> duration,
                                   custody::Receiver<int> closed_output) {
  // A nil receiver never fires: no --duration.
  const auto deadline = duration ? custody::after(*duration) : custody::Receiver<SteadyTime>();
  custody::select(custody::on_recv(deadline, [&](SteadyTime) { duration_over_ = true; }),
                  custody::on_recv(
                      closed_output, [](int) {}, [&] { stop("a closed standard output"); }),
                  custody::on_stop(tasks_.stop_token()));
  tasks_.request_stop();
}

void RunControl::stop(const char* reason) {
  if (!tasks_.stop_token().stop_requested()) {
    const char* none = nullptr;
    stop_reason_.compare_exchange_strong(none, reason);
  }
  tasks_.request_stop();
}

RunEnd RunControl::finish() {
  RunEnd end;
  try {
    tasks_.wait();
  } catch (const std::exception& e) {
    end.failure = "the " + tasks_.failed_task().value_or("?") + " task failed: " + e.what();
  }
  const SteadyTime ended = std::chrono::steady_clock::now();
  // The tasks may have seen the stop and ended while the thread that asked for it still runs
  // the other stop callbacks (those registered later run first), before the one noting the time.
  // Asking again runs it here if nobody asked; otherwise wait the moment it takes. Noted after
  // the tasks ended, the stop took no time of its own: 0, not a negative figure.
  tasks_.request_stop();
  stop_requested_.wait(SteadyTime{});
  end.stop_ms = std::max(
      0.0, std::chrono::duration<double, std::milli>(ended - stop_requested_.load()).count());
  end.ran_s = std::chrono::duration<double>(ended - started_).count();
  const auto sig = on_signal_.last_signal();
  const char* stopped_because = stop_reason_.load();
  end.reason = !end.failure.empty() ? "a failed task"
               : duration_over_     ? "--duration"
               : sig == SIGINT      ? "SIGINT"
               : sig == SIGTERM     ? "SIGTERM"
               : stopped_because    ? stopped_because
                                    : "request";
  return end;
}

std::string summary_sets(const RunStats& s) {
  return count(s.sets_accepted, "set request", "set requests") + " accepted, " +
         std::to_string(s.sets_rejected) + " rejected, " + std::to_string(s.sets_timed_out) +
         " timed out, " + std::to_string(s.sets_unconfirmed) + " unconfirmed";
}

std::string summary_tail(const RunStats& s, std::uint64_t console_dropped, const RunEnd& end) {
  std::string tail;
  if (s.lines_missed > 0) tail += ", " + std::to_string(s.lines_missed) + " not logged";
  if (s.updates_not_shown > 0) tail += ", " + std::to_string(s.updates_not_shown) + " not shown";
  if (s.sets_unanswered > 0) {
    tail +=
        ", " + count(s.sets_unanswered, "set request", "set requests") + " unanswered at the stop";
  }
  if (console_dropped > 0) {
    tail += ", " + count(console_dropped, "line", "lines") + " dropped from the console";
  }
  tail += "; stopped by " + end.reason + " after " + fixed2(end.ran_s) + " s, every task ended " +
          fixed1(end.stop_ms) + " ms after the stop request";
  return tail;
}

}  // namespace car

namespace car {

std::uint64_t lines_lost(const RunStats& s, std::uint64_t console_lost) {
  return s.write_errors + s.lines_missed + s.updates_not_shown + console_lost;
}

int exit_status(const RunEnd& end, std::uint64_t lost) {
  if (!end.failure.empty()) return kExitFailed;
  return lost > 0 ? kExitLinesLost : kExitOk;
}

// The project's version, from CMake.
std::string version() { return CUSTODY_CAR_VERSION; }

}  // namespace car
