// Runs the custody-car program with millisecond periods and checks what a user sees: the log
// file line by line, the screen, the summary, exit codes, stopping, bad input and faults.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "options.hpp"
#include "support/child_process.hpp"

namespace {

using namespace std::chrono_literals;
using custody_test::Clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kTimeout = 30s;
// The stop requirement: every task ends within this of the stop request.
constexpr double kStopBudgetMs = 100;

using custody_test::read_file;
using custody_test::split_lines;
using custody_test::TempDir;

// `args` after `--runtime runtime`: first, since `--` may end the flags.
std::vector<std::string> with_runtime(const std::string& runtime,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> all{"--runtime", runtime};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

// custody-car as a child process (see support/child_process.hpp), with its tasks run as
// `runtime` says (--runtime).
class CarProcess : public custody_test::Process {
 public:
  CarProcess(const std::string& runtime, const std::vector<std::string>& args,
             const std::string& dir, custody_test::ProcessOptions options = {kTimeout, 0, {}})
      : Process("custody-car", CUSTODY_CAR_BINARY, with_runtime(runtime, args), dir, options) {}
};

struct Summary {
  std::uint64_t updates = 0, accepted = 0, rejected = 0, timed_out = 0, unconfirmed = 0,
                disconnects = 0, write_errors = 0, not_logged = 0, not_shown = 0, unanswered = 0,
                dropped = 0;
  std::string reason;
  double ran_s = 0, stop_ms = 0;
  // Lines the run lost, for its exit status.
  std::uint64_t lost() const { return write_errors + not_logged + not_shown + dropped; }
};

std::optional<Summary> parse_summary(const std::string& line) {
  static const std::regex shape(
      R"(^summary: (\d+) updates?, (\d+) set requests? accepted, (\d+) rejected, (\d+) timed )"
      R"(out, (\d+) unconfirmed, (\d+) disconnects?, (\d+) write errors?(, (\d+) not logged)?)"
      R"((, (\d+) not shown)?(, (\d+) set requests? unanswered at the stop)?)"
      R"((, (\d+) lines? dropped from the console)?; stopped by (.+) )"
      R"(after ([0-9.]+) s, every task ended ([0-9.]+) ms after the stop request$)");
  std::smatch m;
  if (!std::regex_match(line, m, shape)) return std::nullopt;
  const auto number = [&](int i) { return m[i].matched ? std::stoull(m[i]) : 0; };
  Summary s;
  s.updates = number(1);
  s.accepted = number(2);
  s.rejected = number(3);
  s.timed_out = number(4);
  s.unconfirmed = number(5);
  s.disconnects = number(6);
  s.write_errors = number(7);
  s.not_logged = number(9);
  s.not_shown = number(11);
  s.unanswered = number(13);
  s.dropped = number(15);
  s.reason = m[16];
  s.ran_s = std::stod(m[17]);
  s.stop_ms = std::stod(m[18]);
  return s;
}

// One finished run.
struct CarRun {
  int exit_code = -1;
  std::vector<std::string> out;
  std::string err;
  Summary summary;
  double seconds = 0;  // from start to exit, as seen from outside
};

CarRun run_car(const std::string& runtime, const std::vector<std::string>& args,
               const std::string& dir, bool expect_summary = true) {
  CarProcess car(runtime, args, dir);
  CarRun run;
  run.exit_code = car.finish();
  run.out = car.out();
  run.err = car.err();
  run.seconds = std::chrono::duration<double>(car.ended() - car.started()).count();
  if (expect_summary) {
    const auto summary = run.out.empty() ? std::nullopt : parse_summary(run.out.back());
    EXPECT_TRUE(summary) << "no summary as the last line; stdout ends with: "
                         << (run.out.empty() ? "<nothing>" : run.out.back())
                         << "\nstderr: " << run.err;
    if (summary) run.summary = *summary;
  }
  return run;
}

std::size_t count_matching(const std::vector<std::string>& lines, const std::regex& pattern) {
  return static_cast<std::size_t>(std::count_if(
      lines.begin(), lines.end(), [&](const auto& l) { return std::regex_search(l, pattern); }));
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const std::regex kLogLine(
    R"(^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}): (\d+\.\d{2}), (\d+\.\d{2})$)");
const std::regex kScreenReading(
    R"(^\d{2}:\d{2}:\d{2}\.\d{3}  speed +\d+\.\d{2} km/h  location +\d+\.\d{2} m  connected)");

struct LogEntry {
  std::string time;
  double speed, location;
};

// The lines of a log, each checked against `<ISO 8601 date>: <speed>, <location>`.
std::vector<LogEntry> parse_log(const std::vector<std::string>& lines) {
  std::vector<LogEntry> entries;
  for (const std::string& line : lines) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, kLogLine)) << "log line: '" << line << "'";
    if (!m.empty()) entries.push_back({m[1], std::stod(m[2]), std::stod(m[3])});
  }
  return entries;
}

// Every test of the program runs once per runtime (--runtime threads and coroutines): both
// must behave alike in everything a user sees.
// (Threads only in a build without custody::asio.)
const std::vector<std::string> kRuntimes = car::coroutines_available()
                                               ? std::vector<std::string>{"threads", "coroutines"}
                                               : std::vector<std::string>{"threads"};

class CarProgramBase : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir.path().empty()) << "no temporary directory"; }
  std::string log_path() const { return dir.path() + "/log.txt"; }
  virtual std::string runtime() const = 0;

  TempDir dir;
};

class CarProgram : public CarProgramBase, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string runtime() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Runtimes, CarProgram, ::testing::ValuesIn(kRuntimes),
                         [](const auto& info) { return info.param; });

TEST_P(CarProgram, LogsOneIsoLinePerUpdateAndAppends) {
  std::ofstream(log_path()) << "an earlier run\n";
  const CarRun run = run_car(runtime(),
                             {"--poll-interval", "20ms", "--increase-every", "100ms", "--duration",
                              "600ms", "--log-file", log_path(), "--seed", "1"},
                             dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");

  std::vector<std::string> lines = split_lines(read_file(log_path()));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "an earlier run") << "the log is appended to, never truncated";
  lines.erase(lines.begin());
  const std::vector<LogEntry> log = parse_log(lines);
  EXPECT_EQ(log.size(), run.summary.updates) << "one line per update";
  EXPECT_GE(log.size(), 5u) << "about 30 polls in 600 ms";
  for (std::size_t i = 1; i < log.size(); ++i) {
    EXPECT_LE(log[i - 1].time, log[i].time) << "line " << i;
    EXPECT_LE(log[i - 1].location, log[i].location) << "line " << i;
  }

  // The screen shows the same updates, framed by the header and the summary.
  ASSERT_GE(run.out.size(), 2u);
  EXPECT_EQ(run.out.front().rfind("custody-car: reading the car every 20ms", 0), 0u)
      << run.out.front();
  EXPECT_EQ(count_matching(run.out, kScreenReading), run.summary.updates);
  EXPECT_EQ(run.summary.reason, "--duration");
  EXPECT_EQ(run.summary.write_errors, 0u);
}

TEST_P(CarProgram, SpeedRisesOneStepPerIncreasePeriod) {
  const CarRun run =
      run_car(runtime(),
              {"--poll-interval", "25ms", "--increase-every", "100ms", "--speed-step", "2.5",
               "--duration", "1050ms", "--log-file", log_path()},
              dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<LogEntry> log = parse_log(split_lines(read_file(log_path())));
  ASSERT_FALSE(log.empty());

  // The speeds logged are 0, 2.5, 5, ... in order, each step taken once.
  std::vector<double> speeds;
  for (const LogEntry& e : log) {
    if (speeds.empty() || e.speed != speeds.back()) speeds.push_back(e.speed);
  }
  for (std::size_t i = 0; i < speeds.size(); ++i) EXPECT_EQ(speeds[i], 2.5 * i) << "step " << i;
  const std::size_t steps = speeds.size() - 1;
  EXPECT_EQ(steps, run.summary.accepted);
  EXPECT_EQ(run.summary.rejected, 0u);
  // Ten periods in 1050 ms; generous bounds for a loaded machine. A sanitizer slows the start
  // down, before the --duration timer is set, so the upper bound is a wall-clock one.
  EXPECT_GE(steps, 4u);
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LE(steps, 11u);
  }

  std::vector<std::string> answers;
  const std::regex answer(R"(set speed ([0-9.]+) km/h: (.*)$)");
  for (const std::string& line : run.out) {
    std::smatch m;
    if (std::regex_search(line, m, answer)) answers.push_back(m[1].str() + " " + m[2].str());
  }
  ASSERT_EQ(answers.size(), steps);
  char expected[64];
  for (std::size_t i = 0; i < steps; ++i) {
    std::snprintf(expected, sizeof expected, "%.2f accepted", 2.5 * static_cast<double>(i + 1));
    EXPECT_EQ(answers[i], expected);
  }
}

class CarProgramSignal : public CarProgramBase,
                         public ::testing::WithParamInterface<std::tuple<std::string, int>> {
 protected:
  std::string runtime() const override { return std::get<0>(GetParam()); }
};

TEST_P(CarProgramSignal, StopsPromptlyAndCleanly) {
  const int sig = std::get<1>(GetParam());
  // The seed's default periods: the first reading still shows at once.
  CarProcess car(runtime(), {"--log-file", log_path()}, dir.path());
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LT(Clock::now() - car.started(), 2s) << "output appears within 2 s";
  }

  const auto signalled = Clock::now();
  car.signal(sig);
  const int exit_code = car.finish();
  EXPECT_EQ(exit_code, 0) << car.err();
  EXPECT_LT(car.ended() - signalled, 3s) << "generous: the program's own figure is below";
  ASSERT_FALSE(car.out().empty());
  const auto summary = parse_summary(car.out().back());
  ASSERT_TRUE(summary) << car.out().back();
  EXPECT_EQ(summary->reason, sig == SIGINT ? "SIGINT" : "SIGTERM");
  // The program's own figure lies within what this test saw from the signal to the exit.
  EXPECT_GE(summary->stop_ms, 0.0);
  const double seen_ms = std::chrono::duration<double, std::milli>(car.ended() - signalled).count();
  EXPECT_LE(summary->stop_ms, seen_ms);
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LE(summary->stop_ms, kStopBudgetMs);
  }
  EXPECT_GE(summary->updates, 1u);
  EXPECT_EQ(parse_log(split_lines(read_file(log_path()))).size(), summary->updates);
}

INSTANTIATE_TEST_SUITE_P(Signals, CarProgramSignal,
                         ::testing::Combine(::testing::ValuesIn(kRuntimes),
                                            ::testing::Values(SIGINT, SIGTERM)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == SIGINT ? "_SIGINT" : "_SIGTERM");
                         });

TEST_P(CarProgram, DurationStopsOnTime) {
  const CarRun run = run_car(
      runtime(), {"--duration", "300ms", "--poll-interval", "50ms", "--log-file", log_path()},
      dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.summary.reason, "--duration");
  EXPECT_GE(run.summary.ran_s, 0.3);
  EXPECT_GE(run.seconds, 0.3);
  EXPECT_LT(run.seconds, 3.3) << "generous";
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LE(run.summary.stop_ms, kStopBudgetMs);
  }
}

TEST_P(CarProgram, SlowDeviceCallsDoNotDelayTheStop) {
  CarProcess car(runtime(),
                 {"--device-latency", "300ms", "--poll-interval", "50ms", "--log-file", log_path()},
                 dir.path());
  // Connecting and a first reading take three slow calls.
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  car.signal(SIGTERM);
  EXPECT_EQ(car.finish(), 0) << car.err();
  const auto summary = parse_summary(car.out().back());
  ASSERT_TRUE(summary) << car.out().back();
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LE(summary->stop_ms, kStopBudgetMs) << "a device call in progress is cut short";
  }
}

TEST_P(CarProgram, BadFlagsExitWithCode2AndNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--poll-interval", "-1s"}, "--poll-interval"},
      {{"--poll-interval", "soon"}, "--poll-interval"},
      {{"--increase-every", "0s"}, "--increase-every"},
      {{"--speed-step", "abc"}, "--speed-step"},
      {{"--disconnect-rate", "2"}, "--disconnect-rate"},
      {{"--device-latency=-1ms"}, "--device-latency"},
      {{"--frobnicate"}, "--frobnicate"},
      {{"--log-file"}, "--log-file"},
  };
  for (const auto& [args, flag] : cases) {
    const CarRun run = run_car(runtime(), args, dir.path(), false);
    EXPECT_EQ(run.exit_code, 2) << flag;
    EXPECT_TRUE(run.out.empty()) << flag << ": nothing starts";
    EXPECT_EQ(run.err.rfind("custody-car: " + flag, 0) == 0 ||
                  run.err.rfind("custody-car: unknown flag '" + flag + "'", 0) == 0,
              true)
        << run.err;
    EXPECT_NE(run.err.find("usage: custody-car"), std::string::npos) << run.err;
  }
}

TEST_P(CarProgram, HelpExitsWith0) {
  const CarRun run = run_car(runtime(), {"--help"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 0);
  ASSERT_FALSE(run.out.empty());
  EXPECT_EQ(run.out.front(), "usage: custody-car [flags]");
  EXPECT_EQ(count_matching(run.out, std::regex(R"(^  --runtime R  .*threads.*coroutines)")), 1u);
  EXPECT_EQ(run.err, "");
}

TEST_P(CarProgram, UnopenableLogFileExitsWith1BeforeStartingAnything) {
  const std::string missing = dir.path() + "/no-such-dir/log.txt";
  CarRun run = run_car(runtime(), {"--log-file", missing, "--duration", "10s"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(run.out.empty()) << "nothing started: " << run.out.front();
  EXPECT_EQ(run.err, "custody-car: cannot open log file " + missing +
                         ": No such file or directory; nothing was started\n");

  run = run_car(runtime(), {"--log-file", dir.path(), "--duration", "10s"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("Is a directory"), std::string::npos) << run.err;
}

TEST_P(CarProgram, WriteErrorIsReportedOnceCountedAndSurvived) {
  const CarRun run = run_car(runtime(),
                             {"--log-file", "/dev/full", "--poll-interval", "20ms",
                              "--increase-every", "60ms", "--duration", "500ms"},
                             dir.path());
  EXPECT_EQ(run.exit_code, 3) << "log lines were lost: " << run.err;
  EXPECT_EQ(occurrences(run.err,
                        "custody-car: cannot write to log file /dev/full: No space left "
                        "on device (later write errors are only counted)\n"),
            1u)
      << run.err;
  EXPECT_EQ(occurrences(run.err, "\n"), 1u) << "reported once: " << run.err;
  EXPECT_GE(run.summary.updates, 5u);
  EXPECT_EQ(run.summary.write_errors, run.summary.updates);
  // The other tasks kept going.
  EXPECT_EQ(count_matching(run.out, kScreenReading), run.summary.updates);
  EXPECT_GE(run.summary.accepted, 2u);
}

TEST_P(CarProgram, InjectedDisconnectsRejectSetsUntilTheCarReconnects) {
  const CarRun run =
      run_car(runtime(),
              {"--disconnect-rate", "0.05", "--seed", "7", "--poll-interval", "10ms",
               "--increase-every", "25ms", "--duration", "2s", "--log-file", log_path()},
              dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const Summary& s = run.summary;
  EXPECT_GE(s.disconnects, 1u);
  EXPECT_GE(s.rejected, 1u);
  EXPECT_GE(s.accepted, 1u);

  // Every request not accepted is reported, and the only reason the car gives is the lost
  // link (a request may also go unanswered within its period on a loaded machine).
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: (rejected|cut short|dropped))")),
            s.rejected);
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: no answer)")), s.timed_out);
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: unconfirmed)")), s.unconfirmed);
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: rejected)")),
            count_matching(run.out, std::regex(R"(km/h: rejected \(car disconnected)")));
  EXPECT_EQ(count_matching(run.out, std::regex("  car disconnected: ")), s.disconnects);

  // Recovery: after the first disconnect the car reconnects, and readings and accepted sets
  // follow.
  const auto find_from = [&](std::size_t from, const std::regex& pattern) {
    for (std::size_t i = from; i < run.out.size(); ++i) {
      if (std::regex_search(run.out[i], pattern)) return i;
    }
    return run.out.size();
  };
  const std::size_t lost = find_from(0, std::regex("  car disconnected: "));
  ASSERT_LT(lost, run.out.size());
  const std::size_t back = find_from(lost, std::regex("  car reconnected"));
  ASSERT_LT(back, run.out.size()) << "never reconnected";
  EXPECT_LT(find_from(back, kScreenReading), run.out.size());
  EXPECT_LT(find_from(back, std::regex("km/h: accepted")), run.out.size());

  // The log stays consistent through the outages: the speed only ever rises, one step at a
  // time (a set the car took without confirming shows with the reading after the reconnect).
  const std::vector<LogEntry> log = parse_log(split_lines(read_file(log_path())));
  EXPECT_EQ(log.size(), s.updates);
  for (std::size_t i = 1; i < log.size(); ++i) {
    const double step = log[i].speed - log[i - 1].speed;
    EXPECT_TRUE(step == 0 || step == 1)
        << "line " << i << ": " << log[i - 1].speed << " -> " << log[i].speed;
  }
}

TEST_P(CarProgram, RefusedSetsAreReportedWithTheCarsReason) {
  const CarRun run =
      run_car(runtime(),
              {"--set-failure-rate", "0.5", "--seed", "3", "--poll-interval", "20ms",
               "--increase-every", "20ms", "--duration", "600ms", "--log-file", log_path()},
              dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_GE(run.summary.rejected, 1u);
  EXPECT_GE(run.summary.accepted, 1u);
  EXPECT_EQ(run.summary.disconnects, 0u);
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: rejected)")),
            count_matching(
                run.out, std::regex(R"(km/h: rejected \(the car refused: Input/output error\)$)")));
  EXPECT_GE(count_matching(run.out, std::regex(R"(km/h: rejected)")), 1u);
}

TEST_P(CarProgram, BadInputEdges) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--speed-step", "1e300"},
       "--speed-step: '1e300' is not a speed step in km/h (more than 0, at most 1000)"},
      {{"--duration", "999999h"}, "--duration: '999999h' is too long (at most 8784h)"},
      {{"--poll-interval", "--duration", "1s"},
       "--poll-interval: needs a value ('--duration' is a flag)"},
      {{"--", "--duration", "1s"}, "unexpected argument '--duration' (flags only)"},
  };
  for (const auto& [args, message] : cases) {
    const CarRun run = run_car(runtime(), args, dir.path(), false);
    EXPECT_EQ(run.exit_code, 2) << message;
    EXPECT_TRUE(run.out.empty()) << message;
    EXPECT_EQ(run.err.rfind("custody-car: " + message + "\n", 0), 0u) << run.err;
  }
  // `--` ends the flags; nothing after it is fine too.
  const CarRun run =
      run_car(runtime(), {"--duration", "50ms", "--log-file", log_path(), "--"}, dir.path());
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST_P(CarProgram, VersionAndQuiet) {
  const CarRun version = run_car(runtime(), {"--version"}, dir.path(), false);
  EXPECT_EQ(version.exit_code, 0);
  ASSERT_EQ(version.out.size(), 1u);
  EXPECT_TRUE(std::regex_match(version.out[0], std::regex(R"(custody-car \d+\.\d+\.\d+)")))
      << version.out[0];

  const CarRun quiet = run_car(runtime(),
                               {"--quiet", "--poll-interval", "10ms", "--increase-every", "30ms",
                                "--duration", "300ms", "--log-file", log_path()},
                               dir.path());
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(count_matching(quiet.out, std::regex("  speed ")), 0u) << "no readings on screen";
  EXPECT_EQ(count_matching(quiet.out, std::regex("  car connected$")), 1u);
  EXPECT_GE(count_matching(quiet.out, std::regex("km/h: accepted$")), 1u);
  EXPECT_EQ(parse_log(split_lines(read_file(log_path()))).size(), quiet.summary.updates)
      << "the log still gets every reading";
}

// Ctrl-C never waits on the terminal: standard output is a pipe nobody reads, full long before
// the signal, and the program still stops at once, with the lost lines in its exit status.
TEST_P(CarProgram, StopsPromptlyWhileNobodyReadsItsOutput) {
  // The log is a FIFO the test reads: it tells how far the program got without a clock.
  const std::string fifo = dir.path() + "/log.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int log_fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(log_fd, 0);
  ASSERT_EQ(::fcntl(log_fd, F_SETFL, 0), 0);  // blocking reads from here on
  custody_test::ProcessOptions options{5s, 4096, {}};
  CarProcess car(runtime(),
                 {"--poll-interval", "1ms", "--increase-every", "5ms", "--log-file", fifo},
                 dir.path(), options);
  // Each update is a line in the log and one on standard output: 300 of them are far more than
  // the 4 KiB pipe holds.
  std::size_t logged = 0;
  while (logged < 300) {
    pollfd p{log_fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the log stopped growing at " << logged << " lines";
    char chunk[4096];
    const ssize_t n = ::read(log_fd, chunk, sizeof chunk);
    ASSERT_GT(n, 0);
    logged += static_cast<std::size_t>(std::count(chunk, chunk + n, '\n'));
  }
  // The log keeps being read, so that only standard output is stuck.
  std::jthread drain([log_fd] {
    char chunk[4096];
    while (::read(log_fd, chunk, sizeof chunk) > 0) {
    }
    ::close(log_fd);
  });
  const auto signalled = Clock::now();
  car.signal(SIGINT);
  const int exit_code = car.wait_exit();
  const double stop_ms = std::chrono::duration<double, std::milli>(car.ended() - signalled).count();
  EXPECT_EQ(exit_code, 3) << "lines were lost\n" << car.err();
  if (!custody_test::kUnderSanitizer) {
    EXPECT_LT(stop_ms, kStopBudgetMs);
  }
}

// A SIGINT that arrives before the program is ready for it (here: blocked by the parent, and
// pending when the program starts) still stops it with a summary.
TEST_P(CarProgram, ASignalBeforeAnythingStartsStillEndsWithASummary) {
  custody_test::ProcessOptions options{kTimeout, 0, {SIGINT}};
  CarProcess car(runtime(), {"--duration", "10s", "--log-file", log_path()}, dir.path(), options);
  car.signal(SIGINT);
  EXPECT_EQ(car.finish(), 0) << car.err();
  ASSERT_FALSE(car.out().empty());
  const auto summary = parse_summary(car.out().back());
  ASSERT_TRUE(summary) << car.out().back();
  EXPECT_EQ(summary->reason, "SIGINT");
  EXPECT_LT(summary->ran_s, 5.0) << "not by --duration";
}

// What the screen says about set requests, and what the log shows of the car.
struct SetAnswers {
  std::vector<double> accepted;  // the speeds accepted, in order
  std::size_t rejected = 0, timed_out = 0, unconfirmed = 0;
};

SetAnswers set_answers(const std::vector<std::string>& out) {
  static const std::regex answer(R"(  set speed (\d+\.\d{2}) km/h: (\S+))");
  SetAnswers a;
  for (const std::string& line : out) {
    std::smatch m;
    if (!std::regex_search(line, m, answer)) continue;
    const std::string kind = m[2];
    if (kind == "accepted") {
      a.accepted.push_back(std::stod(m[1]));
    } else if (kind == "rejected" || kind == "cut" || kind == "dropped") {
      ++a.rejected;
    } else if (kind == "no") {
      ++a.timed_out;
    } else if (kind == "unconfirmed") {
      ++a.unconfirmed;
    } else {
      ADD_FAILURE() << "unknown answer: " << line;
    }
  }
  return a;
}

struct FaultPoint {
  std::string disconnect_rate, set_failure_rate, latency, poll, increase, duration;
};

// The fault matrix: rates from 0 to 1, device latency from 0 to 1 s, all running at once.
// Whatever the faults, the screen, the summary and the log tell one story: the summary counts
// the answers shown, the log has one line per update, the speed in the log only ever rises by
// one step, it rises no more often than sets were accepted, timed out or unconfirmed (a
// rejected set never changes the car), every accepted speed is in the log, and the program
// stops within its budget.
TEST_P(CarProgram, FaultMatrixTellsOneStory) {
  const std::vector<FaultPoint> matrix = {
      {"0", "0", "0s", "5ms", "20ms", "800ms"},       {"0.3", "0.3", "0s", "2ms", "5ms", "1s"},
      {"0", "1", "0s", "5ms", "10ms", "500ms"},       {"1", "0", "0s", "5ms", "10ms", "500ms"},
      {"0.1", "0.2", "20ms", "1ms", "5ms", "1500ms"}, {"0.5", "0.5", "1s", "1ms", "50ms", "3500ms"},
  };
  std::vector<std::unique_ptr<CarProcess>> cars;
  for (std::size_t i = 0; i < matrix.size(); ++i) {
    const FaultPoint& f = matrix[i];
    cars.push_back(std::make_unique<CarProcess>(
        runtime(),
        std::vector<std::string>{"--disconnect-rate", f.disconnect_rate, "--set-failure-rate",
                                 f.set_failure_rate, "--device-latency", f.latency,
                                 "--poll-interval", f.poll, "--increase-every", f.increase,
                                 "--duration", f.duration, "--seed", std::to_string(40 + i),
                                 "--log-file", dir.path() + "/log" + std::to_string(i) + ".txt"},
        dir.path()));
  }
  for (std::size_t i = 0; i < matrix.size(); ++i) {
    SCOPED_TRACE("disconnect rate " + matrix[i].disconnect_rate + ", set failure rate " +
                 matrix[i].set_failure_rate + ", latency " + matrix[i].latency);
    CarProcess& car = *cars[i];
    const int exit_code = car.finish();
    ASSERT_FALSE(car.out().empty());
    const auto summary = parse_summary(car.out().back());
    ASSERT_TRUE(summary) << car.out().back() << "\n" << car.err();
    const Summary& s = *summary;
    EXPECT_EQ(exit_code, s.lost() > 0 ? 3 : 0) << car.err();
    EXPECT_EQ(s.reason, "--duration");
    if (!custody_test::kUnderSanitizer) {
      EXPECT_LE(s.stop_ms, kStopBudgetMs);
    }

    // The screen shows every answer and link change, unless it fell behind (then the summary
    // says how many lines it dropped).
    const SetAnswers answers = set_answers(car.out());
    const auto shown = [&](std::size_t on_screen, std::uint64_t counted) {
      return s.dropped == 0 ? on_screen == counted : on_screen <= counted;
    };
    EXPECT_TRUE(shown(answers.accepted.size(), s.accepted)) << answers.accepted.size();
    EXPECT_TRUE(shown(answers.rejected, s.rejected)) << answers.rejected;
    EXPECT_TRUE(shown(answers.timed_out, s.timed_out)) << answers.timed_out;
    EXPECT_TRUE(shown(answers.unconfirmed, s.unconfirmed)) << answers.unconfirmed;
    EXPECT_TRUE(
        shown(count_matching(car.out(), std::regex("  car disconnected: ")), s.disconnects));
    EXPECT_EQ(count_matching(car.out(), std::regex(R"(  speed .* m  disconnected)")), 0u)
        << "readings are only taken over a connected link";

    const std::vector<LogEntry> log =
        parse_log(split_lines(read_file(dir.path() + "/log" + std::to_string(i) + ".txt")));
    EXPECT_EQ(log.size() + s.not_logged + s.write_errors, s.updates);
    std::size_t rises = 0;
    for (std::size_t k = 1; k < log.size(); ++k) {
      const double step = log[k].speed - log[k - 1].speed;
      EXPECT_TRUE(step == 0 || step == 1)
          << "line " << k << ": " << log[k - 1].speed << " -> " << log[k].speed;
      if (step != 0) ++rises;
    }
    EXPECT_LE(rises, s.accepted + s.timed_out + s.unconfirmed + s.unanswered)
        << "the car changed without a set that may have changed it";
    for (const double speed : answers.accepted) {
      EXPECT_TRUE(
          std::any_of(log.begin(), log.end(), [&](const LogEntry& e) { return e.speed == speed; }))
          << "accepted " << speed << " km/h, which the log never shows";
    }
  }
}

// CPU load while it runs: threads that spin until told to stop.
class CpuLoad {
 public:
  explicit CpuLoad(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) {
      spinners_.emplace_back([this] {
        std::uint64_t n = 0;
        while (!done_.load(std::memory_order_relaxed)) n = n * 6364136223846793005ull + 1;
        sink_.fetch_add(n, std::memory_order_relaxed);
      });
    }
  }
  ~CpuLoad() { done_.store(true); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> sink_{0};
  std::vector<std::jthread> spinners_;
};

// The screen's lines without their times: the set answers (from the increase task) and the
// link changes (from the print task), each in its own order. The two tasks' lines may
// interleave differently from run to run, and readings are compared in the log.
struct ScreenStory {
  std::vector<std::string> answers, link_changes;
};

ScreenStory screen_story(const std::vector<std::string>& out) {
  static const std::regex timed(R"(^\d{2}:\d{2}:\d{2}\.\d{3}  (.*)$)");
  ScreenStory story;
  for (const std::string& line : out) {
    std::smatch m;
    if (!std::regex_match(line, m, timed)) continue;  // the header, last reading and summary
    const std::string what = m[1];
    if (what.starts_with("set speed ")) {
      story.answers.push_back(what);
    } else if (!what.starts_with("speed ")) {
      story.link_changes.push_back(what);
    }
  }
  return story;
}

// The same seed, flags and number of readings give the same run under any load: the same
// values in the log, the same answers and link changes on screen, the same counts in the
// summary; only times differ (README: "Reproducible runs").
TEST_P(CarProgram, TheSameSeedGivesTheSameRunUnderLoad) {
  const auto run_once = [&](unsigned spinners, const std::string& log) {
    CpuLoad load(spinners);
    return run_car(runtime(),
                   {"--disconnect-rate", "0.05", "--set-failure-rate", "0.3", "--device-latency",
                    "1ms", "--poll-interval", "2ms", "--increase-every", "7ms", "--readings", "150",
                    "--seed", "7", "--log-file", log},
                   dir.path());
  };
  const CarRun first = run_once(2, dir.path() + "/first.txt");
  const CarRun second = run_once(4, dir.path() + "/second.txt");
  std::vector<std::vector<std::pair<double, double>>> logs;
  for (const auto* run : {&first, &second}) {
    EXPECT_EQ(run->exit_code, 0) << run->err;
    EXPECT_EQ(run->summary.reason, "--readings");
    EXPECT_EQ(run->summary.updates, 150u);
    EXPECT_EQ(run->summary.timed_out, 0u) << "every request answered: the run is comparable";
    logs.emplace_back();
  }
  for (const std::string name : {"first", "second"}) {
    std::vector<std::pair<double, double>>& values = logs[name == "first" ? 0 : 1];
    for (const LogEntry& e : parse_log(split_lines(read_file(dir.path() + "/" + name + ".txt")))) {
      values.emplace_back(e.speed, e.location);
    }
    EXPECT_EQ(values.size(), 150u) << name << ": one line per reading, and no more";
  }
  EXPECT_EQ(logs[0], logs[1]) << "the same speeds and locations, line by line";

  const Summary &a = first.summary, &b = second.summary;
  EXPECT_EQ(std::tie(a.accepted, a.rejected, a.unconfirmed, a.disconnects),
            std::tie(b.accepted, b.rejected, b.unconfirmed, b.disconnects));
  // Faults did happen, so the comparison says something.
  EXPECT_GE(a.accepted, 3u);
  EXPECT_GE(a.rejected, 3u);
  EXPECT_GE(a.disconnects, 2u);
  ASSERT_FALSE(logs[0].empty());
  EXPECT_GT(logs[0].back().second, 0) << "the car travelled";

  const ScreenStory x = screen_story(first.out), y = screen_story(second.out);
  EXPECT_EQ(x.answers, y.answers);
  EXPECT_EQ(x.link_changes, y.link_changes);
  EXPECT_EQ(x.answers.size(), a.accepted + a.rejected + a.unconfirmed);
}

// `custody-car | head -n 1`: once standard output's reader has gone, the program stops and ends
// as documented, with its last reading and summary on standard error and exit status 3 (the
// lines after the first were lost).
TEST_P(CarProgram, AClosedStandardOutputStopsTheRunWithASummaryOnStandardError) {
  custody_test::Process pipeline(
      "pipeline", "/bin/bash",
      {"-c", R"("$0" "$@" | head -n 1; exit "${PIPESTATUS[0]}")", CUSTODY_CAR_BINARY, "--runtime",
       runtime(), "--poll-interval", "5ms", "--log-file", log_path()},
      dir.path());
  const int exit_code = pipeline.finish();
  EXPECT_EQ(exit_code, 3) << "128 + 13 would be SIGPIPE\n" << pipeline.err();
  ASSERT_EQ(pipeline.out().size(), 1u);
  EXPECT_EQ(pipeline.out()[0].rfind("custody-car: reading the car every 5ms", 0), 0u);
  const std::vector<std::string> err = split_lines(pipeline.err());
  ASSERT_GE(err.size(), 2u) << pipeline.err();
  EXPECT_EQ(err[err.size() - 2].rfind("last reading: ", 0), 0u) << err[err.size() - 2];
  const auto summary = parse_summary(err.back());
  ASSERT_TRUE(summary) << err.back();
  EXPECT_EQ(summary->reason, "a closed standard output");
  EXPECT_EQ(parse_log(split_lines(read_file(log_path()))).size(), summary->updates);
}

// --- the two runtimes --------------------------------------------------------------------

// The names of a running process's threads (Linux keeps 15 bytes of each).
std::vector<std::string> thread_names(pid_t pid) {
  std::vector<std::string> names;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(tasks)) {
    const auto lines = split_lines(read_file(entry.path().string() + "/comm"));
    if (!lines.empty()) names.push_back(lines.front());
  }
  return names;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Threads name their threads after their tasks; coroutines all run on the one thread named
// "coroutines", and no task has a thread. Without --runtime the tasks are threads.
TEST(CarRuntimeFlag, ChoosesWhereTheTasksRun) {
  const TempDir dir;
  const std::vector<std::string> task_threads = {"car communicati", "increase speed",
                                                 "print out data", "write data into", "schedule"};
  for (const std::string runtime : {"", "threads", "coroutines"}) {
    SCOPED_TRACE("--runtime '" + runtime + "'");
    const std::vector<std::string> log{"--log-file", dir.path() + "/log.txt"};
    custody_test::Process car("custody-car", CUSTODY_CAR_BINARY,
                              runtime.empty() ? log : with_runtime(runtime, log), dir.path());
    // Every task has started: the first reading went through all of them.
    ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
    const std::vector<std::string> names = thread_names(car.pid());
    car.signal(SIGINT);
    EXPECT_EQ(car.finish(), 0) << car.err();
    const bool coroutines = runtime == "coroutines";
    EXPECT_EQ(has(names, "coroutines"), coroutines);
    for (const std::string& task : task_threads) EXPECT_EQ(has(names, task), !coroutines) << task;
  }
}

TEST(CarRuntimeFlag, BadValuesExitWithCode2AndSayWhy) {
  const TempDir dir;
  const auto refused = [&](const std::vector<std::string>& args, const std::string& message) {
    custody_test::Process car("custody-car", CUSTODY_CAR_BINARY, args, dir.path());
    EXPECT_EQ(car.finish(), 2) << message;
    EXPECT_TRUE(car.out().empty()) << message << ": nothing starts";
    EXPECT_EQ(car.err().rfind("custody-car: " + message + "\n\nusage: custody-car", 0), 0u)
        << car.err();
  };
  refused({"--runtime", "fibers"}, "--runtime: 'fibers' is not a runtime (threads or coroutines)");
  refused({"--runtime", "Threads"},
          "--runtime: 'Threads' is not a runtime (threads or coroutines)");
  refused({"--runtime"}, "--runtime needs a value");
  // Only a build with NATS takes --nats at all (car_nats_flags_test covers one without).
  if (car::nats_available()) {
    refused({"--runtime", "coroutines", "--nats", "nats://127.0.0.1:4222"},
            "--runtime coroutines: not available with --nats (publishing over NATS runs with "
            "--runtime threads only)");
  }
}

// The runtimes differ in how the tasks wait, not in what they do: the same seed gives the same
// run in both (README: "Reproducible runs"), as it does twice in one runtime.
TEST(CarRuntimes, TheSameSeedGivesTheSameRunInBoth) {
  // A directory each, with a log.txt each: the headers differ only in the directory.
  const TempDir dirs[2];
  std::vector<CarRun> runs;
  std::vector<std::vector<std::pair<double, double>>> logs;
  for (std::size_t i = 0; i < kRuntimes.size(); ++i) {
    const std::string& runtime = kRuntimes[i];
    runs.push_back(
        run_car(runtime,
                {"--disconnect-rate", "0.05", "--set-failure-rate", "0.3", "--device-latency",
                 "1ms", "--poll-interval", "2ms", "--increase-every", "7ms", "--readings", "150",
                 "--seed", "11", "--log-file", dirs[i].path() + "/log.txt"},
                dirs[i].path()));
    const std::string log = dirs[i].path() + "/log.txt";
    EXPECT_EQ(runs.back().exit_code, 0) << runtime << ": " << runs.back().err;
    EXPECT_EQ(runs.back().summary.timed_out, 0u) << runtime << ": the run is comparable";
    logs.emplace_back();
    for (const LogEntry& e : parse_log(split_lines(read_file(log)))) {
      logs.back().emplace_back(e.speed, e.location);
    }
    EXPECT_EQ(logs.back().size(), 150u) << runtime;
  }
  EXPECT_EQ(logs[0], logs[1]) << "the same speeds and locations, line by line";
  const Summary &a = runs[0].summary, &b = runs[1].summary;
  EXPECT_EQ(std::tie(a.updates, a.accepted, a.rejected, a.unconfirmed, a.disconnects, a.reason),
            std::tie(b.updates, b.accepted, b.rejected, b.unconfirmed, b.disconnects, b.reason));
  // Faults did happen, so the comparison says something.
  EXPECT_GE(a.accepted, 3u);
  EXPECT_GE(a.rejected, 3u);
  EXPECT_GE(a.disconnects, 2u);
  const ScreenStory x = screen_story(runs[0].out), y = screen_story(runs[1].out);
  EXPECT_EQ(x.answers, y.answers);
  EXPECT_EQ(x.link_changes, y.link_changes);
  // The header names no runtime: the screens differ only in times and interleaving.
  const auto header = [&](std::size_t i) {
    std::string line = runs[i].out.front();
    return line.replace(line.find(dirs[i].path()), dirs[i].path().size(), "<dir>");
  };
  EXPECT_EQ(header(0), header(1));
}

}  // namespace
