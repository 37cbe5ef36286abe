#include "car_device.hpp"

#include <condition_variable>
#include <mutex>
#include <utility>

namespace car {

namespace {

// SplitMix64's finaliser: a well-mixed 64-bit value for every input.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

SimulatedCar::SimulatedCar(Faults faults, std::uint64_t seed, std::stop_token cancel, Clock clock)
    : faults_(faults),
      seed_(seed),
      cancel_(std::move(cancel)),
      clock_(std::move(clock)),
      last_move_(clock_()) {}

bool SimulatedCar::is_connected() {
  Draws draws{Kind::is_connected, 0};
  return call(Kind::is_connected, draws) == Outcome::link_up;
}

std::error_code SimulatedCar::connect() {
  Draws draws{Kind::connect, 0};
  const Outcome outcome = call(Kind::connect, draws);
  if (outcome == Outcome::cut_short) return std::make_error_code(std::errc::operation_canceled);
  if (link_up_) return {};
  // The car is there when the program starts; after losing it, it takes a few tries.
  if (lost_before_ && !chance(draws, 0.5)) {
    return std::make_error_code(std::errc::connection_refused);
  }
  link_up_ = true;
  expect_read_back(draws);
  return {};
}

std::optional<double> SimulatedCar::get_speed() { return read(Kind::get_speed); }

std::optional<double> SimulatedCar::get_location() { return read(Kind::get_location); }

std::optional<double> SimulatedCar::read(Kind kind) {
  Draws draws{kind, 0};
  if (call(kind, draws) != Outcome::link_up) return std::nullopt;
  // After the call: the car has moved on during it.
  return kind == Kind::get_speed ? speed_ : location_;
}

std::error_code SimulatedCar::set_speed(double kmh) {
  Draws draws{Kind::set_speed, 0};
  const Outcome outcome = call(Kind::set_speed, draws);
  switch (outcome) {
    case Outcome::cut_short:
      return std::make_error_code(std::errc::operation_canceled);
    case Outcome::link_down:
      return std::make_error_code(std::errc::not_connected);
    case Outcome::link_dropped:
      // The request and the drop raced: half of the time the car took it first.
      if (kmh >= 0 && kmh <= kTopSpeedKmh && chance(draws, 0.5)) speed_ = kmh;
      return std::make_error_code(std::errc::connection_aborted);
    case Outcome::link_up:
      break;
  }
  if (kmh < 0) return std::make_error_code(std::errc::invalid_argument);
  if (kmh > kTopSpeedKmh) return std::make_error_code(std::errc::result_out_of_range);
  if (chance(draws, faults_.set_failure_rate)) return std::make_error_code(std::errc::io_error);
  speed_ = kmh;
  expect_read_back(draws);
  return {};
}

void SimulatedCar::expect_read_back(const Draws& draws) {
  read_back_of_ = draws;
  read_backs_left_ = 2;
}

SimulatedCar::Outcome SimulatedCar::call(Kind kind, Draws& draws) {
  const bool reads_back =
      read_backs_left_ > 0 && (kind == Kind::get_speed || kind == Kind::get_location);
  if (reads_back) {
    // Draws of their own within the call they read back, clear of the ones it made.
    --read_backs_left_;
    draws = Draws{read_back_of_.kind, read_back_of_.call, kind == Kind::get_speed ? 16u : 32u};
  } else {
    read_backs_left_ = 0;
    draws = Draws{kind, calls_[static_cast<std::size_t>(kind)]++};
  }
  if (faults_.latency > std::chrono::nanoseconds::zero()) {
    // Nothing ever notifies: this is a sleep that a stop request cuts short.
    std::mutex mutex;
    std::condition_variable_any never;
    std::unique_lock lock(mutex);
    never.wait_for(lock, cancel_, faults_.latency, [] { return false; });
    if (cancel_.stop_requested()) return Outcome::cut_short;
  }
  advance();
  if (!link_up_) return Outcome::link_down;
  if (chance(draws, faults_.disconnect_rate)) {
    link_up_ = false;
    lost_before_ = true;
    return Outcome::link_dropped;
  }
  return Outcome::link_up;
}

void SimulatedCar::advance() {
  const auto now = clock_();
  const std::chrono::duration<double> elapsed = now - last_move_;
  if (elapsed.count() > 0) location_ += speed_ / 3.6 * elapsed.count();
  last_move_ = now;
}

bool SimulatedCar::chance(Draws& draws, double p) const {
  // Every draw is a pure function of the seed, the call and its place in the call: nothing
  // another call did can shift it.
  const std::uint64_t bits = mix(seed_ ^ mix((static_cast<std::uint64_t>(draws.kind) << 56) ^
                                             (draws.call << 6) ^ draws.next++));
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(bits >> 11) * 0x1.0p-53 < p;
}

}  // namespace car
