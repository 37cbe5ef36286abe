#pragma once
// The values of the two stores the communication task owns.

#include <chrono>
#include <cstdint>
#include <string>

namespace car {

using WallTime = std::chrono::system_clock::time_point;

/// One reading of the car: what the print and file tasks show, and what set requests change.
/// A set request only carries the speed it asks for; the owner measures the rest.
struct CarData {
  double speed = 0;     ///< km/h
  double location = 0;  ///< metres travelled since the car was started
  WallTime time{};      ///< when it was read; the epoch means "nothing read yet"
  /// CarStatus::changes of the link status it was read under, so that a reader can show it
  /// with that status rather than a later one. Not sent over NATS (0 there).
  std::uint64_t link = 0;

  bool measured() const { return time != WallTime{}; }
  friend bool operator==(const CarData&, const CarData&) = default;
};

/// The state of the link to the car. Changed together with CarData when both change at once
/// (a reconnect brings a fresh reading), so a joint snapshot never pairs "connected" with a
/// reading from before the outage.
struct CarStatus {
  bool connected = false;
  std::uint64_t disconnects = 0;      ///< times an established link was lost
  std::uint32_t failed_attempts = 0;  ///< connect attempts that failed since the link was lost
  std::uint32_t retry_in_polls = 0;   ///< while disconnected: polls until the next attempt
  std::string last_error;             ///< why the link was lost, or why the last attempt failed
  WallTime changed{};                 ///< when this status was set
  std::uint64_t changes = 0;          ///< counts the changes: tells which of two is newer

  friend bool operator==(const CarStatus&, const CarStatus&) = default;
};

}  // namespace car
