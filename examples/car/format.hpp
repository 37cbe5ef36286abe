#pragma once
// Text for the screen and the log file.

#include <chrono>
#include <cstdint>
#include <string>

#include "car_data.hpp"

namespace car {

/// ISO 8601 local time with milliseconds and the UTC offset: 2024-05-01T14:03:07.250+02:00.
std::string iso8601(WallTime t);
/// Local time of day with milliseconds: 14:03:07.250.
std::string time_of_day(WallTime t);
/// A number with two decimals, all of its digits however large: 12.50.
std::string fixed2(double v);
/// A number with one decimal: 3.7.
std::string fixed1(double v);
/// A number in the shortest form that reads back the same: 1000, 0.25.
std::string format_number(double v);
/// A duration the way the flags take it, in the largest whole unit: 2s, 250ms, 1500us.
std::string format_duration(std::chrono::nanoseconds d);

/// The log file's line for one reading: `<date>: <speed>, <location>`.
std::string log_line(const CarData& d);

/// The line both programs print before their summary: `last reading: <log line>`, or
/// `last reading: none` before the first reading. Two processes that hold the same reading print
/// the same line.
std::string last_reading(const CarData& d);

/// "1 update" / "2 updates".
std::string count(std::uint64_t n, const char* singular, const char* plural);

}  // namespace car
