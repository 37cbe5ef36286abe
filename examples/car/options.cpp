#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace car {

namespace {

using std::chrono::nanoseconds;

// Longer than anyone runs a demo, and far from overflowing nanoseconds.
constexpr double kLongestSeconds = 366.0 * 24 * 3600;

std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// One flag's value parser: fills in `options` or returns what is wrong with `value`.
template <class O>
using Setter = std::function<std::string(std::string_view value, O& options)>;

template <class O>
struct Flag {
  std::string_view name;
  Setter<O> set;
};

template <class O>
Setter<O> interval(nanoseconds O::*field, nanoseconds shortest) {
  return [field, shortest](std::string_view value, O& o) -> std::string {
    const auto d = parse_duration(value);
    if (!d) return quoted(value) + " is not a duration (use a unit: 50ms, 2s)";
    if (*d <= nanoseconds::zero()) return quoted(value) + " is not a positive duration";
    if (*d < shortest) return quoted(value) + " is too short (at least 1ms)";
    o.*field = *d;
    return {};
  };
}

Setter<Options> rate(double Options::*field) {
  return [field](std::string_view value, Options& o) -> std::string {
    const auto p = parse_number(value);
    if (!p || *p < 0 || *p > 1) return quoted(value) + " is not a rate between 0 and 1";
    o.*field = *p;
    return {};
  };
}

template <class O>
Setter<O> positive_number(double O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    const auto n = parse_number(value);
    if (!n || *n <= 0) return quoted(value) + " is not a positive number";
    o.*field = *n;
    return {};
  };
}

template <class O>
Setter<O> path(std::string O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    if (value.empty()) return "the path is empty";
    o.*field = std::string(value);
    return {};
  };
}

template <class O>
Setter<O> duration(std::optional<nanoseconds> O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    const auto d = parse_duration(value);
    if (!d) return quoted(value) + " is not a duration (use a unit: 500ms, 10s)";
    if (*d <= nanoseconds::zero()) return quoted(value) + " is not a positive duration";
    o.*field = *d;
    return {};
  };
}

constexpr const char* kNatsMissing =
    "not available in this build (it needs the NATS C client and nlohmann::json: "
    "apt-get install libnats-dev nlohmann-json3-dev, then build again)";

// What is wrong with one server URL, or nothing: nats://[user[:password]@]host[:port], or
// tls://. The client would take more, and say less about what it did not like.
std::string nats_url_problem(std::string_view url) {
  const std::string hint = " (use nats://host:port or tls://host:port)";
  std::string_view rest;
  for (const std::string_view scheme : {"nats://", "tls://"}) {
    if (url.starts_with(scheme)) rest = url.substr(scheme.size());
  }
  if (rest.empty()) return quoted(url) + " is not a NATS server URL" + hint;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string_view host = rest, port;
  if (rest.starts_with('[')) {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return quoted(url) + " has an unclosed '['" + hint;
    host = rest.substr(0, close + 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return quoted(url) + " is malformed" + hint;
    if (!after.empty()) port = after.substr(1);
  } else if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return quoted(url) + " has an empty port" + hint;
  }
  if (host.empty()) return quoted(url) + " has no host" + hint;
  for (const char c : host) {
    if (c == '/' || c == ' ' || c == '\t' || c == '?' || c == '#') {
      return quoted(url) + " is not a NATS server URL" + hint;
    }
  }
  if (!port.empty()) {
    unsigned n = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || ptr != port.data() + port.size() || n == 0 || n > 65535) {
      return quoted(url) + " has a bad port " + quoted(port) + " (1 to 65535)";
    }
  }
  return {};
}

template <class O>
Setter<O> nats_servers(std::vector<std::string> O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    if (!nats_available()) return kNatsMissing;
    if (value.empty()) return "the URL is empty (use nats://host:port)";
    std::vector<std::string> servers;
    for (std::size_t begin = 0; begin <= value.size();) {
      const std::size_t end = std::min(value.find(',', begin), value.size());
      const std::string_view url = value.substr(begin, end - begin);
      if (std::string problem = nats_url_problem(url); !problem.empty()) return problem;
      servers.emplace_back(url);
      begin = end + 1;
    }
    o.*field = std::move(servers);
    return {};
  };
}

template <class O>
Setter<O> bucket(std::string O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    if (!nats_available()) return kNatsMissing;
    if (value.empty()) return "the bucket name is empty";
    for (const char c : value) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      if (!ok) return quoted(value) + " is not a bucket name (letters, digits, '-' and '_' only)";
    }
    o.*field = std::string(value);
    return {};
  };
}

const std::vector<Flag<Options>>& flags() {
  static const std::vector<Flag<Options>> all = {
      {"--poll-interval", interval(&Options::poll_interval, std::chrono::milliseconds(1))},
      {"--increase-every", interval(&Options::increase_every, std::chrono::milliseconds(1))},
      {"--speed-step", positive_number(&Options::speed_step)},
      {"--log-file", path(&Options::log_file)},
      {"--duration", duration(&Options::duration)},
      {"--disconnect-rate", rate(&Options::disconnect_rate)},
      {"--set-failure-rate", rate(&Options::set_failure_rate)},
      {"--device-latency",
       [](std::string_view value, Options& o) -> std::string {
         const auto d = parse_duration(value);
         if (!d) return quoted(value) + " is not a duration (use a unit: 0s, 20ms)";
         if (*d < nanoseconds::zero()) return quoted(value) + " is negative";
         o.device_latency = *d;
         return {};
       }},
      {"--seed",
       [](std::string_view value, Options& o) -> std::string {
         std::uint64_t seed = 0;
         const char* end = value.data() + value.size();
         const auto [ptr, ec] = std::from_chars(value.data(), end, seed);
         if (ec != std::errc() || ptr != end) {
           return quoted(value) + " is not a whole number from 0 to 18446744073709551615";
         }
         o.seed = seed;
         return {};
       }},
      {"--nats", nats_servers(&Options::nats_servers)},
      {"--nats-bucket", bucket(&Options::nats_bucket)},
  };
  return all;
}

const std::vector<Flag<MonitorOptions>>& monitor_flags() {
  using M = MonitorOptions;
  static const std::vector<Flag<M>> all = {
      {"--nats", nats_servers(&M::nats_servers)},
      {"--nats-bucket", bucket(&M::nats_bucket)},
      {"--increase-every", interval(&M::increase_every, std::chrono::milliseconds(1))},
      {"--speed-step", positive_number(&M::speed_step)},
      {"--step", positive_number(&M::speed_step)},
      {"--log-file", path(&M::log_file)},
      {"--log", path(&M::log_file)},
      {"--duration", duration(&M::duration)},
  };
  return all;
}

template <class O>
struct Parsed {
  std::optional<O> options;
  bool help = false;
  std::string error;
  std::vector<std::string_view> seen;  ///< the flags given, in order
};

template <class O>
Parsed<O> parse_flags(std::span<const std::string_view> args, const std::vector<Flag<O>>& table) {
  Parsed<O> out;
  O options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      return out;
    }
    const std::size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const Flag<O>* flag = nullptr;
    for (const Flag<O>& f : table) {
      if (f.name == name) flag = &f;
    }
    if (!flag) {
      out.error = arg.starts_with("-") ? "unknown flag " + quoted(name)
                                       : "unexpected argument " + quoted(arg) + " (flags only)";
      return out;
    }
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      out.error = std::string(name) + " needs a value";
      return out;
    }
    if (std::string problem = flag->set(value, options); !problem.empty()) {
      out.error = std::string(name) + ": " + problem;
      return out;
    }
    out.seen.push_back(flag->name);
  }
  out.options = std::move(options);
  return out;
}

}  // namespace

std::optional<nanoseconds> parse_duration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double seconds;
  };
  // "ms" before "m" and "s": the longest suffix that matches wins.
  static constexpr Unit units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                   {"s", 1},     {"m", 60},    {"h", 3600}};
  if (text == "0") return nanoseconds::zero();  // the one duration that needs no unit
  const Unit* unit = nullptr;
  for (const Unit& u : units) {
    if (text.ends_with(u.suffix) && (!unit || u.suffix.size() > unit->suffix.size())) unit = &u;
  }
  if (!unit) return std::nullopt;
  const auto number = parse_number(text.substr(0, text.size() - unit->suffix.size()));
  if (!number) return std::nullopt;
  const double seconds = *number * unit->seconds;
  if (std::fabs(seconds) > kLongestSeconds) return std::nullopt;
  return nanoseconds(static_cast<std::int64_t>(std::llround(seconds * 1e9)));
}

bool nats_available() {
#ifdef CUSTODY_CAR_WITH_NATS
  return true;
#else
  return false;
#endif
}

ParsedOptions parse_options(std::span<const std::string_view> args) {
  Parsed<Options> parsed = parse_flags(args, flags());
  ParsedOptions out{std::move(parsed.options), parsed.help, std::move(parsed.error)};
  const auto& seen = parsed.seen;
  if (out.options && out.options->nats_servers.empty() &&
      std::find(seen.begin(), seen.end(), "--nats-bucket") != seen.end()) {
    out.options.reset();
    out.error = "--nats-bucket: only used with --nats (the NATS server to publish to)";
  }
  return out;
}

ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args) {
  Parsed<MonitorOptions> parsed = parse_flags(args, monitor_flags());
  ParsedMonitorOptions out{std::move(parsed.options), parsed.help, std::move(parsed.error)};
  if (out.options && out.options->nats_servers.empty()) {
    out.options.reset();
    out.error =
        "--nats is required: the NATS server custody-car publishes to (e.g. --nats "
        "nats://127.0.0.1:4222)";
  }
  return out;
}

std::string usage() {
  std::string text = R"(usage: custody-car [flags]

Drives a simulated car with four tasks until Ctrl-C, SIGTERM or --duration: one talks to the
car, one asks for more speed, one prints every update, one appends it to a log file.

flags:
  --poll-interval D     how often to read speed and location (default 2s)
  --increase-every D    how often to ask for more speed (default 5s)
  --speed-step N        how much more speed to ask for, in km/h (default 1)
  --log-file PATH       file to append '<date>: <speed>, <location>' lines to (default log.txt)
  --duration D          stop after D (default: run until Ctrl-C or SIGTERM)
  --disconnect-rate P   chance (0 to 1) that a device call loses the link (default 0)
  --set-failure-rate P  chance (0 to 1) that the car refuses a new speed (default 0)
  --device-latency D    how long every device call takes (default 0s)
  --seed N              seed for the simulated faults (default: random; printed at start)
  --nats URL            also publish the car's data and status to this NATS server (with
                        JetStream: nats-server -js) and take set requests from it, so that
                        custody-car-monitor and other programs can use them; URL is
                        nats://host:port or tls://host:port, several separated by commas
  --nats-bucket NAME    the key-value bucket to publish to (default car); keys 'data' and
                        'status', set requests on custody.<NAME>.data.set
  -h, --help            show this message

Durations take a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h).
)";
  if (!nats_available()) text += "This build has no NATS support: --nats is not available.\n";
  return text;
}

std::string monitor_usage() {
  return R"(usage: custody-car-monitor --nats URL [flags]

Follows a car that `custody-car --nats URL` drives, from another process: prints every reading
it publishes, appends it to a log file and asks it for more speed, until Ctrl-C, SIGTERM or
--duration. Waits for the car if it is not there yet.

flags:
  --nats URL            the NATS server custody-car publishes to (required): nats://host:port
                        or tls://host:port, several separated by commas
  --nats-bucket NAME    the key-value bucket custody-car publishes to (default car)
  --increase-every D    how often to ask for more speed (default 5s)
  --speed-step N        how much more speed to ask for, in km/h (default 1); also --step
  --log-file PATH       file to append '<date>: <speed>, <location>' lines to (default
                        monitor-log.txt); also --log
  --duration D          stop after D (default: run until Ctrl-C or SIGTERM)
  -h, --help            show this message

Durations take a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h).
)";
}

}  // namespace car
