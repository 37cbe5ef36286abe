// Runs the custody-car program with millisecond periods and checks what a user sees: the log
// file line by line, the screen, the summary, exit codes, stopping, bad input and faults.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation.
constexpr auto kTimeout = 30s;
// The stop requirement: every task ends within this of the stop request.
constexpr double kStopBudgetMs = 100;

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/custody-car-XXXXXX";
    if (mkdtemp(pattern.data())) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// custody-car as a child process: standard output on a pipe, read line by line as it comes;
// standard error in a file.
class CarProcess {
 public:
  CarProcess(const std::vector<std::string>& args, const std::string& dir)
      : err_path_(dir + "/stderr.txt") {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_store{CUSTODY_CAR_BINARY};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    started_ = Clock::now();
    const int rc = posix_spawn(&pid_, CUSTODY_CAR_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::system_error(rc, std::generic_category(), "posix_spawn " CUSTODY_CAR_BINARY);
    }
  }

  ~CarProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_fd_);
  }

  CarProcess(const CarProcess&) = delete;
  CarProcess& operator=(const CarProcess&) = delete;

  Clock::time_point started() const { return started_; }

  // The next line of standard output, or nullopt at its end (or, failing the test, when
  // nothing comes for kTimeout).
  std::optional<std::string> read_line() {
    const auto deadline = Clock::now() + kTimeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        out_.push_back(line);
        return line;
      }
      if (eof_) {
        if (buffer_.empty()) return std::nullopt;
        out_.push_back(std::exchange(buffer_, {}));
        return out_.back();
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        ADD_FAILURE() << "custody-car wrote nothing for " << kTimeout.count() << " s";
        return std::nullopt;
      }
      char chunk[4096];
      const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
      } else {
        buffer_.append(chunk, static_cast<std::size_t>(n));
      }
    }
  }

  // Reads until a line matching `pattern` and returns it (nullopt at the end of output).
  std::optional<std::string> read_until(const std::regex& pattern) {
    while (auto line = read_line()) {
      if (std::regex_search(*line, pattern)) return line;
    }
    return std::nullopt;
  }

  void signal(int sig) { ASSERT_EQ(::kill(pid_, sig), 0); }

  // Reads the rest of the output, then waits for the exit. Returns the exit code, or 128 + the
  // signal that killed it, or -1 if it did not end within kTimeout (it is killed then).
  int finish() {
    while (read_line()) {
    }
    auto exited = std::async(std::launch::async, [pid = pid_] {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return status;
    });
    if (exited.wait_for(kTimeout) != std::future_status::ready) {
      ::kill(pid_, SIGKILL);
      exited.wait();
      pid_ = -1;
      return -1;
    }
    const int status = exited.get();
    pid_ = -1;
    ended_ = Clock::now();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

  Clock::time_point ended() const { return ended_; }
  const std::vector<std::string>& out() const { return out_; }
  std::string err() const { return read_file(err_path_); }

 private:
  std::string err_path_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
  std::vector<std::string> out_;
  Clock::time_point started_, ended_;
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
