#include "options.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include <custody/metrics/listen_address.hpp>

#include "format.hpp"

namespace car {

namespace {

using std::chrono::nanoseconds;

constexpr double kLongestSeconds = std::chrono::duration<double>(kLongestDuration).count();

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

// A flag with a value (set), or a switch without one (turn_on).
template <class O>
struct Flag {
  std::string_view name;
  Setter<O> set;
  bool O::*turn_on = nullptr;
};

// What is wrong with a duration, or nothing: malformed, or beyond the longest we take.
std::string duration_problem(std::string_view value, const char* example) {
  if (duration_too_long(value)) {
    return quoted(value) + " is too long (at most " + format_duration(kLongestDuration) + ")";
  }
  return quoted(value) + " is not a duration (use a unit: " + example + ")";
}

template <class O>
Setter<O> interval(nanoseconds O::*field, nanoseconds shortest) {
  return [field, shortest](std::string_view value, O& o) -> std::string {
    const auto d = parse_duration(value);
    if (!d) return duration_problem(value, "50ms, 2s");
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
Setter<O> speed_step(double O::*field) {
  return [field](std::string_view value, O& o) -> std::string {
    const auto n = parse_number(value);
    if (!n || *n <= 0 || *n > kMaxSpeedStepKmh) {
      return quoted(value) + " is not a speed step in km/h (more than 0, at most " +
             format_number(kMaxSpeedStepKmh) + ")";
    }
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
    if (!d) return duration_problem(value, "500ms, 10s");
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
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    // A secret on the command line is there for every user of the machine to read (ps).
    const std::string shown =
        std::string(url.substr(0, url.size() - rest.size())) + "***" + std::string(rest.substr(at));
    return quoted(std::string_view(shown)) +
           " carries credentials, which anyone on this machine can read in the process list: "
           "use --nats-user with --nats-password-file, --nats-token-file or --nats-creds";
  }
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

// What keeps `path` from being read now, or nothing.
std::string unreadable(std::string_view path) {
  if (path.empty()) return "the path is empty";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return quoted(path) + " is a directory";
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return "cannot read " + quoted(path) + ": " + std::generic_category().message(errno);
  return {};
}

// A file one of the --nats-* flags names, readable now. A secret's file must also hold one:
// an empty secret is always a mistake. Its content is read to check, and not kept.
template <class O>
Setter<O> access_file(NatsAccess O::*access, std::string NatsAccess::*field,
                      const char* secret = nullptr) {
  return [=](std::string_view value, O& o) -> std::string {
    if (!nats_available()) return kNatsMissing;
    if (std::string problem = unreadable(value); !problem.empty()) return problem;
    if (secret) {
      std::ifstream in{std::string(value), std::ios::binary};
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.ends_with('\n')) text.pop_back();
      if (text.ends_with('\r')) text.pop_back();
      if (text.empty()) return quoted(value) + " is empty (it should hold the " + secret + ")";
    }
    (o.*access).*field = std::string(value);
    return {};
  };
}

// The --nats-* flags beyond --nats and --nats-bucket, the same for both programs.
template <class O>
std::vector<Flag<O>> nats_access_flags(NatsAccess O::*access) {
  using A = NatsAccess;
  return {
      {"--nats-ca", access_file(access, &A::ca_file)},
      {"--nats-cert", access_file(access, &A::cert_file)},
      {"--nats-key", access_file(access, &A::key_file)},
      {"--nats-creds", access_file(access, &A::creds_file)},
      {"--nats-token-file", access_file(access, &A::token_file, "token")},
      {"--nats-user",
       [access](std::string_view value, O& o) -> std::string {
         if (!nats_available()) return kNatsMissing;
         if (value.empty()) return "the user name is empty";
         (o.*access).user = std::string(value);
         return {};
       }},
      {"--nats-password-file", access_file(access, &A::password_file, "password")},
      {"--nats-replicas",
       [access](std::string_view value, O& o) -> std::string {
         if (!nats_available()) return kNatsMissing;
         int n = 0;
         const char* end = value.data() + value.size();
         const auto [ptr, ec] = std::from_chars(value.data(), end, n);
         if (ec != std::errc() || ptr != end || n < 1 || n > kMaxNatsReplicas) {
           return quoted(value) + " is not a number of replicas (1 to " +
                  std::to_string(kMaxNatsReplicas) + ")";
         }
         (o.*access).replicas = n;
         return {};
       }},
  };
}

template <class O>
std::vector<Flag<O>> with_nats_access(std::vector<Flag<O>> table, NatsAccess O::*access) {
  std::vector<Flag<O>> more = nats_access_flags(access);
  table.insert(table.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  return table;
}

bool given(const std::vector<std::string_view>& seen, std::string_view flag) {
  return std::find(seen.begin(), seen.end(), flag) != seen.end();
}

// What is wrong with the --nats-* flags together and the environment, or nothing; fills in
// where the secrets come from. Only called with --nats given.
std::string nats_access_problem(NatsAccess& a, const Environment& env) {
  if (a.cert_file.empty() != a.key_file.empty()) {
    return a.key_file.empty() ? "--nats-cert: needs --nats-key (the certificate's private key)"
                              : "--nats-key: needs --nats-cert (the certificate it belongs to)";
  }
  if (!a.password_file.empty() && a.user.empty()) {
    return "--nats-password-file: needs --nats-user (the user whose password it holds)";
  }
  // A variable that is set counts, so that a forgotten one never signs in unnoticed.
  // `what` ("token", "password") from the variable `name` unless the flag `file_flag` named a
  // file for it already.
  const auto variable = [&](const char* what, const char* name, std::string& into,
                            const std::string& file, const char* file_flag) -> std::string {
    const std::optional<std::string> value = env(name);
    if (!value) return {};
    if (value->empty()) return std::string(name) + " is set, but empty";
    if (!file.empty()) {
      return std::string(file_flag) + " and " + name + " both give the " + what +
             ": use one (unset " + name + ")";
    }
    into = name;
    return {};
  };
  if (auto p =
          variable("token", kNatsTokenVariable, a.token_env, a.token_file, "--nats-token-file");
      !p.empty()) {
    return p;
  }
  if (auto p = variable("password", kNatsPasswordVariable, a.password_env, a.password_file,
                        "--nats-password-file");
      !p.empty()) {
    return p;
  }
  if (!a.password_env.empty() && a.user.empty()) {
    return std::string(kNatsPasswordVariable) +
           " is set, but --nats-user is not given: name the user, or unset it";
  }
  if (!a.user.empty() && a.password_file.empty() && a.password_env.empty()) {
    return "--nats-user: needs a password: --nats-password-file FILE, or the environment "
           "variable " +
           std::string(kNatsPasswordVariable);
  }
  std::vector<std::string> ways;
  if (!a.user.empty()) ways.emplace_back("--nats-user");
  if (!a.token_file.empty()) ways.emplace_back("--nats-token-file");
  if (!a.token_env.empty()) ways.emplace_back(kNatsTokenVariable);
  if (!a.creds_file.empty()) ways.emplace_back("--nats-creds");
  if (ways.size() > 1) {
    std::string list;
    for (std::size_t i = 0; i < ways.size(); ++i) {
      list += (i == 0 ? "" : i + 1 == ways.size() ? " and " : ", ") + ways[i];
    }
    return "more than one way to sign in to NATS (" + list + "): give one";
  }
  return {};
}

// The first --nats-* flag given, for "only used with --nats"; empty: none.
std::string_view first_access_flag(const std::vector<std::string_view>& seen) {
  for (const std::string_view flag : seen) {
    if (flag.starts_with("--nats-") && flag != "--nats-bucket") return flag;
  }
  return {};
}

const std::vector<Flag<Options>>& flags() {
  static const std::vector<Flag<Options>> all = {
      {"--poll-interval", interval(&Options::poll_interval, std::chrono::milliseconds(1))},
      {"--increase-every", interval(&Options::increase_every, std::chrono::milliseconds(1))},
      {"--speed-step", speed_step(&Options::speed_step)},
      {"--log-file", path(&Options::log_file)},
      {"--dump-dot", path(&Options::dump_dot)},
      {"--duration", duration(&Options::duration)},
      {"--readings",
       [](std::string_view value, Options& o) -> std::string {
         std::uint64_t n = 0;
         const char* end = value.data() + value.size();
         const auto [ptr, ec] = std::from_chars(value.data(), end, n);
         if (ec != std::errc() || ptr != end || n == 0) {
           return quoted(value) + " is not a number of readings (a whole number, at least 1)";
         }
         o.readings = n;
         return {};
       }},
      {"--disconnect-rate", rate(&Options::disconnect_rate)},
      {"--set-failure-rate", rate(&Options::set_failure_rate)},
      {"--device-latency",
       [](std::string_view value, Options& o) -> std::string {
         const auto d = parse_duration(value);
         if (!d) return duration_problem(value, "0s, 20ms");
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
      {"--quiet", {}, &Options::quiet},
      {"--metrics",
       [](std::string_view value, Options& o) -> std::string {
         if (!metrics_available()) {
           return "not available in this build (it needs prometheus-cpp: apt-get install "
                  "prometheus-cpp-dev, then build again)";
         }
         if (std::string problem = custody::metrics::listen_address::problem(value);
             !problem.empty()) {
           return problem;
         }
         o.metrics_address = std::string(value);
         return {};
       }},
      {"--runtime",
       [](std::string_view value, Options& o) -> std::string {
         if (value == "threads") {
           o.runtime = Runtime::threads;
         } else if (value == "coroutines") {
           if (!coroutines_available()) {
             return "'coroutines' is not available: this build has no coroutine support "
                    "(standalone Asio was not found)";
           }
           o.runtime = Runtime::coroutines;
         } else {
           return quoted(value) + " is not a runtime (threads or coroutines)";
         }
         return {};
       }},
  };
  static const std::vector<Flag<Options>> with_access =
      with_nats_access(all, &Options::nats_access);
  return with_access;
}

const std::vector<Flag<MonitorOptions>>& monitor_flags() {
  using M = MonitorOptions;
  static const std::vector<Flag<M>> all = {
      {"--nats", nats_servers(&M::nats_servers)},
      {"--nats-bucket", bucket(&M::nats_bucket)},
      {"--increase-every", interval(&M::increase_every, std::chrono::milliseconds(1))},
      {"--speed-step", speed_step(&M::speed_step)},
      {"--step", speed_step(&M::speed_step)},
      {"--log-file", path(&M::log_file)},
      {"--log", path(&M::log_file)},
      {"--duration", duration(&M::duration)},
  };
  static const std::vector<Flag<M>> with_access = with_nats_access(all, &M::nats_access);
  return with_access;
}

template <class O>
struct Parsed {
  std::optional<O> options;
  bool help = false;
  bool version = false;
  std::string error;
  std::vector<std::string_view> seen;  ///< the flags given
};

// A value that is one of our flags: `--poll-interval --duration 1s` means a forgotten value,
// not a poll interval called "--duration".
template <class O>
bool names_a_flag(std::string_view value, const std::vector<Flag<O>>& table) {
  const std::string_view name = value.substr(0, value.find('='));
  return std::any_of(table.begin(), table.end(), [&](const Flag<O>& f) { return f.name == name; });
}

// CLI11 reads the command line; the values are ours to check, so that every message names the
// flag and says what is wrong in the program's own words. `--` ends the flags; -h/--help and
// --version before it win over everything else.
template <class O>
Parsed<O> parse_flags(std::span<const std::string_view> args, const std::vector<Flag<O>>& table) {
  Parsed<O> out;
  for (const std::string_view arg : args) {
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help") out.help = true;
    if (arg == "--version") out.version = true;
  }
  if (out.help || out.version) return out;

  O options;
  CLI::App app;
  app.set_help_flag();
  app.allow_extras();  // unknown flags and arguments are reported below, in our words
  std::string problem;
  for (const Flag<O>& f : table) {
    if (f.turn_on) {
      app.add_flag(std::string(f.name), options.*f.turn_on);
      continue;
    }
    app.add_option(std::string(f.name))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->check(CLI::Validator(
            [&, flag = &f](std::string& value) -> std::string {
              if (names_a_flag(value, table)) {
                return "needs a value (" + quoted(std::string_view(value)) + " is a flag)";
              }
              std::string why = flag->set(value, options);
              if (why.empty()) out.seen.push_back(flag->name);
              return why;
            },
            "VALUE"));
  }
  // CLI11 wants the program name first.
  std::vector<std::string> argv_store{"custody-car"};
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const std::string& a : argv_store) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ArgumentMismatch& e) {
    // "<flag>: 1 required VALUE missing": the flag came last, or with an empty "=".
    const std::string_view what = e.what();
    out.error = std::string(what.substr(0, what.find(':'))) + " needs a value";
    return out;
  } catch (const CLI::ValidationError& e) {
    out.error = e.what();  // "<flag>: <what our setter said>"
    return out;
  } catch (const CLI::Error& e) {
    out.error = e.what();
    return out;
  }
  bool after_dashes = false;
  for (const std::string& arg : app.remaining()) {
    if (arg == "--" && !after_dashes) {
      after_dashes = true;
      continue;
    }
    out.error = !after_dashes && arg.starts_with("-")
                    ? "unknown flag " + quoted(std::string_view(arg).substr(0, arg.find('=')))
                    : "unexpected argument " + quoted(std::string_view(arg)) + " (flags only)";
    return out;
  }
  out.options = std::move(options);
  return out;
}

}  // namespace

namespace {

// The number of seconds `text` stands for, however large; nullopt if it is malformed.
std::optional<double> duration_seconds(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double seconds;
  };
  // "ms" before "m" and "s": the longest suffix that matches wins.
  static constexpr Unit units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                   {"s", 1},     {"m", 60},    {"h", 3600}};
  if (text == "0") return 0.0;  // the one duration that needs no unit
  const Unit* unit = nullptr;
  for (const Unit& u : units) {
    if (text.ends_with(u.suffix) && (!unit || u.suffix.size() > unit->suffix.size())) unit = &u;
  }
  if (!unit) return std::nullopt;
  const auto number = parse_number(text.substr(0, text.size() - unit->suffix.size()));
  if (!number) return std::nullopt;
  const double seconds = *number * unit->seconds;
  if (!std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

}  // namespace

std::optional<nanoseconds> parse_duration(std::string_view text) {
  const auto seconds = duration_seconds(text);
  if (!seconds || std::fabs(*seconds) > kLongestSeconds) return std::nullopt;
  return nanoseconds(static_cast<std::int64_t>(std::llround(*seconds * 1e9)));
}

bool duration_too_long(std::string_view text) {
  const auto seconds = duration_seconds(text);
  return seconds && std::fabs(*seconds) > kLongestSeconds;
}

bool coroutines_available() {
#ifdef CUSTODY_CAR_WITH_ASIO
  return true;
#else
  return false;
#endif
}

bool metrics_available() {
#ifdef CUSTODY_CAR_WITH_METRICS
  return true;
#else
  return false;
#endif
}

bool nats_available() {
#ifdef CUSTODY_CAR_WITH_NATS
  return true;
#else
  return false;
#endif
}

std::optional<std::string> process_environment(const std::string& name) {
  // Read while parsing, before any thread that could change the environment starts.
  const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

ParsedOptions parse_options(std::span<const std::string_view> args, const Environment& env) {
  Parsed<Options> parsed = parse_flags(args, flags());
  ParsedOptions out{std::move(parsed.options), parsed.help, parsed.version,
                    std::move(parsed.error)};
  if (!out.options) return out;
  const auto& seen = parsed.seen;
  if (out.options->runtime == Runtime::coroutines && !out.options->nats_servers.empty()) {
    out.options.reset();
    out.error =
        "--runtime coroutines: not available with --nats (publishing over NATS runs with "
        "--runtime threads only)";
    return out;
  }
  if (out.options->nats_servers.empty()) {
    const std::string_view flag =
        given(seen, "--nats-bucket") ? "--nats-bucket" : first_access_flag(seen);
    if (!flag.empty()) {
      out.options.reset();
      out.error = std::string(flag) + ": only used with --nats (the NATS server to publish to)";
    }
    return out;
  }
  if (std::string problem = nats_access_problem(out.options->nats_access, env); !problem.empty()) {
    out.options.reset();
    out.error = std::move(problem);
  }
  return out;
}

ParsedOptions parse_options(std::span<const std::string_view> args) {
  return parse_options(args, process_environment);
}

ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args,
                                           const Environment& env) {
  Parsed<MonitorOptions> parsed = parse_flags(args, monitor_flags());
  ParsedMonitorOptions out{std::move(parsed.options), parsed.help, parsed.version,
                           std::move(parsed.error)};
  if (!out.options) return out;
  if (out.options->nats_servers.empty()) {
    out.options.reset();
    out.error =
        "--nats is required: the NATS server custody-car publishes to (e.g. --nats "
        "nats://127.0.0.1:4222)";
    return out;
  }
  if (std::string problem = nats_access_problem(out.options->nats_access, env); !problem.empty()) {
    out.options.reset();
    out.error = std::move(problem);
  }
  return out;
}

ParsedMonitorOptions parse_monitor_options(std::span<const std::string_view> args) {
  return parse_monitor_options(args, process_environment);
}

namespace {

// The --nats-* flags in both usage messages.
constexpr std::string_view kNatsAccessUsage =
    R"(  --nats-ca FILE        the CA (PEM) that vouches for the servers; TLS is then required
  --nats-cert FILE      this program's certificate (PEM), with --nats-key; TLS required
  --nats-key FILE       the certificate's private key (PEM)
  --nats-creds FILE     sign in with a credentials file (a user JWT and its NKey seed)
  --nats-token-file F   sign in with the token in F (or in $CUSTODY_NATS_TOKEN)
  --nats-user NAME      sign in as NAME, with the password in --nats-password-file F (or in
                        $CUSTODY_NATS_PASSWORD); one way to sign in at most, never a secret
                        on the command line (a URL with credentials is refused)
  --nats-replicas N     copies of the bucket a NATS cluster keeps (1 to 5), when it is made;
                        an existing bucket with another count is an error
)";

}  // namespace

std::string usage() {
  std::string text =
      R"(usage: custody-car [flags]

Drives a simulated car with four tasks until Ctrl-C, SIGTERM or --duration: one talks to the
car, one asks for more speed, one prints every update, one appends it to a log file.

flags:
  --poll-interval D     how often to read speed and location (default 2s)
  --increase-every D    how often to ask for more speed (default 5s)
  --speed-step N        how much more speed to ask for, in km/h: more than 0, at most 1000
                        (default 1); the car's top speed is 1000 km/h
  --log-file PATH       file to append '<date>: <speed>, <location>' lines to (default log.txt)
  --dump-dot PATH       on SIGUSR1, also write the wait-for graph (Graphviz DOT) to PATH
  --duration D          stop after D (default: run until Ctrl-C or SIGTERM)
  --readings N          stop once N readings were stored (with --seed: the same run every time)
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
)" + std::string(kNatsAccessUsage) +
      R"(  --quiet               no line per reading on standard output (the log file still gets them)
  --runtime R           how the tasks run: threads (a thread each; the default) or coroutines
                        (all on one thread, with custody::asio); the same output either way;
                        coroutines do not take --nats
  --metrics ADDR        serve Prometheus metrics of the named tasks, stores, subscriptions and
                        channels at http://ADDR/metrics while the car runs; ADDR is host:port
                        with a numeric IPv4 host, e.g. 127.0.0.1:9464 (port 0: any free port, the
                        first line says which)
  --version             show the version
  -h, --help            show this message
  --                    ends the flags (the program takes no other arguments)

Durations take a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h), at most 366 days.
Exit status: 0 stopped normally, 1 could not start or a task failed, 2 a bad flag, 3 lines
were lost (the summary says how many).
)";
  if (!nats_available()) text += "This build has no NATS support: --nats is not available.\n";
  if (!coroutines_available()) {
    text += "This build has no coroutine support: --runtime coroutines is not available.\n";
  }
  if (!metrics_available()) {
    text += "This build has no Prometheus support: --metrics is not available.\n";
  }
  return text;
}

std::string monitor_usage() {
  return std::string(R"(usage: custody-car-monitor --nats URL [flags]

Follows a car that `custody-car --nats URL` drives, from another process: prints every reading
it publishes, appends it to a log file and asks it for more speed, until Ctrl-C, SIGTERM or
--duration. Waits for the car if it is not there yet.

flags:
  --nats URL            the NATS server custody-car publishes to (required): nats://host:port
                        or tls://host:port, several separated by commas
  --nats-bucket NAME    the key-value bucket custody-car publishes to (default car)
)" + std::string(kNatsAccessUsage) +
                     R"(  --increase-every D    how often to ask for more speed (default 5s)
  --speed-step N        how much more speed to ask for, in km/h: more than 0, at most 1000
                        (default 1); also --step
  --log-file PATH       file to append '<date>: <speed>, <location>' lines to (default
                        monitor-log.txt); also --log
  --duration D          stop after D (default: run until Ctrl-C or SIGTERM)
  --version             show the version
  -h, --help            show this message
  --                    ends the flags (the program takes no other arguments)

Durations take a unit: 250ms, 2s, 1.5m (ns, us, ms, s, m, h), at most 366 days.
Exit status: as custody-car's.
)");
}

}  // namespace car
