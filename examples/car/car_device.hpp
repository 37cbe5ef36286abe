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
  /// Asks the car for a new speed. Empty when the car took it. What else it returns says
  /// whether the car may have taken it:
  /// - std::errc::not_connected: the link was down; the car never heard of it;
  /// - std::errc::connection_aborted: the link dropped during the call; the car may or may not
  ///   have taken it (read it back to know);
  /// - std::errc::operation_canceled: the call was cut short before it reached the car;
  /// - anything else: the car refused it and kept its speed.
  virtual std::error_code set_speed(double kmh) = 0;
};

/// The simulated car's top speed: it refuses more (std::errc::result_out_of_range).
inline constexpr double kTopSpeedKmh = 1000;

/// Faults a SimulatedCar injects.
struct Faults {
  double disconnect_rate = 0;           ///< chance that a device call finds the link lost
  double set_failure_rate = 0;          ///< chance that set_speed fails with the link up
  std::chrono::nanoseconds latency{0};  ///< how long every call takes
};

/// A car that starts parked, keeps the speed it was last set to (0 to kTopSpeedKmh km/h), and
/// whose location is the distance travelled (speed integrated over time).
///
/// Faults are drawn per device call, in call order, from the seed: the n-th call of each kind
/// (connect, is_connected, get_speed, get_location, set_speed) meets the same faults in every
/// run with that seed, whatever the other kinds of call did meanwhile and however the threads
/// were scheduled. The two reads that follow a successful connect or set_speed (the owner
/// reading the car back) draw from that call's faults, so the whole outcome of a connect
/// attempt or a set request depends on its number alone.
///
/// While the link is down, every call but connect() fails. The first connect() succeeds; once
/// the link has been lost, each connect() succeeds with a chance of one half. A link drop during
/// set_speed leaves the car with the new speed half of the time (std::errc::connection_aborted
/// either way). Simulated latency ends early once `cancel` is triggered, so that a slow device
/// never delays shutdown; the call is then cut short and does nothing (a real library would need
/// its own timeout or cancellation).
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
  enum class Kind : std::uint64_t { connect, is_connected, get_speed, get_location, set_speed };
  /// Where one call draws its faults from: its kind and number, and the draws made so far.
  struct Draws {
    Kind kind;
    std::uint64_t call;
    std::uint64_t next = 0;
  };

  /// What became of one call's wait and link.
  enum class Outcome { cut_short, link_down, link_dropped, link_up };

  // One device call: picks its draws, waits out the latency, moves the car on, and maybe drops
  // the link.
  Outcome call(Kind kind, Draws& draws);
  void advance();
  bool chance(Draws& draws, double p) const;
  // get_speed or get_location: the value, or nullopt if the call failed or was cut short.
  std::optional<double> read(Kind kind);
  // The next two reads read back what the call that made `draws` did.
  void expect_read_back(const Draws& draws);

  Faults faults_;
  std::uint64_t seed_;
  std::stop_token cancel_;
  Clock clock_;
  std::chrono::steady_clock::time_point last_move_;
  std::uint64_t calls_[5] = {};  // calls made so far, per kind
  // The call whose read-back is under way, and how many of its reads are left.
  Draws read_back_of_{Kind::connect, 0};
  int read_backs_left_ = 0;
  bool link_up_ = false;
  bool lost_before_ = false;
  double speed_ = 0;
  double location_ = 0;
};

}  // namespace car
