// Random stops of the car example's pipeline (examples/car): the communication task (owner of
// both stores, talking to a simulated car with faults), the increase-speed task, the print and
// file tasks, plus a setter of our own, all in one custody::TaskGroup, stopped at a random
// moment, over and over in one process. Every time:
// - every task has joined within 100 ms of the stop request (the print and file tasks may
//   take up to car::kDrainGrace = 50 ms to drain, by design);
// - every set() that was called has returned, and every answer fits;
// - (under the asan preset) LeakSanitizer finds nothing at exit.
// The same tolerance for a loaded machine as in random_stop_test.cpp applies.
//
//   CUSTODY_STRESS_STOPS=<n>   stops to run (default 1000)
//   CUSTODY_STRESS_STRICT=1    every stop must join within 100 ms

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/store.hpp>
#include <custody/task_group.hpp>
#include <custody/timer.hpp>

// The example's parts are compiled into this test, so that it needs nothing but the sources
// (the example itself is built only with CUSTODY_BUILD_EXAMPLES).
#include "../../examples/car/car_device.cpp"
#include "../../examples/car/format.cpp"
#include "../../examples/car/log_file.cpp"
#include "../../examples/car/tasks.cpp"
#include "stress_support.hpp"

using namespace std::chrono_literals;
using stress::rng;

namespace {

struct counts {
  std::atomic<std::uint64_t> lines{0}, sets_called{0}, sets_returned{0}, sets_bad{0};
};

// The log file: counts lines, fails now and then.
class null_writer final : public car::LineWriter {
 public:
  null_writer(counts& c, bool failing) : c_(c), failing_(failing) {}
  std::error_code write_line(std::string_view) override {
    ++c_.lines;
    if (failing_ && (++n_ % 7 == 0)) return std::make_error_code(std::errc::no_space_on_device);
    return {};
  }
  const std::string& name() const override { return name_; }

 private:
  counts& c_;
  bool failing_;
  std::uint64_t n_ = 0;
  std::string name_ = "null";
};

std::chrono::microseconds run_once(rng& r, std::chrono::microseconds stop_after, counts& c,
                                   car::RunStats& stats) {
  custody::TaskGroup tasks;
  const auto sink = [&c](std::string_view) { ++c.lines; };
  custody::Ticker poll(std::chrono::microseconds(r.between(100, 2000)));
  custody::Ticker increase(std::chrono::microseconds(r.between(100, 2000)));
  car::Faults faults;
  faults.disconnect_rate = r.one_in(2) ? 0.0 : 0.1;
  faults.set_failure_rate = r.one_in(2) ? 0.0 : 0.2;
  faults.latency = std::chrono::microseconds(r.below(300));
  auto device = std::make_unique<car::SimulatedCar>(faults, r.next(), tasks.stop_token());
  car::CarStores stores =
      car::fireup_car_communication(tasks, std::move(device), poll.receiver(), stats);
  car::fireup_increase_speed(tasks, stores.data, increase.receiver(),
                             car::IncreaseSettings{1.0, std::chrono::milliseconds(5)}, sink, stats);
  car::fireup_print_out_data(tasks, stores.data, stores.status, sink, stats);
  car::fireup_write_data_into_file(tasks, stores.data,
                                   std::make_unique<null_writer>(c, r.one_in(4)), sink, stats);
  // A setter of our own: every call must return, with an answer that fits.
  tasks.spawn("setter",
              [data = custody::Setter<car::CarData>(stores.data), &c](std::stop_token stop) {
                for (double speed = 1; !stop.stop_requested(); speed += 1) {
                  car::CarData wanted;
                  wanted.speed = speed;
                  ++c.sets_called;
                  const auto res = data.set(wanted, stop);
                  ++c.sets_returned;
                  switch (res.status()) {
                    case custody::set_status::accepted:
                    case custody::set_status::rejected:  // disconnected, or the car refused
                    case custody::set_status::stopped:
                    case custody::set_status::owner_gone:
                      break;
                    default:
                      ++c.sets_bad;
                      std::printf("[stress] unexpected set() answer: %s\n",
                                  std::string(custody::to_string(res.status())).c_str());
                  }
                  if (res.status() == custody::set_status::owner_gone) return;
                }
              });
  stores.start();

  std::this_thread::sleep_for(stop_after);
  const auto stop_at = std::chrono::steady_clock::now();
  tasks.request_stop();
  tasks.wait();
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               stop_at);
}

}  // namespace

TEST(RandomStop, CarPipeline) {
  const std::uint64_t stops = stress::env_u64("CUSTODY_STRESS_STOPS", 1000);
  std::printf(
      "[stress] RandomStop.CarPipeline: seed %llu, %llu stops (replay: "
      "CUSTODY_STRESS_SEED=%llu)\n",
      static_cast<unsigned long long>(stress::base_seed()), static_cast<unsigned long long>(stops),
      static_cast<unsigned long long>(stress::base_seed()));
  counts c;
  car::RunStats stats;
  stress::stop_joins joins(stops);
  for (std::uint64_t i = 0; i < stops; ++i) {
    rng r(stress::mix(stress::base_seed() ^ stress::mix(0xCA7 + i)));
    const auto after = std::chrono::microseconds(r.below(5000));
    const auto join = run_once(r, after, c, stats);
    ASSERT_TRUE(joins.add(i, join, after))
        << "stop " << i << ": the tasks took " << join.count() << " us to join";
    ASSERT_EQ(c.sets_called.load(), c.sets_returned.load()) << "a set() never returned";
    ASSERT_EQ(c.sets_bad.load(), 0u);
  }
  joins.report("RandomStop.CarPipeline");
  std::printf(
      "[stress] %llu set() calls of our own, all answered; the example's own: %llu accepted, "
      "%llu not; %llu readings published, %llu disconnects, %llu lines\n",
      static_cast<unsigned long long>(c.sets_called.load()),
      static_cast<unsigned long long>(stats.sets_accepted.load()),
      static_cast<unsigned long long>(stats.sets_rejected.load()),
      static_cast<unsigned long long>(stats.updates.load()),
      static_cast<unsigned long long>(stats.disconnects.load()),
      static_cast<unsigned long long>(c.lines.load()));
}
