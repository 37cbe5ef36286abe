// custody-car answers SIGUSR1 with a dump of its named tasks, stores, subscriptions and
// channels on standard error, and goes on running until it is stopped; in both runtimes
// (--runtime threads and coroutines), with the same task names.

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "options.hpp"
#include "support/child_process.hpp"
#include "support/find_program.hpp"

namespace {

using namespace std::chrono_literals;
using custody_test::Clock;

constexpr auto kTimeout = 30s;

const std::regex kScreenReading(R"(^\d{2}:\d{2}:\d{2}\.\d{3}  speed )");

// Threads only in a build without custody::asio.
const std::vector<std::string> kRuntimes = car::coroutines_available()
                                               ? std::vector<std::string>{"threads", "coroutines"}
                                               : std::vector<std::string>{"threads"};

// Sends SIGUSR1 to the running car and returns its standard error once the dump in it has
// ended (the child writes it to a file: read it until the last line is there).
std::string dump_on_sigusr1(custody_test::Process& car) {
  car.signal(SIGUSR1);
  const auto give_up = Clock::now() + kTimeout;
  std::string err;
  for (err = car.err(); err.find("custody: end of inspection\n") == std::string::npos;
       err = car.err()) {
    if (Clock::now() >= give_up) {
      ADD_FAILURE() << "no dump on standard error: " << err;
      break;
    }
    std::this_thread::yield();
  }
  return err;
}

class CarDump : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Runtimes, CarDump, ::testing::ValuesIn(kRuntimes),
                         [](const auto& info) { return info.param; });

TEST_P(CarDump, SigusrOneDumpsTasksStoresAndChannelsAndTheRunGoesOn) {
  custody_test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  custody_test::Process car(
      "custody-car", CUSTODY_CAR_BINARY,
      {"--runtime", GetParam(), "--log-file", dir.path() + "/log.txt", "--poll-interval", "100ms"},
      dir.path(), {kTimeout, 0, {}});
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  const std::string err = dump_on_sigusr1(car);
  ASSERT_FALSE(HasFailure());
  // Still running: readings go on after the dump.
  ASSERT_TRUE(car.read_until(kScreenReading)) << err;
  car.signal(SIGINT);
  // Ends as a SIGINT makes it end, with its summary (exit 0, or 3 if a loaded machine made the
  // screen skip readings: that is not the dump's doing).
  const int exit_code = car.finish();
  EXPECT_TRUE(exit_code == 0 || exit_code == 3) << exit_code << "\n" << car.err();
  ASSERT_FALSE(car.out().empty());
  EXPECT_NE(car.out().back().find("stopped by SIGINT"), std::string::npos) << car.out().back();

  EXPECT_NE(err.find("custody: inspection on signal " + std::to_string(SIGUSR1)), std::string::npos)
      << err;
  EXPECT_NE(err.find("task group \"tasks\""), std::string::npos) << err;
  for (const char* task : {"car communication", "increase speed", "print out data",
                           "write data into file", "schedule"}) {
    EXPECT_NE(err.find("  task \"" + std::string(task) + "\": "), std::string::npos) << task << "\n"
                                                                                     << err;
  }
  // Each task's state, threads and coroutines alike: a coroutine suspended in a custody
  // operation is blocked in it, as a thread sleeping in one is. (Which state each task is in
  // depends on the moment: a task woken and waiting for its turn on the executor is running.)
  const std::regex task_line(R"(^  task "[a-z ]+": (running|finished|blocked in .+ for \d+ ms)$)");
  std::size_t task_lines = 0;
  for (std::size_t at = err.find("\n  task \""); at != std::string::npos;
       at = err.find("\n  task \"", at + 1)) {
    const std::string line = err.substr(at + 1, err.find('\n', at + 1) - at - 1);
    EXPECT_TRUE(std::regex_match(line, task_line)) << line;
    ++task_lines;
  }
  EXPECT_EQ(task_lines, 5u) << err;
  EXPECT_NE(err.find("store \"car data\": version "), std::string::npos) << err;
  EXPECT_NE(err.find("store \"car status\": version "), std::string::npos) << err;
  for (const char* sub :
       {"screen readings\" of store \"car data\"", "screen link\" of store \"car status\"",
        "log file\" of store \"car data\""}) {
    EXPECT_NE(err.find("subscriber \"" + std::string(sub)), std::string::npos) << sub << "\n"
                                                                               << err;
  }
  for (const char* channel : {"poll ticks", "increase ticks", "tick done", "go"}) {
    EXPECT_NE(err.find("channel \"" + std::string(channel) + "\": capacity"), std::string::npos)
        << channel << "\n"
        << err;
  }
}

TEST(CarDump, DumpDotWritesTheWaitForGraphOfTheSameSnapshot) {
  custody_test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string dot_path = dir.path() + "/wait-for.dot";
  custody_test::Process car(
      "custody-car", CUSTODY_CAR_BINARY,
      {"--log-file", dir.path() + "/log.txt", "--poll-interval", "100ms", "--dump-dot", dot_path},
      dir.path(), {kTimeout, 0, {}});
  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  const std::string err = dump_on_sigusr1(car);
  ASSERT_FALSE(HasFailure());
  car.signal(SIGINT);
  (void)car.finish();
  EXPECT_NE(err.find("custody: wait-for graph written to " + dot_path +
                     "\n"
                     "custody: end of inspection\n"),
            std::string::npos)
      << err;
  std::stringstream dot;
  dot << std::ifstream(dot_path).rdbuf();
  EXPECT_EQ(dot.str().rfind("digraph wait_for {", 0), 0u) << dot.str();
  for (const char* node :
       {"\"task:car communication\"", "\"task:schedule\"", "\"channel:poll ticks\"",
        "\"store:car data\"", "\"channel:screen readings\""}) {
    EXPECT_NE(dot.str().find(node), std::string::npos) << node << "\n" << dot.str();
  }
  if (custody_test::find_program("dot").empty()) GTEST_SKIP() << "no Graphviz dot";
  EXPECT_EQ(std::system(("dot -Tsvg " + dot_path + " -o /dev/null").c_str()), 0) << dot.str();
}

}  // namespace
