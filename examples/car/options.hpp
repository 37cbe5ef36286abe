#pragma once
// The command line of custody-car.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace car {

struct Options {
  std::chrono::nanoseconds poll_interval = std::chrono::seconds(2);
  std::chrono::nanoseconds increase_every = std::chrono::seconds(5);
  double speed_step = 1;
  std::string log_file = "log.txt";
  std::optional<std::chrono::nanoseconds> duration;  ///< none: until Ctrl-C or SIGTERM
  double disconnect_rate = 0;
  double set_failure_rate = 0;
  std::chrono::nanoseconds device_latency{0};
  std::optional<std::uint64_t> seed;  ///< none: pick one at random
};

/// What parsing the command line came to: options to run with, a request for help, or an
/// error that names the flag at fault.
struct ParsedOptions {
  std::optional<Options> options;
  bool help = false;
  std::string error;
};

/// Parses the arguments after the program name. Flags take their value as the next argument
/// or after '=' (--poll-interval 50ms, --poll-interval=50ms).
ParsedOptions parse_options(std::span<const std::string_view> args);

/// The usage message, ending with a newline.
std::string usage();

/// A duration with a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h), or 0. Nullopt if malformed.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace car
