#include "options.hpp"

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
using Setter = std::function<std::string(std::string_view value, Options& options)>;

Setter interval(nanoseconds Options::*field, nanoseconds shortest) {
  return [field, shortest](std::string_view value, Options& o) -> std::string {
    const auto d = parse_duration(value);
    if (!d) return quoted(value) + " is not a duration (use a unit: 50ms, 2s)";
    if (*d <= nanoseconds::zero()) return quoted(value) + " is not a positive duration";
    if (*d < shortest) return quoted(value) + " is too short (at least 1ms)";
    o.*field = *d;
    return {};
  };
}

Setter rate(double Options::*field) {
  return [field](std::string_view value, Options& o) -> std::string {
    const auto p = parse_number(value);
    if (!p || *p < 0 || *p > 1) return quoted(value) + " is not a rate between 0 and 1";
    o.*field = *p;
    return {};
  };
}

struct Flag {
  std::string_view name;
  Setter set;
};

const std::vector<Flag>& flags() {
  static const std::vector<Flag> all = {
      {"--poll-interval", interval(&Options::poll_interval, std::chrono::milliseconds(1))},
      {"--increase-every", interval(&Options::increase_every, std::chrono::milliseconds(1))},
      {"--speed-step",
       [](std::string_view value, Options& o) -> std::string {
         const auto n = parse_number(value);
         if (!n || *n <= 0) return quoted(value) + " is not a positive number";
         o.speed_step = *n;
         return {};
       }},
      {"--log-file",
       [](std::string_view value, Options& o) -> std::string {
         if (value.empty()) return "the path is empty";
         o.log_file = std::string(value);
         return {};
       }},
      {"--duration",
       [](std::string_view value, Options& o) -> std::string {
         const auto d = parse_duration(value);
         if (!d) return quoted(value) + " is not a duration (use a unit: 500ms, 10s)";
         if (*d <= nanoseconds::zero()) return quoted(value) + " is not a positive duration";
         o.duration = *d;
         return {};
       }},
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
  };
  return all;
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

ParsedOptions parse_options(std::span<const std::string_view> args) {
  ParsedOptions out;
  Options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      return out;
    }
    const std::size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const Flag* flag = nullptr;
    for (const Flag& f : flags()) {
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
  }
  out.options = options;
  return out;
}

std::string usage() {
  return R"(usage: custody-car [flags]

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
  -h, --help            show this message

Durations take a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h).
)";
}

}  // namespace car
