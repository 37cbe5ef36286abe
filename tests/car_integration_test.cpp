// Runs the custody-car program with millisecond periods and checks what a user sees: the log
// file line by line, the screen, the summary, exit codes, stopping, bad input and faults.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

// custody-car as a child process (see support/child_process.hpp).
class CarProcess : public custody_test::Process {
 public:
  CarProcess(const std::vector<std::string>& args, const std::string& dir)
      : Process("custody-car", CUSTODY_CAR_BINARY, args, dir, kTimeout) {}
};

struct Summary {
  std::uint64_t updates = 0, accepted = 0, rejected = 0, disconnects = 0, write_errors = 0;
  std::string reason;
  double ran_s = 0, stop_ms = 0;
};

std::optional<Summary> parse_summary(const std::string& line) {
  static const std::regex shape(
      R"(^summary: (\d+) updates?, (\d+) set requests? accepted, (\d+) rejected, (\d+) )"
      R"(disconnects?, (\d+) write errors?(, \d+ not logged)?(, \d+ not shown)?; stopped by )"
      R"((\S+) after ([0-9.]+) s, every task ended ([0-9.]+) ms after the stop request$)");
  std::smatch m;
  if (!std::regex_match(line, m, shape)) return std::nullopt;
  Summary s;
  s.updates = std::stoull(m[1]);
  s.accepted = std::stoull(m[2]);
  s.rejected = std::stoull(m[3]);
  s.disconnects = std::stoull(m[4]);
  s.write_errors = std::stoull(m[5]);
  s.reason = m[8];
  s.ran_s = std::stod(m[9]);
  s.stop_ms = std::stod(m[10]);
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

CarRun run_car(const std::vector<std::string>& args, const std::string& dir,
               bool expect_summary = true) {
  CarProcess car(args, dir);
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

class CarProgram : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir.path().empty()) << "no temporary directory"; }
  std::string log_path() const { return dir.path() + "/log.txt"; }

  TempDir dir;
};

TEST_F(CarProgram, LogsOneIsoLinePerUpdateAndAppends) {
  std::ofstream(log_path()) << "an earlier run\n";
  const CarRun run = run_car({"--poll-interval", "20ms", "--increase-every", "100ms", "--duration",
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

TEST_F(CarProgram, SpeedRisesOneStepPerIncreasePeriod) {
  const CarRun run =
      run_car({"--poll-interval", "25ms", "--increase-every", "100ms", "--speed-step", "2.5",
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
  // Ten periods in 1050 ms; generous bounds for a loaded machine.
  EXPECT_GE(steps, 4u);
  EXPECT_LE(steps, 11u);

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

class CarProgramSignal : public CarProgram, public ::testing::WithParamInterface<int> {};

TEST_P(CarProgramSignal, StopsPromptlyAndCleanly) {
  const int sig = GetParam();
  // The seed's default periods: the first reading still shows at once.
  CarProcess car({"--log-file", log_path()}, dir.path());
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  EXPECT_LT(Clock::now() - car.started(), 2s) << "output appears within 2 s";

  const auto signalled = Clock::now();
  car.signal(sig);
  const int exit_code = car.finish();
  EXPECT_EQ(exit_code, 0) << car.err();
  EXPECT_LT(car.ended() - signalled, 3s) << "generous: the program's own figure is below";
  ASSERT_FALSE(car.out().empty());
  const auto summary = parse_summary(car.out().back());
  ASSERT_TRUE(summary) << car.out().back();
  EXPECT_EQ(summary->reason, sig == SIGINT ? "SIGINT" : "SIGTERM");
  EXPECT_LE(summary->stop_ms, kStopBudgetMs);
  EXPECT_GE(summary->updates, 1u);
  EXPECT_EQ(parse_log(split_lines(read_file(log_path()))).size(), summary->updates);
}

INSTANTIATE_TEST_SUITE_P(Signals, CarProgramSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) {
                           return std::string(info.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

TEST_F(CarProgram, DurationStopsOnTime) {
  const CarRun run = run_car(
      {"--duration", "300ms", "--poll-interval", "50ms", "--log-file", log_path()}, dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.summary.reason, "--duration");
  EXPECT_GE(run.summary.ran_s, 0.3);
  EXPECT_GE(run.seconds, 0.3);
  EXPECT_LT(run.seconds, 3.3) << "generous";
  EXPECT_LE(run.summary.stop_ms, kStopBudgetMs);
}

TEST_F(CarProgram, SlowDeviceCallsDoNotDelayTheStop) {
  CarProcess car({"--device-latency", "300ms", "--poll-interval", "50ms", "--log-file", log_path()},
                 dir.path());
  // Connecting and a first reading take three slow calls.
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  car.signal(SIGTERM);
  EXPECT_EQ(car.finish(), 0) << car.err();
  const auto summary = parse_summary(car.out().back());
  ASSERT_TRUE(summary) << car.out().back();
  EXPECT_LE(summary->stop_ms, kStopBudgetMs) << "a device call in progress is cut short";
}

TEST_F(CarProgram, BadFlagsExitWithCode2AndNameTheFlag) {
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
    const CarRun run = run_car(args, dir.path(), false);
    EXPECT_EQ(run.exit_code, 2) << flag;
    EXPECT_TRUE(run.out.empty()) << flag << ": nothing starts";
    EXPECT_EQ(run.err.rfind("custody-car: " + flag, 0) == 0 ||
                  run.err.rfind("custody-car: unknown flag '" + flag + "'", 0) == 0,
              true)
        << run.err;
    EXPECT_NE(run.err.find("usage: custody-car"), std::string::npos) << run.err;
  }
}

TEST_F(CarProgram, HelpExitsWith0) {
  const CarRun run = run_car({"--help"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 0);
  ASSERT_FALSE(run.out.empty());
  EXPECT_EQ(run.out.front(), "usage: custody-car [flags]");
  EXPECT_EQ(run.err, "");
}

TEST_F(CarProgram, UnopenableLogFileExitsWith1BeforeStartingAnything) {
  const std::string missing = dir.path() + "/no-such-dir/log.txt";
  CarRun run = run_car({"--log-file", missing, "--duration", "10s"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(run.out.empty()) << "nothing started: " << run.out.front();
  EXPECT_EQ(run.err, "custody-car: cannot open log file " + missing +
                         ": No such file or directory; nothing was started\n");

  run = run_car({"--log-file", dir.path(), "--duration", "10s"}, dir.path(), false);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("Is a directory"), std::string::npos) << run.err;
}

TEST_F(CarProgram, WriteErrorIsReportedOnceCountedAndSurvived) {
  const CarRun run = run_car({"--log-file", "/dev/full", "--poll-interval", "20ms",
                              "--increase-every", "60ms", "--duration", "500ms"},
                             dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.err;
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

TEST_F(CarProgram, InjectedDisconnectsRejectSetsUntilTheCarReconnects) {
  const CarRun run =
      run_car({"--disconnect-rate", "0.05", "--seed", "7", "--poll-interval", "10ms",
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
  EXPECT_EQ(count_matching(run.out, std::regex(R"(km/h: (rejected|no answer|dropped))")),
            s.rejected);
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
  // time.
  const std::vector<LogEntry> log = parse_log(split_lines(read_file(log_path())));
  EXPECT_EQ(log.size(), s.updates);
  for (std::size_t i = 1; i < log.size(); ++i) {
    const double step = log[i].speed - log[i - 1].speed;
    EXPECT_TRUE(step == 0 || step == 1)
        << "line " << i << ": " << log[i - 1].speed << " -> " << log[i].speed;
  }
}

TEST_F(CarProgram, RefusedSetsAreReportedWithTheCarsReason) {
  const CarRun run =
      run_car({"--set-failure-rate", "0.5", "--seed", "3", "--poll-interval", "20ms",
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

}  // namespace
