#pragma once
// The command lines of custody-car and custody-car-monitor.

#include <chrono>
#include <cstdint>
#include <functional>
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

/// The environment variables a secret may come from, when no file is named.
inline constexpr const char* kNatsTokenVariable = "CUSTODY_NATS_TOKEN";
inline constexpr const char* kNatsPasswordVariable = "CUSTODY_NATS_PASSWORD";
/// The most bucket replicas NATS keeps.
inline constexpr int kMaxNatsReplicas = 5;

/// How both programs reach the NATS servers beyond their URLs: TLS files, one way to sign in,
/// and the bucket's replicas. Secrets are never held here, only where they are read from (a
/// file, or an environment variable), so that none appears on a command line.
struct NatsAccess {
  std::string ca_file;        ///< --nats-ca: the CA that vouches for the servers
  std::string cert_file;      ///< --nats-cert: this program's certificate (with key_file)
  std::string key_file;       ///< --nats-key: its private key
  std::string creds_file;     ///< --nats-creds: a credentials file (user JWT and NKey seed)
  std::string token_file;     ///< --nats-token-file
  std::string token_env;      ///< kNatsTokenVariable when the token comes from it
  std::string user;           ///< --nats-user
  std::string password_file;  ///< --nats-password-file
  std::string password_env;   ///< kNatsPasswordVariable when the password comes from it
  /// --nats-replicas: copies of the bucket when it is made; none: 1, and an existing bucket
  /// is taken as it is.
  std::optional<int> replicas;
  /// TLS is required: a CA, certificate or key was given.
  bool tls() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

/// Reads an environment variable: its value, or nullopt when it is not set. Tests give their
/// own; the programs read the process's environment.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;

/// The process's environment.
std::optional<std::string> process_environment(const std::string& name);

/// How custody-car runs its tasks (--runtime): a thread each, or coroutines on one thread.
enum class Runtime { threads, coroutines };

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
  std::string nats_bucket = "car";     ///< the key-value bucket (--nats-bucket)
  NatsAccess nats_access;              ///< TLS, credentials and replicas (--nats-*)
  bool quiet = false;                  ///< --quiet: no per-reading lines on standard output
  Runtime runtime = Runtime::threads;  ///< --runtime
  /// --dump-dot: where each SIGUSR1 dump also writes the wait-for graph; empty: nowhere.
  std::string dump_dot;
  /// Where to serve Prometheus metrics (--metrics host:port); empty: not served.
  std::string metrics_address;
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
/// arguments. -h/--help and --version win over anything else before `--`. The environment
/// gives a NATS token or password (kNatsTokenVariable, kNatsPasswordVariable); files the
/// --nats-* flags name must be readable now (the connection reads them again when it is made).
ParsedOptions parse_options(std::span<const std::string_view> args, const Environment& env);
/// As above, with the process's environment.
ParsedOptions parse_options(std::span<const std::string_view> args);

/// The usage message, ending with a newline.
std::string usage();

/// The options of custody-car-monitor: the print, file and increase tasks of custody-car, run
/// in another process against the stores a `custody-car --nats` publishes.
struct MonitorOptions {
  std::vector<std::string> nats_servers;  ///< required (--nats)
  std::string nats_bucket = "car";
  NatsAccess nats_access;  ///< TLS, credentials and replicas, as custody-car's
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
ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args,
                                           const Environment& env);
ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args);

/// custody-car-monitor's usage message, ending with a newline.
std::string monitor_usage();

/// Whether this build has NATS support (custody::nats was found): without it, --nats is
/// refused with a message that says so.
bool nats_available();

/// Whether this build has Prometheus metrics (custody::metrics was found): without it,
/// --metrics is refused with a message that says so.
bool metrics_available();

/// Whether this build has the coroutine runtime (custody::asio was found): without it,
/// --runtime coroutines is refused with a message that says so.
bool coroutines_available();

/// A duration with a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h), or 0. Nullopt if malformed
/// or longer than kLongestDuration either way.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Whether `text` is a well-formed duration that is longer than kLongestDuration either way.
bool duration_too_long(std::string_view text);

}  // namespace car
