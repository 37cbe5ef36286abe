// The car example's four tasks wired together in-process, with a fake car, a fake log file, a
// fixed wall clock and ticks the test sends itself. Every step waits for the output it causes
// (over channels), never for time to pass. Each test runs with the tasks as threads and again as
// coroutines on one io_context thread (custody-car --runtime threads|coroutines), unless it
// says why it cannot.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>

#ifdef CUSTODY_CAR_WITH_ASIO
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <custody/asio.hpp>

#include "coro_tasks.hpp"
#endif

#include "car_data.hpp"
#include "car_device.hpp"
#include "format.hpp"
#include "log_file.hpp"
#include "tasks.hpp"
#include "thread_name.hpp"

namespace {

using namespace std::chrono_literals;

// Only reached when a test fails: a bound on waiting for output, never a synchronisation.
constexpr auto kTimeout = 30s;

car::WallTime t0() {
  using namespace std::chrono;
  return sys_days(year(2024) / May / 1) + 12h + 34min + 56s + 789ms;
}

// Holds one call where the test wants it: after arm(), the next pass() tells wait_reached()
// and then blocks until open().
class Gate {
 public:
  void arm() { armed_.store(true); }
  void pass() {
    if (!armed_.exchange(false)) return;
    (void)reached_.send(1);
    (void)opened_.recv();
  }
  void wait_reached() { EXPECT_TRUE(reached_.recv_for(kTimeout)) << "the gate was not reached"; }
  void open() { EXPECT_EQ(opened_.send(1), custody::status::ok); }
  // Lets every present and future pass() through, so a failed test can still shut down.
  void unblock() { opened_.close(); }

 private:
  std::atomic<bool> armed_{false};
  custody::Channel<int> reached_{1};
  custody::Channel<int> opened_{0};
};

// Lines a task wrote, for the test to receive one at a time.
class Lines {
 public:
  Gate gate;

  car::LineSink sink() {
    return [this](std::string_view line) {
      gate.pass();
      put(std::string(line));
    };
  }
  void put(std::string line) { (void)lines_.send(std::move(line)); }

  std::string next() {
    auto r = lines_.recv_for(kTimeout);
    EXPECT_TRUE(r) << "expected another line";
    return r ? *r : std::string("<none>");
  }
  void expect(const std::vector<std::string>& expected) {
    for (const std::string& line : expected) EXPECT_EQ(next(), line);
  }
  std::size_t pending() const { return lines_.size(); }

 private:
  custody::Channel<std::string> lines_{4096};
};

// What the fake car reports; the test changes it between steps.
struct CarControl {
  std::mutex mutex;
  bool link_up = false;
  bool connect_ok = true;
  double speed = 0;
  double location = 0;
  std::error_code set_error;
  bool drop_after_set = false;  // the link goes down right after the car takes a speed
  bool abort_set = false;       // the link drops during set_speed, after the car took it
  std::stop_token cancel;       // a stop request cuts a held set_speed short
  int connects = 0;
  std::vector<double> sets;  // speeds the car accepted
  std::string caller_name;   // the name of the thread that called connect()
  Gate gate;                 // holds the next device call

  void set(double new_speed, double new_location) {
    std::lock_guard lock(mutex);
    speed = new_speed;
    location = new_location;
  }
};

class FakeCar final : public car::CarDevice {
 public:
  explicit FakeCar(CarControl& c) : c_(c) {}

  bool is_connected() override {
    c_.gate.pass();
    std::lock_guard lock(c_.mutex);
    return c_.link_up;
  }
  std::error_code connect() override {
    c_.gate.pass();
    std::lock_guard lock(c_.mutex);
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    c_.caller_name = name;
    ++c_.connects;
    if (!c_.connect_ok) return std::make_error_code(std::errc::connection_refused);
    c_.link_up = true;
    return {};
  }
  std::optional<double> get_speed() override {
    c_.gate.pass();
    std::lock_guard lock(c_.mutex);
    return c_.link_up ? std::optional(c_.speed) : std::nullopt;
  }
  std::optional<double> get_location() override {
    c_.gate.pass();
    std::lock_guard lock(c_.mutex);
    return c_.link_up ? std::optional(c_.location) : std::nullopt;
  }
  std::error_code set_speed(double kmh) override {
    c_.gate.pass();
    std::lock_guard lock(c_.mutex);
    if (c_.cancel.stop_requested()) return std::make_error_code(std::errc::operation_canceled);
    if (!c_.link_up) return std::make_error_code(std::errc::not_connected);
    if (c_.set_error) return c_.set_error;
    c_.sets.push_back(kmh);
    c_.speed = kmh;
    if (c_.abort_set || c_.drop_after_set) c_.link_up = false;
    if (c_.abort_set) return std::make_error_code(std::errc::connection_aborted);
    return {};
  }

 private:
  CarControl& c_;
};

// A log file that hands each line to the test, or fails while `fail` is set.
class FakeLog final : public car::LineWriter {
 public:
  FakeLog(Lines& lines, std::atomic<bool>& fail) : lines_(lines), fail_(fail) {}
  std::error_code write_line(std::string_view line) override {
    lines_.gate.pass();
    if (fail_.load()) {
      lines_.put("FAILED " + std::string(line));
      return std::make_error_code(std::errc::no_space_on_device);
    }
    lines_.put(std::string(line));
    return {};
  }
  const std::string& name() const override { return name_; }

 private:
  Lines& lines_;
  std::atomic<bool>& fail_;
  std::string name_ = "fake.log";
};

// What the tasks print, for the expectations.
std::string at(std::string_view what) { return car::time_of_day(t0()) + "  " + std::string(what); }
std::string reading(double speed, double location, std::string_view tail = "connected") {
  char buf[160];
  std::snprintf(buf, sizeof buf, "speed %7.2f km/h  location %10.2f m  %s", speed, location,
                std::string(tail).c_str());
  return at(buf);
}
std::string logged(double speed, double location) {
  return car::log_line(car::CarData{speed, location, t0()});
}

#ifdef CUSTODY_CAR_WITH_ASIO
// Where the tasks run: a thread each (custody::TaskGroup), or coroutines on one io_context thread
// named "coroutines" (custody::asio::TaskGroup), as custody-car's --runtime chooses.
class Runtime {
 public:
  explicit Runtime(const std::string& runtime) : coroutines_(runtime == "coroutines") {
    if (coroutines_) {
      runner_ = std::thread([this] {
        car::name_this_thread("coroutines");
        io_.run();
      });
    }
  }
  ~Runtime() {
    request_stop();
    wait();
    work_.reset();
    if (runner_.joinable()) runner_.join();
  }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  bool coroutines() const { return coroutines_; }
  std::stop_token stop_token() const {
    return coroutines_ ? coros_.stop_token() : threads_.stop_token();
  }
  void request_stop() { coroutines_ ? coros_.request_stop() : threads_.request_stop(); }
  void wait() { coroutines_ ? coros_.wait() : threads_.wait(); }
  // Calls `fire` with where the tasks go: the fire-up functions take either.
  template <class Fire>
  decltype(auto) fire(Fire&& fire) {
    if (coroutines_) return fire(car::Coroutines{coros_, io_});
    return fire(threads_);
  }

 private:
  const bool coroutines_;
  custody::TaskGroup threads_;
  custody::asio::TaskGroup coros_;
  asio::io_context io_{1};
  // The runner waits for tasks spawned after it started.
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread runner_;
};

const std::vector<std::string> kRuntimes = {"threads", "coroutines"};
#else
// Without custody::asio, threads only.
class Runtime {
 public:
  explicit Runtime(const std::string&) {}
  bool coroutines() const { return false; }
  std::stop_token stop_token() const { return threads_.stop_token(); }
  void request_stop() { threads_.request_stop(); }
  void wait() { threads_.wait(); }
  template <class Fire>
  decltype(auto) fire(Fire&& fire) {
    return fire(threads_);
  }

 private:
  custody::TaskGroup threads_;
};

const std::vector<std::string> kRuntimes = {"threads"};
#endif
const auto kRuntimeName = [](const auto& info) { return info.param; };

class CarWiring : public ::testing::TestWithParam<std::string> {
 protected:
  // Declared before the task group, so they outlive the tasks that use them.
  CarControl car;
  Lines screen, answers, log, errors;
  std::atomic<bool> log_fails{false};
  car::RunStats stats;
  // Unbuffered: a send returns once the task has taken the tick, which also means it has
  // finished with the one before.
  custody::Channel<car::SteadyTime> poll_ticks, increase_ticks;
  Runtime tasks{GetParam()};
  car::CarStores stores;

  void start(car::IncreaseSettings settings = {1, kTimeout}, bool quiet = false) {
    const car::WallClock clock = [] { return t0(); };
    car.cancel = tasks.stop_token();
    tasks.fire([&](auto&& where) {
      stores = car::fireup_car_communication(where, std::make_unique<FakeCar>(car), poll_ticks,
                                             stats, clock);
      car::fireup_increase_speed(where, stores.data, increase_ticks, settings, answers.sink(),
                                 stats, clock);
      car::fireup_print_out_data(where, stores.data, stores.status, screen.sink(), stats, quiet);
      car::fireup_write_data_into_file(
          where, stores.data, std::make_unique<FakeLog>(log, log_fails), errors.sink(), stats);
    });
    stores.start();
  }

  // For a test that holds a task in a call (a Gate) and expects the others to go on: coroutines
  // share one thread, which the held call holds too. The device calls and the log's writes run
  // on it by design (examples/car/README.md: "Two runtimes").
  bool needs_a_thread_per_task() { return tasks.coroutines(); }

  // Starts, and sees the first reading, taken at once on connecting, on screen and in the log.
  void start_connected(car::IncreaseSettings settings = {1, kTimeout}) {
    start(settings);
    screen.expect({at("car connected"), reading(0, 0)});
    log.expect({logged(0, 0)});
  }

  static void tick(custody::Channel<car::SteadyTime>& ticks) {
    ASSERT_EQ(ticks.send(car::SteadyTime{}), custody::status::ok);
  }

  int connects() {
    std::lock_guard lock(car.mutex);
    return car.connects;
  }
  std::vector<double> sets() {
    std::lock_guard lock(car.mutex);
    return car.sets;
  }

  // Stops every task and waits for them: afterwards all their output is in.
  void finish() {
    tasks.request_stop();
    tasks.wait();
  }

  void TearDown() override {
    for (Gate* g : {&car.gate, &screen.gate, &answers.gate, &log.gate, &errors.gate}) g->unblock();
    finish();
    EXPECT_EQ(screen.pending(), 0u) << "unexpected line: " << screen.next();
    EXPECT_EQ(answers.pending(), 0u) << "unexpected line: " << answers.next();
    EXPECT_EQ(log.pending(), 0u) << "unexpected line: " << log.next();
    EXPECT_EQ(errors.pending(), 0u) << "unexpected line: " << errors.next();
  }
};

INSTANTIATE_TEST_SUITE_P(Runtimes, CarWiring, ::testing::ValuesIn(kRuntimes), kRuntimeName);

TEST_P(CarWiring, EveryReadingReachesTheScreenAndTheLog) {
  start_connected();
  car.set(12.5, 100);
  tick(poll_ticks);
  screen.expect({reading(12.5, 100)});
  log.expect({logged(12.5, 100)});

  finish();
  EXPECT_EQ(stats.updates, 2u);
  EXPECT_TRUE(stores.data.owner_gone()) << "the owner closes its stores when it ends";
  // Read under the first link status: connected.
  EXPECT_EQ(stores.data.get(), (car::CarData{12.5, 100, t0(), 1}));
  EXPECT_EQ(car.caller_name, tasks.coroutines() ? "coroutines" : "car communicati")
      << "the task's name, cut to 15 characters; or the one thread of the coroutines";
}

TEST_P(CarWiring, IncreaseAsksForOneStepMoreEachTick) {
  start_connected({2.5, kTimeout});
  tick(increase_ticks);
  answers.expect({at("set speed 2.50 km/h: accepted")});
  screen.expect({reading(2.5, 0)});
  log.expect({logged(2.5, 0)});
  tick(increase_ticks);
  answers.expect({at("set speed 5.00 km/h: accepted")});
  screen.expect({reading(5, 0)});
  log.expect({logged(5, 0)});
  EXPECT_EQ(sets(), (std::vector<double>{2.5, 5}));

  finish();
  EXPECT_EQ(stats.sets_accepted, 2u);
  EXPECT_EQ(stats.sets_rejected, 0u);
  EXPECT_EQ(stats.updates, 3u);
}

TEST_P(CarWiring, DisconnectedCarRejectsSetsAndReconnectsWithBackoff) {
  start_connected();
  {
    std::lock_guard lock(car.mutex);
    car.link_up = false;
    car.connect_ok = false;
  }
  tick(poll_ticks);
  screen.expect(
      {at("car disconnected: the car reports the link down; set requests are rejected "
          "until it reconnects")});
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (car disconnected)")});
  EXPECT_TRUE(sets().empty()) << "a rejected request never reaches the car";

  // Backoff: the first attempt one poll after the loss, then two polls later, then four.
  tick(poll_ticks);
  screen.expect({at("connect attempt 1 failed: Connection refused; next in 2 polls")});
  EXPECT_EQ(connects(), 2);
  tick(poll_ticks);
  // Answered once that poll was handled: the owner does one thing at a time.
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (car disconnected)")});
  EXPECT_EQ(connects(), 2) << "no attempt one poll after a failed one";
  tick(poll_ticks);
  screen.expect({at("connect attempt 2 failed: Connection refused; next in 4 polls")});
  EXPECT_EQ(connects(), 3);
  tick(poll_ticks);
  tick(poll_ticks);
  tick(poll_ticks);
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (car disconnected)")});
  EXPECT_EQ(connects(), 3) << "no attempt in the three polls after the second failed one";

  // The car moved on meanwhile; the reconnect brings a fresh reading with the status.
  car.set(7, 42);
  {
    std::lock_guard lock(car.mutex);
    car.connect_ok = true;
  }
  tick(poll_ticks);
  screen.expect({at("car reconnected after 2 failed attempts"), reading(7, 42)});
  log.expect({logged(7, 42)});
  EXPECT_EQ(connects(), 4);
  const auto [data, status] = custody::snapshot(stores.data, stores.status);
  EXPECT_TRUE(status.connected);
  EXPECT_EQ(data.location, 42);

  tick(increase_ticks);
  answers.expect({at("set speed 8.00 km/h: accepted")});
  screen.expect({reading(8, 42)});
  log.expect({logged(8, 42)});

  finish();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.sets_rejected, 3u);
  EXPECT_EQ(stats.sets_accepted, 1u);
  EXPECT_EQ(stores.status.get().disconnects, 1u);
}

TEST_P(CarWiring, FirstConnectionMayTakeRetries) {
  {
    std::lock_guard lock(car.mutex);
    car.connect_ok = false;
  }
  start();
  screen.expect({at("connect attempt 1 failed: Connection refused; next in 2 polls")});
  {
    std::lock_guard lock(car.mutex);
    car.connect_ok = true;
  }
  tick(poll_ticks);
  tick(poll_ticks);
  screen.expect({at("car connected after 1 failed attempt"), reading(0, 0)});
  log.expect({logged(0, 0)});
  finish();
  EXPECT_EQ(stats.disconnects, 0u) << "never connected, so nothing was lost";
}

TEST_P(CarWiring, RefusedAndInterruptedSetsAreRejectedWithTheReason) {
  start_connected();
  {
    std::lock_guard lock(car.mutex);
    car.set_error = std::make_error_code(std::errc::io_error);
  }
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (the car refused: Input/output error)")});

  // The link drops with nobody having noticed yet: the set finds out.
  {
    std::lock_guard lock(car.mutex);
    car.set_error.clear();
    car.link_up = false;
  }
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (car disconnected)")});
  screen.expect(
      {at("car disconnected: the link was down at set_speed; set requests are "
          "rejected until it reconnects")});
  finish();
  EXPECT_EQ(stats.sets_rejected, 2u);
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_TRUE(sets().empty());
}

TEST_P(CarWiring, SlowLogHoldsUpNeitherTheScreenNorTheOwner) {
  if (needs_a_thread_per_task()) GTEST_SKIP() << "holds one task while the others go on";
  start_connected();
  log.gate.arm();
  car.set(0, 1);
  tick(poll_ticks);
  log.gate.wait_reached();  // the file task is stuck writing this reading
  screen.expect({reading(0, 1)});
  for (int i = 2; i <= 4; ++i) {
    car.set(0, i);
    tick(poll_ticks);
    screen.expect({reading(0, i)});
  }
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: accepted")});
  screen.expect({reading(1, 4)});

  log.gate.open();
  log.expect({logged(0, 1), logged(0, 2), logged(0, 3), logged(0, 4), logged(1, 4)});
}

TEST_P(CarWiring, SlowScreenHoldsUpNeitherTheLogNorTheOwnerAndSaysWhatItSkipped) {
  if (needs_a_thread_per_task()) GTEST_SKIP() << "holds one task while the others go on";
  start_connected();
  screen.gate.arm();
  car.set(0, 1);
  tick(poll_ticks);
  screen.gate.wait_reached();  // the print task is stuck showing this reading
  log.expect({logged(0, 1)});
  // More updates than the screen's backlog holds: the oldest are dropped, for it alone.
  const int last = 1 + static_cast<int>(car::kScreenBacklog) + 4;
  for (int i = 2; i <= last; ++i) {
    car.set(0, i);
    tick(poll_ticks);
    log.expect({logged(0, i)});
  }
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: accepted")});
  log.expect({logged(1, last)});

  screen.gate.open();
  screen.expect({reading(0, 1)});
  // Backlog: the newest 16 of the 21 updates published meanwhile (locations 7 .. 21, then the
  // accepted set).
  screen.expect({reading(0, 7, "connected  (5 earlier updates not shown)")});
  for (int i = 8; i <= last; ++i) screen.expect({reading(0, i)});
  screen.expect({reading(1, last)});

  finish();
  EXPECT_EQ(stats.updates_not_shown, 5u);
  EXPECT_EQ(stats.lines_missed, 0u);
}

TEST_P(CarWiring, WriteErrorsAreReportedOnceCountedAndSurvived) {
  start_connected();
  log_fails = true;
  for (int i = 1; i <= 3; ++i) {
    car.set(0, i);
    tick(poll_ticks);
    screen.expect({reading(0, i)});
    log.expect({"FAILED " + logged(0, i)});
  }
  errors.expect(
      {"custody-car: cannot write to log file fake.log: No space left on device (later "
       "write errors are only counted)"});
  log_fails = false;
  tick(poll_ticks);
  screen.expect({reading(0, 3)});
  log.expect({logged(0, 3)});
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: accepted")});
  screen.expect({reading(1, 3)});
  log.expect({logged(1, 3)});

  finish();
  EXPECT_EQ(stats.write_errors, 3u);
}

TEST_P(CarWiring, SlowDeviceNeitherBlocksReadersNorGetsAbandonedRequests) {
  if (needs_a_thread_per_task()) GTEST_SKIP() << "holds one task while the others go on";
  start_connected({1, 10ms});
  car.gate.arm();
  tick(poll_ticks);
  car.gate.wait_reached();  // the owner is stuck in a device call
  // Readers get the last reading at once: a snapshot never waits for the owner.
  EXPECT_EQ(stores.data.get(), (car::CarData{0, 0, t0(), 1}));
  // Its caller gives up waiting (the outcome does not depend on how long it waits).
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: no answer within 10ms (the car may still take it)")});

  car.gate.open();
  screen.expect({reading(0, 0)});
  log.expect({logged(0, 0)});
  // Requests are answered in order, so the abandoned one was handled before this one (sent
  // without a timeout, so that its outcome does not depend on time either).
  const auto answer = stores.data.set(car::CarData{5, 0, {}});
  EXPECT_TRUE(answer.accepted());
  screen.expect({reading(5, 0)});
  log.expect({logged(5, 0)});
  EXPECT_EQ(sets(), (std::vector<double>{5})) << "the abandoned request never reached the car";

  finish();
  EXPECT_EQ(stats.sets_timed_out, 1u);
  EXPECT_EQ(stats.sets_rejected, 0u);
}

TEST_P(CarWiring, TheOwnerWaitsForTheGoAhead) {
  const car::WallClock clock = [] { return t0(); };
  stores = tasks.fire([&](auto&& where) {
    return car::fireup_car_communication(where, std::make_unique<FakeCar>(car), poll_ticks, stats,
                                         clock);
  });
  finish();  // stopped before start(): it never talked to the car
  EXPECT_EQ(connects(), 0);
  EXPECT_TRUE(stores.data.owner_gone());
  EXPECT_FALSE(stores.data.get().measured());
}

TEST_P(CarWiring, WhenTheOwnerEndsEveryTaskEnds) {
  start_connected();
  // No stop request: the owner ends when its ticks end, closing the stores, which ends the
  // subscribers; the increase task ends with its own ticks.
  poll_ticks.close();
  increase_ticks.close();
  tasks.wait();
  EXPECT_TRUE(stores.data.owner_gone());
  EXPECT_TRUE(stores.status.owner_gone());
  EXPECT_EQ(stores.data.set(car::CarData{}).status(), custody::set_status::owner_gone);
}

// After a set the car may have taken, the owner reads the car again before it answers: the
// answer finds the store holding what the car does, and the next request asks for one step
// more than that.
TEST_P(CarWiring, ASetTheCarTookButCouldNotConfirmIsUnconfirmedAndReadBackAtOnce) {
  start_connected();
  {
    std::lock_guard lock(car.mutex);
    car.drop_after_set = true;
  }
  tick(increase_ticks);
  answers.expect(
      {at("set speed 1.00 km/h: unconfirmed (the car took it, but the link dropped before it "
          "was read back)")});
  // Answered after the re-read, without a poll tick: the store has caught up already.
  const auto [data, status] = custody::snapshot(stores.data, stores.status);
  EXPECT_EQ(data.speed, 1) << "the store holds the speed read back from the car";
  EXPECT_TRUE(status.connected);
  EXPECT_EQ(data.link, status.changes) << "read under the new link status";
  screen.expect(
      {at("car disconnected: the link dropped before the car confirmed the new speed; set "
          "requests are rejected until it reconnects"),
       at("car reconnected"), reading(1, 0)});
  log.expect({logged(1, 0)});

  {
    std::lock_guard lock(car.mutex);
    car.drop_after_set = false;
  }
  tick(increase_ticks);
  answers.expect({at("set speed 2.00 km/h: accepted")});
  screen.expect({reading(2, 0)});
  log.expect({logged(2, 0)});

  finish();
  EXPECT_EQ(sets(), (std::vector<double>{1, 2}));
  EXPECT_EQ(connects(), 2);
  EXPECT_EQ(stats.sets_unconfirmed, 1u);
  EXPECT_EQ(stats.sets_rejected, 0u) << "an unconfirmed set is not a rejected one";
  EXPECT_EQ(stats.sets_accepted, 1u);
  EXPECT_EQ(stats.disconnects, 1u);
}

TEST_P(CarWiring, ALinkDroppedDuringASetIsUnconfirmedAndReadBackAtOnce) {
  start_connected();
  {
    std::lock_guard lock(car.mutex);
    car.abort_set = true;
  }
  tick(increase_ticks);
  answers.expect(
      {at("set speed 1.00 km/h: unconfirmed (the link dropped during the call; the car may "
          "have taken it)")});
  EXPECT_EQ(stores.data.get().speed, 1) << "read back before the answer";
  screen.expect(
      {at("car disconnected: the link dropped during set_speed; set requests are rejected "
          "until it reconnects"),
       at("car reconnected"), reading(1, 0)});
  log.expect({logged(1, 0)});
  finish();
  EXPECT_EQ(stats.sets_unconfirmed, 1u);
  EXPECT_EQ(stats.sets_rejected, 0u);
}

// The car cannot be reached again at once: requests are rejected until a reconnect has read it.
TEST_P(CarWiring, AnUnconfirmedSetWhoseReReadFailsWaitsForTheReconnect) {
  start_connected();
  {
    std::lock_guard lock(car.mutex);
    car.abort_set = true;
    car.connect_ok = false;
  }
  tick(increase_ticks);
  answers.expect(
      {at("set speed 1.00 km/h: unconfirmed (the link dropped during the call; the car may "
          "have taken it)")});
  screen.expect(
      {at("car disconnected: the link dropped during set_speed; set requests are rejected "
          "until it reconnects"),
       at("connect attempt 1 failed: Connection refused; next in 2 polls")});
  EXPECT_EQ(stores.data.get().speed, 0) << "nothing was read back";
  tick(increase_ticks);
  answers.expect({at("set speed 1.00 km/h: rejected (car disconnected)")});

  {
    std::lock_guard lock(car.mutex);
    car.abort_set = false;
    car.connect_ok = true;
  }
  tick(poll_ticks);
  tick(poll_ticks);
  screen.expect({at("car reconnected after 1 failed attempt"), reading(1, 0)});
  log.expect({logged(1, 0)});
  finish();
  EXPECT_EQ(sets(), (std::vector<double>{1}));
  EXPECT_EQ(stats.sets_unconfirmed, 1u);
  EXPECT_EQ(stats.sets_rejected, 1u);
}

TEST_P(CarWiring, AStopCutsASlowSetShortAndTheCarKeepsItsSpeed) {
  start_connected();
  car.gate.arm();
  // Without a stop token of its own: it waits for the owner's answer.
  std::optional<custody::set_result<car::CarData>> answer;
  std::jthread caller([&] { answer.emplace(stores.data.set(car::CarData{5, 0, {}})); });
  car.gate.wait_reached();  // the owner is in set_speed
  tasks.request_stop();
  car.gate.open();
  caller.join();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status(), custody::set_status::rejected);
  EXPECT_EQ(answer->error(), std::errc::operation_canceled);
  EXPECT_EQ(answer->message(), "cut short by the stop before it reached the car");
  finish();
  EXPECT_TRUE(sets().empty());
  EXPECT_EQ(stats.updates, 1u) << "no reading after the stop";
}

TEST_P(CarWiring, ReadingsShowTheLinkTheyWereReadUnderAndEveryLinkChangeOnce) {
  if (needs_a_thread_per_task()) GTEST_SKIP() << "holds one task while the others go on";
  start_connected();
  screen.gate.arm();
  car.set(0, 1);
  tick(poll_ticks);
  screen.gate.wait_reached();  // the print task is stuck showing this reading
  log.expect({logged(0, 1)});
  // Meanwhile: a reading, the link lost, a failed attempt, a reconnect with a reading, and the
  // link lost again.
  car.set(0, 2);
  tick(poll_ticks);
  log.expect({logged(0, 2)});
  {
    std::lock_guard lock(car.mutex);
    car.link_up = false;
    car.connect_ok = false;
  }
  tick(poll_ticks);  // the link is found lost
  tick(poll_ticks);  // connect attempt 1 fails: next in 2 polls
  // The first of those 2 polls; the owner takes this tick only once the failed attempt is over,
  // so the car may accept connections from here on.
  tick(poll_ticks);
  {
    std::lock_guard lock(car.mutex);
    car.connect_ok = true;
  }
  car.set(0, 3);
  tick(poll_ticks);  // reconnects, with a reading
  log.expect({logged(0, 3)});
  {
    std::lock_guard lock(car.mutex);
    car.link_up = false;
  }
  tick(poll_ticks);

  screen.gate.open();
  const std::string lost =
      at("car disconnected: the car reports the link down; set requests are rejected until it "
         "reconnects");
  screen.expect({reading(0, 1), reading(0, 2), lost,
                 at("connect attempt 1 failed: Connection refused; next in 2 polls"),
                 at("car reconnected after 1 failed attempt"), reading(0, 3), lost});
}

TEST_P(CarWiring, QuietShowsLinkChangesButNoReadings) {
  start({1, kTimeout}, true);
  screen.expect({at("car connected")});
  log.expect({logged(0, 0)});
  car.set(0, 1);
  tick(poll_ticks);
  log.expect({logged(0, 1)});
  {
    std::lock_guard lock(car.mutex);
    car.link_up = false;
  }
  tick(poll_ticks);
  // Had the reading been shown, it would come first.
  screen.expect(
      {at("car disconnected: the car reports the link down; set requests are rejected until it "
          "reconnects")});
}

// A stop request and a set request ready at the same instant: the owner must not take the set.
// Repeated, because a select picks among ready cases at random.
class CarOwner : public ::testing::TestWithParam<std::string> {};

TEST_P(CarOwner, TakesNoRequestAfterAStop) {
  const car::WallClock clock = [] { return t0(); };
  for (int round = 0; round < 20; ++round) {
    CarControl car;
    car::RunStats stats;
    custody::Channel<car::SteadyTime> poll_ticks;
    Runtime tasks(GetParam());
    car::CarStores stores = tasks.fire([&](auto&& where) {
      return car::fireup_car_communication(where, std::make_unique<FakeCar>(car), poll_ticks, stats,
                                           clock);
    });
    auto readings = stores.data.subscribe(custody::policy::buffer(4));
    stores.start();
    ASSERT_TRUE(readings.recv_for(kTimeout)) << "the first reading";
    car.gate.arm();
    ASSERT_EQ(poll_ticks.send(car::SteadyTime{}), custody::status::ok);
    car.gate.wait_reached();  // the owner is busy polling
    custody::Channel<int> sending{1};
    std::optional<custody::set_result<car::CarData>> answer;
    std::jthread caller([&] {
      (void)sending.send(1);
      answer.emplace(stores.data.set(car::CarData{5, 0, {}}));
    });
    ASSERT_TRUE(sending.recv_for(kTimeout));
    tasks.request_stop();
    car.gate.open();
    caller.join();
    tasks.wait();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status(), custody::set_status::owner_gone) << "round " << round;
    std::lock_guard lock(car.mutex);
    EXPECT_TRUE(car.sets.empty()) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Runtimes, CarOwner, ::testing::ValuesIn(kRuntimes), kRuntimeName);

// The monitor's +1 is a conditional set: a reading published between its read and the
// owner's answer makes it a conflict, reported as such, and nothing is applied. Threads only:
// custody-car-monitor runs its increase task as a thread, and the coroutine one has no
// conditional set (custody::asio has no asynchronous set_if).
TEST(CarIncrease, AConditionalIncreaseUnderAConcurrentChangeIsAConflict) {
  Lines answers;
  car::RunStats stats;
  custody::Channel<car::SteadyTime> ticks;
  auto [owner, store] = custody::make_store<car::CarData>(car::CarData{10, 0, t0(), 1});
  auto requests = owner.requests();
  custody::TaskGroup tasks;
  car::fireup_increase_speed(tasks, store, ticks, {1, kTimeout, true}, answers.sink(), stats,
                             [] { return t0(); });
  ASSERT_EQ(ticks.send(car::SteadyTime{}), custody::status::ok);
  auto r = requests.recv();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->expected_version());
  ASSERT_EQ(owner.publish(car::CarData{20, 0, t0(), 1}), custody::status::ok);  // meanwhile
  owner.accept(std::move(*r));
  answers.expect(
      {at("set speed 11.00 km/h: conflict (the speed changed since it was read; not applied)")});
  EXPECT_EQ(store.get().speed, 20);
  tasks.request_stop();
  tasks.wait();
  EXPECT_EQ(stats.sets_rejected, 1u);
  EXPECT_EQ(stats.sets_accepted, 0u);
}

}  // namespace
