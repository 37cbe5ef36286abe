#pragma once
// The car manufacturer's API (the seed's carDevice: IsConnected, GetSpeed, SetSpeed,
// GetLocation), and a simulated car that implements it with injectable faults.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <stop_token>
#include <system_error>

namespace car {

/// A car as its manufacturer's library exposes it. Calls may be slow and may fail; nothing
/// here is thread-safe, which is why exactly one task (the communication task) talks to it.
class CarDevice {
 public:
  virtual ~CarDevice() = default;

  /// Whether the link to the car is up.
  virtual bool is_connected() = 0;
  /// Tries to (re)establish the link. Empty on success.
  virtual std::error_code connect() = 0;
  /// km/h; nullopt when the link is down (or drops during the call).
  virtual std::optional<double> get_speed() = 0;
  /// Metres travelled; nullopt when the link is down (or drops during the call).
  virtual std::optional<double> get_location() = 0;
  /// Asks the car for a new speed. std::errc::not_connected when the link is down; other
  /// codes when the car refuses.
  virtual std::error_code set_speed(double kmh) = 0;
};

/// Faults a SimulatedCar injects.
struct Faults {
  double disconnect_rate = 0;           ///< chance that a device call finds the link lost
  double set_failure_rate = 0;          ///< chance that set_speed fails with the link up
  std::chrono::nanoseconds latency{0};  ///< how long every call takes
};

/// A car that starts parked, keeps the speed it was last set to, and whose location is the
/// distance travelled (speed integrated over time). Every random fault comes from one seeded
/// generator, so the same seed and the same sequence of calls give the same faults.
///
/// While the link is down, every call but connect() fails. The first connect() succeeds; once
/// the link has been lost, each connect() succeeds with a chance of one half. Simulated latency
/// ends early once `cancel` is triggered, so that a slow device never delays shutdown (a real
/// library would need its own timeout or cancellation).
class SimulatedCar final : public CarDevice {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  SimulatedCar(Faults faults, std::uint64_t seed, std::stop_token cancel = {},
               Clock clock = std::chrono::steady_clock::now);

  bool is_connected() override;
  std::error_code connect() override;
  std::optional<double> get_speed() override;
  std::optional<double> get_location() override;
  std::error_code set_speed(double kmh) override;

 private:
  // One device call: waits out the latency, moves the car on, and maybe drops the link.
  // Returns whether the link is up for the rest of the call.
  bool call();
  void advance();
  bool chance(double p);

  Faults faults_;
  std::mt19937_64 rng_;
  std::stop_token cancel_;
  Clock clock_;
  std::chrono::steady_clock::time_point last_move_;
  bool link_up_ = false;
  bool lost_before_ = false;
  double speed_ = 0;
  double location_ = 0;
};

}  // namespace car
