#pragma once
// Outcome of every channel, select and store operation.

#include <cstdint>
#include <string_view>

/// Single-owner state custody on Go-style channels: channels, select, timers, task groups and
/// the store. Names in custody::detail are implementation, not API.
namespace custody {

/// What a send, receive or select ended with.
enum class status : std::uint8_t {
  ok,           ///< The value was handed over (sent, or received into the result).
  closed,       ///< The channel is closed; for a receive, also drained of buffered values.
  timeout,      ///< The deadline passed before the operation could complete.
  stopped,      ///< The stop token was triggered before the operation could complete.
  would_block,  ///< A non-blocking attempt (try_*, or select with a default case) found nothing
                ///< ready.
};

/// A short lowercase name for `s`, for messages and logs.
constexpr std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok:
      return "ok";
    case status::closed:
      return "closed";
    case status::timeout:
      return "timeout";
    case status::stopped:
      return "stopped";
    case status::would_block:
      return "would block";
  }
  return "unknown";
}

}  // namespace custody
