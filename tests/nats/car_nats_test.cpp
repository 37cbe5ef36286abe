// The car example across processes: `custody-car --nats` owns the car and publishes its stores
// on a real nats-server; `custody-car-monitor` processes follow them, print and log what the
// owner publishes, and ask the owner for more speed over NATS.
//
// Nothing here sleeps to synchronise: every step waits for a process's output or exit, with a
// generous deadline that only a broken program reaches.

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
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/nats.hpp>

#include "../support/child_process.hpp"
#include "../support/nats_server.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using custody_test::Process;
using custody_test::read_file;
using custody_test::split_lines;
using custody_test::TempDir;

// One reading as the screen shows it: "14:03:07.250  speed   12.00 km/h  location  3.45 m  ...".
struct Reading {
  std::string time, speed, location;
  friend bool operator==(const Reading&, const Reading&) = default;
};

std::ostream& operator<<(std::ostream& os, const Reading& r) {
  return os << r.time << " " << r.speed << " km/h " << r.location << " m";
}

const std::regex kScreenReading(
    R"(^(\d{2}:\d{2}:\d{2}\.\d{3})  speed +(\d+\.\d{2}) km/h  location +(\d+\.\d{2}) m  )");

std::optional<Reading> screen_reading(const std::string& line) {
  std::smatch m;
  if (!std::regex_search(line, m, kScreenReading)) return std::nullopt;
  return Reading{m[1], m[2], m[3]};
}

// The line both programs print before the summary: "last reading: <log line>", whose log
// line is "<ISO 8601 date>: <speed>, <location>".
const std::regex kLastReading(
    R"(^last reading: (\d{4}-\d{2}-\d{2}T(\d{2}:\d{2}:\d{2}\.\d{3})[+-]\d{2}:\d{2}: (\d+\.\d{2}), (\d+\.\d{2}))$)");

// A log line: "<ISO 8601 date>: <speed>, <location>", as a Reading.
const std::regex kLogLine(
    R"(^\d{4}-\d{2}-\d{2}T(\d{2}:\d{2}:\d{2}\.\d{3})[+-]\d{2}:\d{2}: (\d+\.\d{2}), (\d+\.\d{2})$)");

std::optional<std::string> last_reading_line(const std::vector<std::string>& out) {
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    if (std::regex_match(*it, kLastReading)) return *it;
  }
  return std::nullopt;
}

Reading reading_of_last_line(const std::string& line) {
  std::smatch m;
  EXPECT_TRUE(std::regex_match(line, m, kLastReading)) << line;
  if (m.empty()) return {};
  return Reading{m[2], m[3], m[4]};
}

std::optional<Reading> last_screen_reading(const std::vector<std::string>& out) {
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    if (auto r = screen_reading(*it)) return r;
  }
  return std::nullopt;
}

const std::regex kCarSummary(R"(^summary: \d+ updates?, \d+ set requests? accepted, )");
const std::regex kMonitorSummary(
    R"(^summary: (\d+) updates? received, (\d+) set requests? accepted, (\d+) rejected, \d+ timed )"
    R"(out, \d+ unconfirmed, (\d+) NATS disconnects?, (\d+) write errors?(, \d+ not logged)?)"
    R"((, \d+ not shown)?(?:, \d+ set requests? unanswered at the stop)?)"
    R"((, \d+ lines? dropped from the console)?; stopped by (\S+) after )"
    R"([0-9.]+ s, every task ended [0-9.]+ ms after the stop request$)");
const std::regex kAccepted(R"(  set speed (\d+\.\d{2}) km/h: accepted$)");

// Whether `part` is `whole` with some lines left out (same order).
bool is_subsequence(const std::vector<std::string>& part, const std::vector<std::string>& whole) {
  auto at = whole.begin();
  for (const std::string& line : part) {
    at = std::find(at, whole.end(), line);
    if (at == whole.end()) return false;
    ++at;
  }
  return true;
}

class CarOverNats : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir.path().empty()) << "no temporary directory"; }

  std::string path(const std::string& name) const { return dir.path() + "/" + name; }

  // The owner: fast polls; its own increase task too, so local and remote set requests mix.
  std::unique_ptr<Process> start_owner(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--nats",     server.url(),    "--poll-interval", "50ms", "--increase-every", "300ms",
        "--log-file", path("car.log"), "--duration",      "50s",  "--seed",           "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>("custody-car", CUSTODY_CAR_BINARY, args, dir.path());
  }

  std::unique_ptr<Process> start_monitor(const std::string& name) {
    return std::make_unique<Process>(
        name, CUSTODY_CAR_MONITOR_BINARY,
        std::vector<std::string>{"--nats", server.url(), "--increase-every", "100ms", "--log-file",
                                 path(name + ".log"), "--duration", "50s"},
        dir.path());
  }

  // For failure messages: the bucket's data as another client reads it.
  std::string bucket_data() const {
    try {
      custody::nats::connection_options options;
      options.servers = {server.url()};
      custody::nats::Connection c(options);
      custody::nats::bucket_options bucket;
      bucket.name = "car";
      const auto v = custody::nats::KeyValue(c, bucket).get("data");
      return v ? v->bytes + " (revision " + std::to_string(v->revision) + ")" : "nothing";
    } catch (const std::exception& e) {
      return e.what();
    }
  }

  static std::string tail(const std::vector<std::string>& lines) {
    std::string out = "its output ends with:\n";
    for (std::size_t i = lines.size() > 12 ? lines.size() - 12 : 0; i < lines.size(); ++i) {
      out += "  " + lines[i] + "\n";
    }
    return out;
  }

  custody_test::NatsServer server;
  TempDir dir;
};

TEST_F(CarOverNats, TwoMonitorsFollowTheOwnerAndEndWithItsFinalReading) {
  auto owner = start_owner();
  ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
  ASSERT_NE(owner->out().front().find("; publishing to NATS " + server.url() +
                                      " (bucket car, set requests on custody.car.data.set)"),
            std::string::npos)
      << owner->out().front();

  std::vector<std::unique_ptr<Process>> monitors;
  monitors.push_back(start_monitor("monitor-1"));
  monitors.push_back(start_monitor("monitor-2"));
  std::vector<std::vector<std::string>> accepted_speeds(monitors.size());
  for (std::size_t i = 0; i < monitors.size(); ++i) {
    Process& m = *monitors[i];
    // Readings first (the first one is the car's state when the monitor started), then answers
    // to its own set requests: two, to be sure they keep coming.
    ASSERT_TRUE(m.read_until(kScreenReading)) << m.name() << ": " << m.err();
    for (int n = 0; n < 2; ++n) {
      const auto line = m.read_until(kAccepted);
      ASSERT_TRUE(line) << m.name() << ": " << m.err();
      std::smatch match;
      std::regex_search(*line, match, kAccepted);
      accepted_speeds[i].push_back(match[1]);
    }
  }

  // The owner ends; its final reading is what the bucket ends with.
  owner->signal(SIGTERM);
  ASSERT_EQ(owner->finish(), 0) << owner->err();
  EXPECT_EQ(owner->err(), "");
  ASSERT_GE(owner->out().size(), 2u);
  EXPECT_TRUE(std::regex_search(owner->out().back(), kCarSummary)) << owner->out().back();
  const auto owner_last = last_reading_line(owner->out());
  ASSERT_TRUE(owner_last) << "custody-car printed no 'last reading:' line";
  EXPECT_EQ(*owner_last, owner->out()[owner->out().size() - 2]) << "just before the summary";
  const Reading final_reading = reading_of_last_line(*owner_last);
  const std::vector<std::string> owner_log = split_lines(read_file(path("car.log")));
  ASSERT_FALSE(owner_log.empty());
  EXPECT_EQ("last reading: " + owner_log.back(), *owner_last);

  for (std::size_t i = 0; i < monitors.size(); ++i) {
    Process& m = *monitors[i];
    // Until it shows the owner's final reading (maybe among the lines read already): the owner
    // has ended, so nothing newer comes.
    bool seen = std::any_of(m.out().begin(), m.out().end(), [&](const std::string& line) {
      return screen_reading(line) == final_reading;
    });
    while (!seen) {
      const auto line = m.read_until(kScreenReading);
      ASSERT_TRUE(line) << m.name() << " never showed the final reading " << final_reading
                        << "\nstderr: " << m.err() << "\n"
                        << tail(m.out()) << "the bucket holds: " << bucket_data();
      seen = screen_reading(*line) == final_reading;
    }
    m.signal(SIGTERM);
    ASSERT_EQ(m.finish(), 0) << m.name() << ": " << m.err();
    EXPECT_EQ(m.err(), "") << m.name();

    // Its last word on the car is the owner's.
    EXPECT_EQ(last_screen_reading(m.out()), final_reading) << m.name();
    const auto monitor_last = last_reading_line(m.out());
    ASSERT_TRUE(monitor_last) << m.name();
    EXPECT_EQ(*monitor_last, *owner_last) << m.name();
    std::smatch summary;
    ASSERT_TRUE(std::regex_match(m.out().back(), summary, kMonitorSummary))
        << m.name() << ": " << m.out().back();
    EXPECT_EQ(summary[9], "SIGTERM");
    EXPECT_GE(std::stoull(summary[1]), 1u) << "updates received";
    EXPECT_GE(std::stoull(summary[2]), 2u) << "set requests accepted";
    EXPECT_EQ(summary[5], "0") << "write errors";

    // Every reading it logged is one the owner logged, in the owner's order (the bucket may
    // skip some, never invent or reorder them), ending with the final one.
    const std::vector<std::string> log = split_lines(read_file(path(m.name() + ".log")));
    ASSERT_FALSE(log.empty()) << m.name();
    EXPECT_TRUE(is_subsequence(log, owner_log))
        << m.name() << " logged a reading the owner did not";
    EXPECT_EQ(log.back(), owner_log.back()) << m.name();
    // Its screen shows the same readings as its log. Each task's subscription starts with the
    // reading current when it was made, and the monitor joins a running car: should the car
    // publish between the two, one of them starts a reading earlier.
    std::vector<Reading> screen, logged;
    for (const std::string& line : m.out()) {
      if (auto r = screen_reading(line)) screen.push_back(*r);
    }
    for (const std::string& line : log) {
      std::smatch lm;
      ASSERT_TRUE(std::regex_match(line, lm, kLogLine)) << line;
      logged.push_back(Reading{lm[1], lm[2], lm[3]});
    }
    const auto& longer = screen.size() > logged.size() ? screen : logged;
    const auto& shorter = screen.size() > logged.size() ? logged : screen;
    EXPECT_LE(longer.size() - shorter.size(), 2u) << m.name();
    EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(),
                           longer.end() - static_cast<std::ptrdiff_t>(shorter.size())))
        << m.name() << ": the screen and the log differ";

    // The speeds its set requests were accepted with reached the owner's car.
    for (const std::string& speed : accepted_speeds[i]) {
      EXPECT_TRUE(std::any_of(
          owner_log.begin(), owner_log.end(),
          [&](const std::string& l) { return l.find(": " + speed + ", ") != std::string::npos; }))
          << m.name() << ": speed " << speed << " never read from the car";
    }
  }
}

TEST_F(CarOverNats, AMonitorStartedFirstWaitsForTheOwner) {
  auto monitor = start_monitor("monitor");
  // Nobody serves set requests yet: the increase task learns it and waits for the car.
  ASSERT_TRUE(monitor->read_until(std::regex("  no owner answers set requests"))) << monitor->err();

  auto owner = start_owner({"--increase-every", "1h"});
  ASSERT_TRUE(monitor->read_until(std::regex("  the car publishes again: asking for more speed$")))
      << monitor->err();
  const auto accepted = monitor->read_until(kAccepted);
  ASSERT_TRUE(accepted) << monitor->err();
  // Only the monitor asks for speed (the owner's increase task waits an hour): the car reaches
  // what it asked for.
  std::smatch speed;
  ASSERT_TRUE(std::regex_search(*accepted, speed, kAccepted));
  ASSERT_TRUE(owner->read_until(std::regex(
      "  speed +" + std::regex_replace(speed[1].str(), std::regex("\\."), "\\.") + " km/h")))
      << owner->err();

  owner->signal(SIGINT);
  EXPECT_EQ(owner->finish(), 0) << owner->err();
  monitor->signal(SIGINT);
  EXPECT_EQ(monitor->finish(), 0) << monitor->err();
  std::smatch summary;
  ASSERT_TRUE(std::regex_match(monitor->out().back(), summary, kMonitorSummary))
      << monitor->out().back();
  EXPECT_EQ(summary[9], "SIGINT");
}

TEST_F(CarOverNats, ASecondCarOnTheSameBucketExitsNamingTheBucketAndTheFirst) {
  auto first = start_owner();
  ASSERT_TRUE(first->read_until(kScreenReading)) << first->err();

  Process second("custody-car-2", CUSTODY_CAR_BINARY,
                 {"--nats", server.url(), "--log-file", path("car-2.log"), "--duration", "50s"},
                 dir.path());
  EXPECT_EQ(second.finish(), 1) << second.err();
  const std::string err = second.err();
  EXPECT_NE(err.find("bucket car"), std::string::npos) << err;
  EXPECT_NE(err.find("owned by custody-car pid "), std::string::npos) << err;

  // The first car was not disturbed: it runs on and ends as usual.
  ASSERT_TRUE(first->read_until(kScreenReading)) << first->err();
  first->signal(SIGTERM);
  EXPECT_EQ(first->finish(), 0) << first->err();
  EXPECT_EQ(first->err(), "");
}

TEST_F(CarOverNats, ACarWhoseLeaseIsTakenOverExits1NamingTheKey) {
  auto car = start_owner();
  ASSERT_TRUE(car->read_until(kScreenReading)) << car->err();

  // Another owner takes the data key over: its lease entry replaces the car's, and it writes
  // the key with its own token, as an exporter that took the lease does.
  custody::nats::connection_options options;
  options.servers = {server.url()};
  custody::nats::Connection c(options);
  custody::nats::bucket_options b;
  b.name = "car";
  const custody::nats::KeyValue bucket(c, b);
  const std::uint64_t fence = bucket.put(custody::nats::wire::lease_key("data"),
                                         R"({"holder":"another car","ttl_ms":60000,)"
                                         R"("renew_ms":20000})");
  const std::uint64_t taken = bucket.put(
      "data", R"({"speed":1})", {{custody::nats::wire::fence_header, std::to_string(fence)}});

  // Its next write (a poll every 50 ms) is refused, and it stops.
  EXPECT_EQ(car->finish(), 1) << car->err();
  const std::string err = car->err();
  EXPECT_NE(err.find("bucket car: key data was taken over by another owner"), std::string::npos)
      << err;
  // Its values stopped there: the bucket holds the other owner's entry.
  const auto last = bucket.last("data");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->revision, taken);
}

TEST_F(CarOverNats, TheMonitorStopsOnItsDuration) {
  auto owner = start_owner();
  ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
  Process monitor("monitor", CUSTODY_CAR_MONITOR_BINARY,
                  {"--nats", server.url(), "--duration", "300ms", "--log", path("m.log")},
                  dir.path());
  EXPECT_EQ(monitor.finish(), 0) << monitor.err();
  ASSERT_FALSE(monitor.out().empty());
  EXPECT_EQ(
      monitor.out().front().rfind(
          "custody-car-monitor: following the car at NATS " + server.url() + " (bucket car)", 0),
      0u)
      << monitor.out().front();
  std::smatch summary;
  ASSERT_TRUE(std::regex_match(monitor.out().back(), summary, kMonitorSummary))
      << monitor.out().back();
  EXPECT_EQ(summary[9], "--duration");
  // Its first reading is the car's state when it started.
  EXPECT_TRUE(last_screen_reading(monitor.out())) << "no reading shown";
  owner->signal(SIGTERM);
  EXPECT_EQ(owner->finish(), 0) << owner->err();
}

TEST_F(CarOverNats, OwnerAndMonitorRideOutABrokerCrash) {
  auto owner = start_owner();
  ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
  auto monitor = start_monitor("monitor");
  ASSERT_TRUE(monitor->read_until(kAccepted)) << monitor->err();

  server.kill();
  // The monitor's next set request finds no server; the owner itself never notices.
  ASSERT_TRUE(
      monitor->read_until(std::regex("km/h: unconfirmed \\(the car's owner is unreachable\\)$")))
      << monitor->err();
  server.restart();
  // Same bucket (file storage survives): readings and answers resume.
  ASSERT_TRUE(monitor->read_until(kAccepted)) << monitor->err() << "\n" << tail(monitor->out());
  ASSERT_TRUE(monitor->read_until(kScreenReading)) << monitor->err();

  owner->signal(SIGTERM);
  ASSERT_EQ(owner->finish(), 0) << owner->err();
  EXPECT_EQ(owner->err(), "");
  const auto owner_last = last_reading_line(owner->out());
  ASSERT_TRUE(owner_last);
  const Reading final_reading = reading_of_last_line(*owner_last);
  bool seen =
      std::any_of(monitor->out().begin(), monitor->out().end(),
                  [&](const std::string& line) { return screen_reading(line) == final_reading; });
  while (!seen) {
    const auto line = monitor->read_until(kScreenReading);
    ASSERT_TRUE(line) << "never showed the final reading " << final_reading << "\n"
                      << tail(monitor->out()) << "the bucket holds: " << bucket_data();
    seen = screen_reading(*line) == final_reading;
  }
  monitor->signal(SIGTERM);
  ASSERT_EQ(monitor->finish(), 0) << monitor->err();
  EXPECT_EQ(last_reading_line(monitor->out()), owner_last);
  std::smatch summary;
  ASSERT_TRUE(std::regex_match(monitor->out().back(), summary, kMonitorSummary))
      << monitor->out().back();
  EXPECT_GE(std::stoull(summary[4]), 1u) << "NATS disconnects";
}

TEST_F(CarOverNats, AnotherBucketWorksTheSame) {
  auto owner = start_owner({"--nats-bucket", "other_car"});
  ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
  Process monitor("monitor", CUSTODY_CAR_MONITOR_BINARY,
                  {"--nats", server.url(), "--nats-bucket", "other_car", "--increase-every", "50ms",
                   "--log", path("m.log"), "--duration", "50s"},
                  dir.path());
  ASSERT_TRUE(monitor.read_until(kAccepted)) << monitor.err();
  monitor.signal(SIGTERM);
  EXPECT_EQ(monitor.finish(), 0) << monitor.err();
  owner->signal(SIGTERM);
  EXPECT_EQ(owner->finish(), 0) << owner->err();
}

// --- what goes wrong before anything starts ------------------------------------------------

struct Finished {
  int exit_code;
  std::vector<std::string> out;
  std::string err;
};

Finished run(const std::string& program, const std::vector<std::string>& args,
             const std::string& dir) {
  Process p(program == CUSTODY_CAR_BINARY ? "custody-car" : "custody-car-monitor", program, args,
            dir);
  Finished r;
  r.exit_code = p.finish();
  r.out = p.out();
  r.err = p.err();
  return r;
}

using RefusedFlags = std::vector<std::pair<std::vector<std::string>, std::string>>;

// Each set of flags: exit code 2, nothing on standard output, the message first on standard
// error, then the usage.
void expect_refused(const std::string& binary, const std::string& program, const std::string& usage,
                    const RefusedFlags& cases, const std::string& dir) {
  for (const auto& [args, message] : cases) {
    const Finished r = run(binary, args, dir);
    EXPECT_EQ(r.exit_code, 2) << message;
    EXPECT_TRUE(r.out.empty()) << message;
    EXPECT_EQ(r.err.rfind(program + ": " + message, 0), 0u) << r.err;
    EXPECT_NE(r.err.find(usage), std::string::npos) << r.err;
  }
}

TEST(CarOverNatsErrors, BadNatsFlagsExitWith2AndNameTheFlag) {
  TempDir dir;
  const RefusedFlags cases = {
      {{"--nats"}, "--nats needs a value"},
      {{"--nats", "localhost:4222"},
       "--nats: 'localhost:4222' is not a NATS server URL (use nats://host:port or "
       "tls://host:port)"},
      {{"--nats=nats://host:70000"}, "--nats: 'nats://host:70000' has a bad port '70000'"},
      {{"--nats", "nats://a:1,"}, "--nats: '' is not a NATS server URL"},
      {{"--nats", "nats://a:1", "--nats-bucket", "car.data"},
       "--nats-bucket: 'car.data' is not a bucket name (letters, digits, '-' and '_' only)"},
      {{"--nats-bucket", "car"}, "--nats-bucket: only used with --nats"},
  };
  expect_refused(CUSTODY_CAR_BINARY, "custody-car", "usage: custody-car", cases, dir.path());
  const RefusedFlags monitor_cases = {
      {{}, "--nats is required"},
      {{"--log", "x.log"}, "--nats is required"},
      {{"--nats", "http://a:1"}, "--nats: 'http://a:1' is not a NATS server URL"},
      {{"--nats", "nats://a:1", "--step", "-1"}, "--step: '-1' is not a speed step in km/h"},
      {{"--nats", "nats://a:1", "--increase-every", "0s"},
       "--increase-every: '0s' is not a positive duration"},
      {{"--nats", "nats://a:1", "--poll-interval", "1s"}, "unknown flag '--poll-interval'"},
  };
  expect_refused(CUSTODY_CAR_MONITOR_BINARY, "custody-car-monitor",
                 "usage: custody-car-monitor --nats URL", monitor_cases, dir.path());
}

TEST(CarOverNatsErrors, NoServerExitsWith1BeforeStartingAnything) {
  TempDir dir;
  std::string url;
  {
    custody_test::NatsServer gone;
    url = gone.url();
  }  // stopped: nobody listens on its port now
  // (A URL carrying credentials is a bad flag: car_tls_test.)
  const Finished car =
      run(CUSTODY_CAR_BINARY, {"--nats", url, "--log-file", dir.path() + "/car.log"}, dir.path());
  EXPECT_EQ(car.exit_code, 1);
  EXPECT_TRUE(car.out.empty()) << car.out.front();
  EXPECT_EQ(car.err, "custody-car: cannot connect to NATS at " + url +
                         ": No server available for connection (is nats-server -js running "
                         "there?); nothing was started\n");
}

TEST(CarOverNatsErrors, AMonitorStartedBeforeTheServerWaitsForIt) {
  TempDir dir;
  int port = 0;
  {
    custody_test::NatsServer gone;
    port = gone.port();
  }  // stopped: nobody listens on its port now
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  Process monitor("custody-car-monitor", CUSTODY_CAR_MONITOR_BINARY,
                  {"--nats", url, "--log", dir.path() + "/m.log"}, dir.path());
  ASSERT_TRUE(monitor.read_until(
      std::regex("custody-car-monitor: cannot connect to NATS at " + url +
                 ": No server available for connection \\(is nats-server -js running there\\?\\); "
                 "trying again every second until it answers \\(Ctrl-C stops\\)")))
      << monitor.err();
  custody_test::NatsServerOptions on_that_port;
  on_that_port.port = port;
  custody_test::NatsServer server(on_that_port);
  ASSERT_EQ(server.port(), port);
  ASSERT_TRUE(monitor.read_until(std::regex("custody-car-monitor: NATS answers now")))
      << monitor.err();
  ASSERT_TRUE(monitor.read_until(std::regex("custody-car-monitor: following the car at NATS ")))
      << monitor.err();
  monitor.signal(SIGTERM);
  EXPECT_EQ(monitor.finish(), 0) << monitor.err();
}

TEST(CarOverNatsErrors, AServerWithoutJetStreamExitsWith1) {
  TempDir dir;
  custody_test::NatsServerOptions without_jetstream;
  without_jetstream.jetstream = false;
  custody_test::NatsServer plain(without_jetstream);
  const Finished r = run(CUSTODY_CAR_BINARY,
                         {"--nats", plain.url(), "--log-file", dir.path() + "/x.log"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("connected to NATS at " + plain.url() +
                       ", but cannot open or create key-value bucket 'car': "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(is JetStream enabled? nats-server -js); nothing was started\n"),
            std::string::npos)
      << r.err;
  // A monitor waits for JetStream, which a server may enable later, until it is stopped.
  Process monitor("custody-car-monitor", CUSTODY_CAR_MONITOR_BINARY,
                  {"--nats", plain.url(), "--log", dir.path() + "/m.log"}, dir.path());
  ASSERT_TRUE(monitor.read_until(
      std::regex(".*\\(is JetStream enabled\\? nats-server -js\\); trying again every second.*")))
      << monitor.err();
  monitor.signal(SIGTERM);
  EXPECT_EQ(monitor.finish(), 0) << monitor.err();
  EXPECT_EQ(monitor.out().back(), "custody-car-monitor: stopped before NATS answered");
}

}  // namespace
