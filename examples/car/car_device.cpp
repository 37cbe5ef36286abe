#include "car_device.hpp"

#include <condition_variable>
#include <mutex>
#include <utility>

namespace car {

SimulatedCar::SimulatedCar(Faults faults, std::uint64_t seed, std::stop_token cancel, Clock clock)
    : faults_(faults),
      rng_(seed),
      cancel_(std::move(cancel)),
      clock_(std::move(clock)),
      last_move_(clock_()) {}

bool SimulatedCar::is_connected() { return call(); }

std::error_code SimulatedCar::connect() {
  if (link_up_) return {};
  (void)call();
  // The car is there when the program starts; after losing it, it takes a few tries.
  if (lost_before_ && !chance(0.5)) return std::make_error_code(std::errc::connection_refused);
  link_up_ = true;
  return {};
}

std::optional<double> SimulatedCar::get_speed() {
  if (!call()) return std::nullopt;
  return speed_;
}

std::optional<double> SimulatedCar::get_location() {
  if (!call()) return std::nullopt;
  return location_;
}

std::error_code SimulatedCar::set_speed(double kmh) {
  if (!call()) return std::make_error_code(std::errc::not_connected);
  if (kmh < 0) return std::make_error_code(std::errc::invalid_argument);
  if (chance(faults_.set_failure_rate)) return std::make_error_code(std::errc::io_error);
  speed_ = kmh;
  return {};
}

bool SimulatedCar::call() {
  if (faults_.latency > std::chrono::nanoseconds::zero()) {
    // Nothing ever notifies: this is a sleep that a stop request cuts short.
    std::mutex mutex;
    std::condition_variable_any never;
    std::unique_lock lock(mutex);
    never.wait_for(lock, cancel_, faults_.latency, [] { return false; });
  }
  advance();
  if (link_up_ && chance(faults_.disconnect_rate)) {
    link_up_ = false;
    lost_before_ = true;
  }
  return link_up_;
}

void SimulatedCar::advance() {
  const auto now = clock_();
  const std::chrono::duration<double> elapsed = now - last_move_;
  if (elapsed.count() > 0) location_ += speed_ / 3.6 * elapsed.count();
  last_move_ = now;
}

bool SimulatedCar::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

}  // namespace car
