#include "format.hpp"

#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace car {

namespace {

struct LocalTime {
  struct tm tm {};
  int millis = 0;
};

LocalTime local(WallTime t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t.time_since_epoch());
  const auto secs = floor<seconds>(ms);
  LocalTime out;
  out.millis = static_cast<int>((ms - secs).count());
  const time_t tt = static_cast<time_t>(secs.count());
  localtime_r(&tt, &out.tm);  // reentrant: the tasks format times concurrently
  return out;
}

}  // namespace

std::string iso8601(WallTime t) {
  const LocalTime lt = local(t);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &lt.tm);
  const long offset_min = lt.tm.tm_gmtoff / 60;
  const long abs_min = std::labs(offset_min);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d%c%02ld:%02ld", date, lt.millis,
                offset_min < 0 ? '-' : '+', abs_min / 60, abs_min % 60);
  return out;
}

std::string time_of_day(WallTime t) {
  const LocalTime lt = local(t);
  char out[32];
  std::snprintf(out, sizeof out, "%02d:%02d:%02d.%03d", lt.tm.tm_hour, lt.tm.tm_min, lt.tm.tm_sec,
                lt.millis);
  return out;
}

std::string fixed2(double v) {
  char out[64];
  std::snprintf(out, sizeof out, "%.2f", v);
  return out;
}

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
  char out[64];
  for (const Unit& u : units) {
    if (n % u.ns == 0) {
      std::snprintf(out, sizeof out, "%" PRId64 "%s", n / u.ns, u.name);
      return out;
    }
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
