#pragma once
// The command lines of custody-car and custody-car-monitor.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace car {

/// The largest --speed-step, in km/h.
inline constexpr double kMaxSpeedStepKmh = 1000;
/// The longest duration any flag takes: longer than anyone runs a demo, and far from
/// overflowing nanoseconds.
inline constexpr std::chrono::nanoseconds kLongestDuration = std::chrono::hours(366 * 24);

struct Options {
  std::chrono::nanoseconds poll_interval = std::chrono::seconds(2);
  std::chrono::nanoseconds increase_every = std::chrono::seconds(5);
  double speed_step = 1;
  std::string log_file = "log.txt";
  std::optional<std::chrono::nanoseconds> duration;  ///< none: until Ctrl-C or SIGTERM
  /// Stop once this many readings were stored (--readings); none: no such bound.
  std::optional<std::uint64_t> readings;
  double disconnect_rate = 0;
  double set_failure_rate = 0;
  std::chrono::nanoseconds device_latency{0};
  std::optional<std::uint64_t> seed;  ///< none: pick one at random
  /// NATS servers to publish the stores to (--nats, comma-separated); empty: no NATS.
  std::vector<std::string> nats_servers;
  std::string nats_bucket = "car";  ///< the key-value bucket (--nats-bucket)
  bool quiet = false;               ///< --quiet: no per-reading lines on standard output
};

/// What parsing the command line came to: options to run with, a request for help or for the
/// version, or an error that names the flag at fault.
struct ParsedOptions {
  std::optional<Options> options;
  bool help = false;
  bool version = false;
  std::string error;
};

/// Parses the arguments after the program name. Flags take their value as the next argument
/// or after '=' (--poll-interval 50ms, --poll-interval=50ms); a value that is itself one of the
/// flags is refused (a forgotten value). `--` ends the flags; the programs take no other
/// arguments. -h/--help and --version win over anything else before `--`.
ParsedOptions parse_options(std::span<const std::string_view> args);

/// The usage message, ending with a newline.
std::string usage();

/// The options of custody-car-monitor: the print, file and increase tasks of custody-car, run
/// in another process against the stores a `custody-car --nats` publishes.
struct MonitorOptions {
  std::vector<std::string> nats_servers;  ///< required (--nats)
  std::string nats_bucket = "car";
  std::chrono::nanoseconds increase_every = std::chrono::seconds(5);
  double speed_step = 1;
  /// Not custody-car's log.txt: both running in one directory would log every reading twice.
  std::string log_file = "monitor-log.txt";
  std::optional<std::chrono::nanoseconds> duration;  ///< none: until Ctrl-C or SIGTERM
};

struct ParsedMonitorOptions {
  std::optional<MonitorOptions> options;
  bool help = false;
  bool version = false;
  std::string error;
};

/// As parse_options, for custody-car-monitor (--log is short for --log-file, --step for
/// --speed-step).
ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args);

/// custody-car-monitor's usage message, ending with a newline.
std::string monitor_usage();

/// Whether this build has NATS support (custody::nats was found): without it, --nats is
/// refused with a message that says so.
bool nats_available();

/// A duration with a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h), or 0. Nullopt if malformed
/// or longer than kLongestDuration either way.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Whether `text` is a well-formed duration that is longer than kLongestDuration either way.
bool duration_too_long(std::string_view text);

}  // namespace car
