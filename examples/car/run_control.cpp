#include "run_control.hpp"

#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <cstdio>

#include "format.hpp"

namespace car {

void unblock_stop_signals() {
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGINT);
  sigaddset(&watched, SIGTERM);
  sigaddset(&watched, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &watched, nullptr);
}

const char* stop_reason(bool failed, bool duration_over, std::optional<int> signal,
                        const char* stopped_because) {
  return failed              ? "a failed task"
         : duration_over     ? "--duration"
         : signal == SIGINT  ? "SIGINT"
         : signal == SIGTERM ? "SIGTERM"
         : stopped_because   ? stopped_because
                             : "request";
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
