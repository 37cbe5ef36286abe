#include "format.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>

namespace car {

namespace {

struct LocalTime {
  std::tm tm{};
  int millis = 0;
};

LocalTime local(WallTime t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t.time_since_epoch());
  const auto secs = floor<seconds>(ms);
  // fmt::localtime is reentrant (localtime_r): the tasks format times concurrently.
  return LocalTime{fmt::localtime(static_cast<std::time_t>(secs.count())),
                   static_cast<int>((ms - secs).count())};
}

}  // namespace

std::string iso8601(WallTime t) {
  const LocalTime lt = local(t);
  const long offset_min = lt.tm.tm_gmtoff / 60;
  const long abs_min = std::labs(offset_min);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}{}{:02}:{:02}", lt.tm, lt.millis,
                     offset_min < 0 ? '-' : '+', abs_min / 60, abs_min % 60);
}

std::string time_of_day(WallTime t) {
  const LocalTime lt = local(t);
  return fmt::format("{:%H:%M:%S}.{:03}", lt.tm, lt.millis);
}

std::string fixed2(double v) { return fmt::format("{:.2f}", v); }

std::string fixed1(double v) { return fmt::format("{:.1f}", v); }

std::string format_number(double v) { return fmt::format("{}", v); }

std::string format_duration(std::chrono::nanoseconds d) {
  struct Unit {
    std::int64_t ns;
    const char* name;
  };
  static constexpr Unit units[] = {
      {3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
      {1'000'000, "ms"},        {1'000, "us"},         {1, "ns"}};
  const std::int64_t n = d.count();
  if (n == 0) return "0s";
  for (const Unit& u : units) {
    if (n % u.ns == 0) return fmt::format("{}{}", n / u.ns, u.name);
  }
  return "0s";  // unreachable: every count is a whole number of ns
}

std::string log_line(const CarData& d) {
  return iso8601(d.time) + ": " + fixed2(d.speed) + ", " + fixed2(d.location);
}

std::string last_reading(const CarData& d) {
  return "last reading: " + (d.measured() ? log_line(d) : std::string("none"));
}

std::string count(std::uint64_t n, const char* singular, const char* plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

}  // namespace car
