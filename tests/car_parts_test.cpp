// The car example's parts on their own: flags, formatting, the simulated car, the log file.

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>

#include "car_device.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "options.hpp"
#include "run_control.hpp"
#include "schedule.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

car::ParsedOptions parse(std::vector<std::string_view> args) { return car::parse_options(args); }

TEST(CarOptions, DefaultsAreTheSeeds) {
  const auto p = parse({});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_EQ(p.options->poll_interval, 2s);
  EXPECT_EQ(p.options->increase_every, 5s);
  EXPECT_EQ(p.options->speed_step, 1.0);
  EXPECT_EQ(p.options->log_file, "log.txt");
  EXPECT_FALSE(p.options->duration);
  EXPECT_EQ(p.options->disconnect_rate, 0.0);
  EXPECT_EQ(p.options->device_latency, 0s);
  EXPECT_FALSE(p.options->seed);
}

TEST(CarOptions, TakesValuesAfterASpaceOrAnEqualsSign) {
  const auto p =
      parse({"--poll-interval", "50ms", "--increase-every=1.5s", "--speed-step", "2.5",
             "--log-file=/tmp/x.txt", "--duration", "3m", "--disconnect-rate", "0.25",
             "--set-failure-rate=1", "--device-latency", "0", "--seed", "18446744073709551615"});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_EQ(p.options->poll_interval, 50ms);
  EXPECT_EQ(p.options->increase_every, 1500ms);
  EXPECT_EQ(p.options->speed_step, 2.5);
  EXPECT_EQ(p.options->log_file, "/tmp/x.txt");
  EXPECT_EQ(p.options->duration, nanoseconds(3min));
  EXPECT_EQ(p.options->disconnect_rate, 0.25);
  EXPECT_EQ(p.options->set_failure_rate, 1.0);
  EXPECT_EQ(p.options->device_latency, 0s);
  EXPECT_EQ(p.options->seed, 18446744073709551615ull);
}

TEST(CarOptions, DumpDotTakesAPathAndIsOffByDefault) {
  const auto given = parse({"--dump-dot", "/tmp/graph.dot"});
  ASSERT_TRUE(given.options) << given.error;
  EXPECT_EQ(given.options->dump_dot, "/tmp/graph.dot");
  const auto plain = parse({});
  ASSERT_TRUE(plain.options) << plain.error;
  EXPECT_EQ(plain.options->dump_dot, "");
  EXPECT_FALSE(parse({"--dump-dot"}).options);
}

TEST(CarOptions, HelpWins) {
  EXPECT_TRUE(parse({"--poll-interval", "1s", "-h"}).help);
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"--version"}).version);
  EXPECT_TRUE(parse({"--bogus", "--version"}).version);
}

TEST(CarOptions, DoubleDashEndsTheFlags) {
  const auto p = parse({"--duration", "1s", "--"});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_EQ(p.options->duration, nanoseconds(1s));
  // After it, nothing is a flag: not even --help.
  const auto after = parse({"--", "--help"});
  EXPECT_FALSE(after.help);
  EXPECT_NE(after.error.find("unexpected argument '--help'"), std::string::npos) << after.error;
}

TEST(CarOptions, ReadingsBoundTheRun) {
  const auto p = parse({"--readings", "250"});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_EQ(p.options->readings, 250u);
  EXPECT_FALSE(parse({}).options->readings) << "no bound unless asked for";
}

TEST(CarOptions, QuietAndTheLargestValues) {
  const auto p = parse({"--quiet", "--speed-step", "1000", "--duration", "8784h"});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_TRUE(p.options->quiet);
  EXPECT_EQ(p.options->speed_step, car::kMaxSpeedStepKmh);
  EXPECT_EQ(p.options->duration, car::kLongestDuration);
  EXPECT_FALSE(parse({}).options->quiet);
}

TEST(CarOptions, RuntimeChoosesThreadsOrCoroutines) {
  EXPECT_EQ(parse({}).options->runtime, car::Runtime::threads) << "threads unless asked for";
  const auto threads = parse({"--runtime", "threads"});
  ASSERT_TRUE(threads.options) << threads.error;
  EXPECT_EQ(threads.options->runtime, car::Runtime::threads);
  const auto coroutines = parse({"--runtime=coroutines"});
  if (car::coroutines_available()) {
    ASSERT_TRUE(coroutines.options) << coroutines.error;
    EXPECT_EQ(coroutines.options->runtime, car::Runtime::coroutines);
  } else {
    EXPECT_FALSE(coroutines.options);
    EXPECT_EQ(coroutines.error,
              "--runtime: 'coroutines' is not available: this build has no coroutine support "
              "(standalone Asio was not found)");
  }
}

TEST(CarOptions, ErrorsNameTheFlagAndTheProblem) {
  struct Case {
    std::vector<std::string_view> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--poll-interval", "-1s"}, "--poll-interval: '-1s' is not a positive duration"},
      {{"--poll-interval", "0s"}, "--poll-interval: '0s' is not a positive duration"},
      {{"--poll-interval", "abc"}, "--poll-interval: 'abc' is not a duration"},
      {{"--poll-interval", "5"}, "--poll-interval: '5' is not a duration (use a unit"},
      {{"--poll-interval", "10us"}, "--poll-interval: '10us' is too short"},
      {{"--increase-every=2x"}, "--increase-every: '2x' is not a duration"},
      {{"--speed-step", "fast"}, "--speed-step: 'fast' is not a speed step in km/h"},
      {{"--speed-step", "-1"}, "--speed-step: '-1' is not a speed step in km/h"},
      {{"--speed-step", "0"}, "--speed-step: '0' is not a speed step in km/h"},
      {{"--speed-step", "inf"}, "--speed-step: 'inf' is not a speed step in km/h"},
      {{"--speed-step", "1e300"},
       "--speed-step: '1e300' is not a speed step in km/h (more than 0, at most 1000)"},
      {{"--speed-step", "1000.5"}, "--speed-step: '1000.5' is not a speed step in km/h"},
      {{"--disconnect-rate", "1.5"}, "--disconnect-rate: '1.5' is not a rate between 0 and 1"},
      {{"--set-failure-rate", "-0.1"}, "--set-failure-rate: '-0.1' is not a rate"},
      {{"--device-latency", "-5ms"}, "--device-latency: '-5ms' is negative"},
      {{"--duration", "0ms"}, "--duration: '0ms' is not a positive duration"},
      {{"--duration", "999999h"}, "--duration: '999999h' is too long (at most 8784h)"},
      {{"--poll-interval", "1e30h"}, "--poll-interval: '1e30h' is too long"},
      {{"--device-latency", "367d"}, "--device-latency: '367d' is not a duration"},
      {{"--seed", "-3"}, "--seed: '-3' is not a whole number"},
      {{"--readings", "0"}, "--readings: '0' is not a number of readings (a whole number, at"},
      {{"--readings", "-1"}, "--readings: '-1' is not a number of readings"},
      {{"--readings", "2.5"}, "--readings: '2.5' is not a number of readings"},
      {{"--log-file="}, "--log-file needs a value"},
      {{"--log-file"}, "--log-file needs a value"},
      {{"--poll-interval", "--duration", "1s"},
       "--poll-interval: needs a value ('--duration' is a flag)"},
      {{"--log-file", "--quiet"}, "--log-file: needs a value ('--quiet' is a flag)"},
      {{"--bogus"}, "unknown flag '--bogus'"},
      {{"--bogus=1"}, "unknown flag '--bogus'"},
      {{"fast"}, "unexpected argument 'fast'"},
      {{"--", "--duration", "1s"}, "unexpected argument '--duration' (flags only)"},
      {{"--runtime", "fibers"}, "--runtime: 'fibers' is not a runtime (threads or coroutines)"},
      {{"--runtime", ""}, "--runtime: '' is not a runtime"},
      {{"--runtime"}, "--runtime needs a value"},
  };
  for (const Case& c : cases) {
    const auto p = parse(c.args);
    EXPECT_FALSE(p.options) << c.expected;
    EXPECT_FALSE(p.help);
    EXPECT_NE(p.error.find(c.expected), std::string::npos)
        << "error: " << p.error << "\nexpected: " << c.expected;
  }
}

TEST(CarOptions, UsageListsEveryFlag) {
  const std::string text = car::usage();
  for (const char* flag :
       {"--poll-interval", "--increase-every", "--speed-step", "--log-file", "--duration",
        "--readings", "--disconnect-rate", "--set-failure-rate", "--device-latency", "--seed",
        "--quiet", "--runtime", "--version", "--help", "--dump-dot"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
  }
}

TEST(CarOptions, DurationsTakeUnits) {
  EXPECT_EQ(car::parse_duration("250ms"), nanoseconds(250ms));
  EXPECT_EQ(car::parse_duration("2s"), nanoseconds(2s));
  EXPECT_EQ(car::parse_duration("1.5s"), nanoseconds(1500ms));
  EXPECT_EQ(car::parse_duration("90us"), nanoseconds(90us));
  EXPECT_EQ(car::parse_duration("7ns"), nanoseconds(7));
  EXPECT_EQ(car::parse_duration("1.5m"), nanoseconds(90s));
  EXPECT_EQ(car::parse_duration("2h"), nanoseconds(2h));
  EXPECT_EQ(car::parse_duration("0"), nanoseconds(0));
  for (const char* bad : {"", "5", "ms", "s", "1x", "1 s", "nans", "infs", "1e30h", "+1s"}) {
    EXPECT_FALSE(car::parse_duration(bad)) << bad;
  }
}

// A fixed wall-clock time: 2024-05-01 12:34:56.789 UTC.
car::WallTime fixed_time() {
  using namespace std::chrono;
  return sys_days(year(2024) / May / 1) + 12h + 34min + 56s + 789ms;
}

TEST(CarFormat, Iso8601IsLocalTimeWithMillisecondsAndOffset) {
  const std::string text = car::iso8601(fixed_time());
  std::smatch m;
  const std::regex shape(
      R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})([+-])(\d{2}):(\d{2})$)");
  ASSERT_TRUE(std::regex_match(text, m, shape)) << text;
  EXPECT_EQ(m[7], "789");
  EXPECT_EQ(m[6], "56");
  // Local time minus the offset is the UTC time (whatever the machine's time zone).
  const int sign = m[8] == "-" ? -1 : 1;
  const int offset_min = sign * (std::stoi(m[9]) * 60 + std::stoi(m[10]));
  const int local_min = std::stoi(m[4]) * 60 + std::stoi(m[5]);
  const int day_shift = m[2] == "05" ? std::stoi(m[3]) - 1 : -1;  // the UTC date is May 1
  EXPECT_EQ(local_min + day_shift * 24 * 60 - offset_min, 12 * 60 + 34) << text;
}

TEST(CarFormat, TimeOfDayMatchesTheIsoTime) {
  const std::string iso = car::iso8601(fixed_time());
  EXPECT_EQ(car::time_of_day(fixed_time()), iso.substr(11, 12));
}

TEST(CarFormat, LogLineIsDateSpeedLocation) {
  const car::CarData d{12.5, 1234.567, fixed_time()};
  EXPECT_EQ(car::log_line(d), car::iso8601(fixed_time()) + ": 12.50, 1234.57");
}

TEST(CarFormat, NumbersKeepEveryDigit) {
  EXPECT_EQ(car::fixed2(1e20), "100000000000000000000.00");
  EXPECT_EQ(car::fixed2(-0.005), "-0.01");
  EXPECT_EQ(car::fixed2(1e300).size(), 301u + 3u) << "no truncation";
  EXPECT_EQ(car::format_number(1000), "1000");
  EXPECT_EQ(car::format_number(0.25), "0.25");
}

TEST(CarFormat, DurationsPrintInTheirLargestWholeUnit) {
  EXPECT_EQ(car::format_duration(2s), "2s");
  EXPECT_EQ(car::format_duration(250ms), "250ms");
  EXPECT_EQ(car::format_duration(1500ms), "1500ms");
  EXPECT_EQ(car::format_duration(2min), "2m");
  EXPECT_EQ(car::format_duration(0s), "0s");
  EXPECT_EQ(car::format_duration(nanoseconds(7)), "7ns");
  EXPECT_EQ(car::count(1, "update", "updates"), "1 update");
  EXPECT_EQ(car::count(0, "update", "updates"), "0 updates");
}

// A clock the test moves by hand.
struct ManualClock {
  std::chrono::steady_clock::time_point now{};
  car::SimulatedCar::Clock fn() {
    return [this] { return now; };
  }
};

TEST(SimulatedCar, LocationIsSpeedIntegratedOverTime) {
  ManualClock clock;
  car::SimulatedCar sim({}, 1, {}, clock.fn());
  EXPECT_FALSE(sim.get_speed()) << "no link before connect()";
  ASSERT_FALSE(sim.connect());
  EXPECT_TRUE(sim.is_connected());
  EXPECT_EQ(sim.get_speed(), 0.0);
  ASSERT_FALSE(sim.set_speed(36));  // 36 km/h = 10 m/s
  clock.now += 10s;
  EXPECT_EQ(sim.get_speed(), 36.0);
  EXPECT_NEAR(*sim.get_location(), 100.0, 1e-9);
  ASSERT_FALSE(sim.set_speed(72));
  clock.now += 500ms;
  EXPECT_NEAR(*sim.get_location(), 110.0, 1e-9);
  EXPECT_EQ(sim.set_speed(-1), std::errc::invalid_argument);
}

TEST(SimulatedCar, InjectsFaults) {
  ManualClock clock;
  car::SimulatedCar refuses({.set_failure_rate = 1}, 1, {}, clock.fn());
  ASSERT_FALSE(refuses.connect());
  EXPECT_EQ(refuses.set_speed(10), std::errc::io_error);
  EXPECT_TRUE(refuses.is_connected()) << "a refused set keeps the link";

  car::SimulatedCar drops({.disconnect_rate = 1}, 1, {}, clock.fn());
  ASSERT_FALSE(drops.connect());
  EXPECT_FALSE(drops.is_connected());
  EXPECT_FALSE(drops.get_speed());
  EXPECT_FALSE(drops.get_location());
  EXPECT_EQ(drops.set_speed(10), std::errc::not_connected);
}

TEST(SimulatedCar, TheSameSeedGivesTheSameFaults) {
  const auto trace = [](std::uint64_t seed) {
    ManualClock clock;
    car::SimulatedCar sim({.disconnect_rate = 0.3, .set_failure_rate = 0.3}, seed, {}, clock.fn());
    std::string out;
    for (int i = 0; i < 200; ++i) {
      if (!sim.is_connected()) {
        out += sim.connect() ? 'r' : 'c';
      } else {
        out += sim.set_speed(i) ? 'f' : 's';
      }
    }
    return out;
  };
  EXPECT_EQ(trace(42), trace(42));
  EXPECT_NE(trace(42), trace(43));
  const std::string t = trace(42);
  EXPECT_NE(t.find('r'), std::string::npos) << "a lost link takes more than one try at times";
  EXPECT_NE(t.find('f'), std::string::npos);
}

TEST(SimulatedCar, ACallCutShortByCancelDoesNothing) {
  std::stop_source cancel;
  car::SimulatedCar sim({.latency = 1ms}, 1, cancel.get_token());
  ASSERT_FALSE(sim.connect());
  ASSERT_FALSE(sim.set_speed(36));
  cancel.request_stop();
  // Each returns at once instead of after its latency, and reports that it was cut short.
  EXPECT_EQ(sim.set_speed(72), std::errc::operation_canceled);
  EXPECT_FALSE(sim.get_speed());
  EXPECT_FALSE(sim.is_connected());
  EXPECT_EQ(sim.connect(), std::errc::operation_canceled);
}

TEST(SimulatedCar, ALatencyOfADayEndsOnCancel) {
  std::stop_source cancel;
  cancel.request_stop();
  car::SimulatedCar sim({.latency = 24h}, 1, cancel.get_token());
  EXPECT_EQ(sim.connect(), std::errc::operation_canceled);  // at once, not after a day
}

TEST(SimulatedCar, RefusesSpeedsAboveItsTopSpeed) {
  ManualClock clock;
  car::SimulatedCar sim({}, 1, {}, clock.fn());
  ASSERT_FALSE(sim.connect());
  EXPECT_FALSE(sim.set_speed(car::kTopSpeedKmh));
  EXPECT_EQ(sim.set_speed(car::kTopSpeedKmh + 1), std::errc::result_out_of_range);
  EXPECT_EQ(sim.get_speed(), car::kTopSpeedKmh);
}

// The n-th set_speed meets the same faults whatever other calls came between: a car that is
// also polled now and then (which may drop the link, and then takes reconnecting) sees the same
// set outcomes as one that only gets set requests.
TEST(SimulatedCar, EachKindOfCallDrawsItsOwnFaults) {
  const auto set_outcomes = [](bool also_poll) {
    ManualClock clock;
    car::SimulatedCar sim({.disconnect_rate = 0.2, .set_failure_rate = 0.3}, 42, {}, clock.fn());
    std::string out;
    for (int i = 0; i < 200; ++i) {
      if (also_poll && i % 3 == 0) (void)sim.get_location();
      while (sim.connect()) {
      }
      const std::error_code ec = sim.set_speed(i);
      out += !ec ? (sim.get_speed() && sim.get_location() ? 'a' : 'u')
             : ec == std::errc::connection_aborted ? 'd'
                                                   : 'f';
    }
    return out;
  };
  const std::string alone = set_outcomes(false);
  EXPECT_EQ(set_outcomes(true), alone);
  for (const char kind : {'a', 'u', 'd', 'f'}) {
    EXPECT_NE(alone.find(kind), std::string::npos) << "every outcome occurs: " << kind;
  }
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    pattern += "/custody-car-XXXXXX";
    path_ = mkdtemp(pattern.data()) ? pattern : "";
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

TEST(CarLogFile, AppendsWholeLines) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/log.txt";
  {
    std::error_code ec;
    auto file = car::LogFile::open(path, ec);
    ASSERT_TRUE(file) << ec.message();
    EXPECT_EQ(file->name(), path);
    EXPECT_FALSE(file->write_line("one"));
    EXPECT_EQ(read_file(path), "one\n") << "each line reaches the file at once";
    EXPECT_FALSE(file->write_line("two"));
  }
  std::error_code ec;
  auto again = car::LogFile::open(path, ec);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->write_line("three"));
  EXPECT_EQ(read_file(path), "one\ntwo\nthree\n") << "appends, never truncates";
}

TEST(CarLogFile, ReportsOpenAndWriteErrors) {
  TempDir dir;
  std::error_code ec;
  EXPECT_FALSE(car::LogFile::open(dir.path() + "/missing/log.txt", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
  EXPECT_FALSE(car::LogFile::open(dir.path(), ec));
  EXPECT_EQ(ec, std::errc::is_a_directory);

  auto full = car::LogFile::open("/dev/full", ec);
  if (!full) GTEST_SKIP() << "/dev/full: " << ec.message();
  EXPECT_EQ(full->write_line("x"), std::errc::no_space_on_device);
}

// --- the schedule ----------------------------------------------------------------------

// Takes the schedule's ticks as the two tasks would, saying which came, in order.
struct TickTaker {
  custody::Receiver<car::SteadyTime> polls, increases;

  // The next tick: 'p' or 'i' and its time, or 'x' once both channels are closed.
  std::pair<char, car::SteadyTime> next() {
    std::pair<char, car::SteadyTime> got{'x', {}};
    bool polls_open = true, increases_open = true;
    while (got.first == 'x' && (polls_open || increases_open)) {
      custody::select(custody::on_recv(
                          polls,
                          [&](car::SteadyTime t) {
                            got = {'p', t};
                          },
                          [&] { polls_open = false; })
                          .when(polls_open),
                      custody::on_recv(
                          increases,
                          [&](car::SteadyTime t) {
                            got = {'i', t};
                          },
                          [&] { increases_open = false; })
                          .when(increases_open));
    }
    return got;
  }
};

// The ticks come one at a time, each only once the one before was acted on, in the order of
// their nominal time (a poll first when both are due), each carrying that time, which is also
// now() while it is under way.
TEST(CarSchedule, SendsOneTickAtATimeInNominalOrder) {
  // Periods of a microsecond: every tick is due long before the test takes it, so only the
  // schedule's waiting for each to be acted on keeps them apart.
  car::Schedule schedule(2us, 3us);
  const car::SteadyTime start = schedule.now();
  const car::TickDone done = schedule.tick_done();
  std::jthread runner([&](std::stop_token stop) {
    schedule.run(
        stop, [] { return false; }, [] {});
  });
  TickTaker taker{schedule.poll_ticks(), schedule.increase_ticks()};
  // Nothing before the first connect attempt is over.
  EXPECT_EQ(taker.polls.recv_for(20ms).status(), custody::status::timeout);
  done();
  const std::vector<std::pair<char, nanoseconds>> expected = {
      {'p', 2us}, {'i', 3us}, {'p', 4us}, {'p', 6us}, {'i', 6us}, {'p', 8us}, {'i', 9us}};
  for (const auto& [kind, at] : expected) {
    const auto [got, time] = taker.next();
    EXPECT_EQ(got, kind) << "at " << at.count() << " ns";
    EXPECT_EQ(time - start, at) << kind;
    EXPECT_EQ(schedule.now(), time);
    // Not acted on yet: no other tick comes, although all are overdue.
    EXPECT_EQ(taker.polls.recv_for(5ms).status(), custody::status::timeout);
    EXPECT_EQ(taker.increases.try_recv().status(), custody::status::would_block);
    done();
  }
  runner.request_stop();
  runner.join();
  // The tick after the last one acted on may have been sent before the stop.
  auto last = taker.next();
  if (last.first != 'x') last = taker.next();
  EXPECT_EQ(last.first, 'x') << "both channels end with the schedule";
}

TEST(CarSchedule, EndsOnceEnoughTicksWereActedOn) {
  car::Schedule schedule(1us, 1h);
  const car::TickDone done = schedule.tick_done();
  int acted_on = 0;
  bool told = false;
  std::jthread runner([&](std::stop_token stop) {
    schedule.run(
        stop, [&] { return acted_on == 3; }, [&] { told = true; });
  });
  TickTaker taker{schedule.poll_ticks(), schedule.increase_ticks()};
  done();  // the first connect attempt
  for (;;) {
    const auto [kind, time] = taker.next();
    if (kind == 'x') break;
    EXPECT_EQ(kind, 'p');
    ++acted_on;
    done();
  }
  runner.join();
  EXPECT_EQ(acted_on, 3);
  EXPECT_TRUE(told);
}

TEST(CarSchedule, AStopEndsItWhileATickIsUnderWay) {
  car::Schedule schedule(1us, 1us);
  std::jthread runner([&](std::stop_token stop) {
    schedule.run(
        stop, [] { return false; }, [] { ADD_FAILURE() << "not enough"; });
  });
  TickTaker taker{schedule.poll_ticks(), schedule.increase_ticks()};
  schedule.tick_done()();
  EXPECT_EQ(taker.next().first, 'p');
  runner.request_stop();  // never acted on
  EXPECT_EQ(taker.next().first, 'x');
}

// --- how a run ends ----------------------------------------------------------------------

TEST(CarRunControl, TheExitStatusSaysHowTheRunEnded) {
  {
    car::RunControl control;
    control.tasks().spawn("failing", [](std::stop_token) { throw std::runtime_error("boom"); });
    control.run_until_stopped(std::nullopt);  // the failure stops the run
    const car::RunEnd end = control.finish();
    EXPECT_EQ(end.reason, "a failed task");
    EXPECT_EQ(end.failure, "the failing task failed: boom");
    EXPECT_EQ(car::exit_status(end, 0), car::kExitFailed);
    EXPECT_EQ(car::exit_status(end, 5), car::kExitFailed) << "a failure outranks lost lines";
  }
  {
    car::RunControl control;
    control.stop("--readings");
    control.stop("a closed standard output");  // later: the first reason stays
    control.run_until_stopped(std::nullopt);
    const car::RunEnd end = control.finish();
    EXPECT_EQ(end.reason, "--readings");
    EXPECT_EQ(car::exit_status(end, 0), car::kExitOk);
    EXPECT_EQ(car::exit_status(end, 1), car::kExitLinesLost);
  }
  EXPECT_EQ(car::kExitOk, 0);
  EXPECT_EQ(car::kExitFailed, 1);
  EXPECT_EQ(car::kExitBadFlags, 2);
  EXPECT_EQ(car::kExitLinesLost, 3);

  // Each kind of lost line counts.
  car::RunStats stats;
  EXPECT_EQ(car::lines_lost(stats, 0), 0u);
  stats.write_errors = 1;
  stats.lines_missed = 2;
  stats.updates_not_shown = 4;
  EXPECT_EQ(car::lines_lost(stats, 8), 15u);
}

}  // namespace
