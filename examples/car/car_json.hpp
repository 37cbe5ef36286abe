#pragma once
// CarData and CarStatus as JSON (nlohmann::json's to_json/from_json), the form custody::nats's
// default codec puts them on the wire in, for programs in any language:
//
//   CarData    {"speed": 12.5, "location": 80.25, "time": 1764291972237}
//   CarStatus  {"connected": true, "disconnects": 0, "failed_attempts": 0, "retry_in_polls": 0,
//               "last_error": "", "changed": 1764291972237, "changes": 1}
//
// Times are whole milliseconds since the Unix epoch (UTC); speed is in km/h, location in metres.
//
// from_json reads every field with a default, so a client may send only what a set request
// needs ({"speed": 42}) and unknown fields are ignored. A field of the wrong type (a string for
// a number, a negative count, a fraction of a millisecond, a time beyond what the clock can
// hold, a value that is not an object) throws nlohmann::json::type_error or out_of_range: never
// a silent conversion (nlohmann alone would read true as 1 and -1 as 18446744073709551615).

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "car_data.hpp"

namespace car {

namespace json_detail {

using json = nlohmann::json;

// Times are stored as system_clock::time_point: milliseconds beyond what it can hold would
// overflow when converted.
inline constexpr std::int64_t kMaxMillis =
    std::chrono::duration_cast<std::chrono::milliseconds>(WallTime::duration::max()).count() - 1;

[[noreturn]] inline void wrong_type(const json& j, const char* type, const char* field,
                                    const char* wanted) {
  throw json::type_error::create(
      302, std::string(type) + ": \"" + field + "\" must be " + wanted + ", not " + j.type_name(),
      &j);
}

[[noreturn]] inline void out_of_range(const json& j, const char* type, const char* field,
                                      const char* wanted) {
  throw json::out_of_range::create(
      406, std::string(type) + ": \"" + field + "\" must be " + wanted + ", not " + j.dump(), &j);
}

inline const json* field(const json& object, const char* type, const char* name) {
  if (!object.is_object()) {
    throw json::type_error::create(
        302, std::string(type) + " must be a JSON object, not " + object.type_name(), &object);
  }
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

inline double number(const json& object, const char* type, const char* name, double fallback) {
  const json* v = field(object, type, name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) wrong_type(*v, type, name, "a number");
  const double d = v->get<double>();
  if (!std::isfinite(d)) out_of_range(*v, type, name, "a finite number");
  return d;
}

inline bool boolean(const json& object, const char* type, const char* name, bool fallback) {
  const json* v = field(object, type, name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) wrong_type(*v, type, name, "true or false");
  return v->get<bool>();
}

inline std::string text(const json& object, const char* type, const char* name) {
  const json* v = field(object, type, name);
  if (v == nullptr) return {};
  if (!v->is_string()) wrong_type(*v, type, name, "a string");
  return v->get<std::string>();
}

template <class Unsigned>
Unsigned count(const json& object, const char* type, const char* name) {
  const json* v = field(object, type, name);
  if (v == nullptr) return 0;
  if (!v->is_number_integer()) wrong_type(*v, type, name, "a whole number");
  // Non-negative integers parse as unsigned: a signed one here is negative.
  if (!v->is_number_unsigned() || v->get<std::uint64_t>() > std::numeric_limits<Unsigned>::max()) {
    out_of_range(*v, type, name,
                 sizeof(Unsigned) == 4 ? "a whole number from 0 to 4294967295"
                                       : "a whole number from 0 to 18446744073709551615");
  }
  return static_cast<Unsigned>(v->get<std::uint64_t>());
}

inline WallTime time(const json& object, const char* type, const char* name) {
  const json* v = field(object, type, name);
  if (v == nullptr) return WallTime{};
  if (!v->is_number_integer()) wrong_type(*v, type, name, "whole milliseconds since 1970");
  const bool in_range = v->is_number_unsigned()
                            ? v->get<std::uint64_t>() <= static_cast<std::uint64_t>(kMaxMillis)
                            : v->get<std::int64_t>() >= -kMaxMillis;
  if (!in_range) out_of_range(*v, type, name, "milliseconds within the clock's range");
  return WallTime(std::chrono::milliseconds(v->get<std::int64_t>()));
}

inline std::int64_t millis(WallTime t) {
  // Floor, as the screen and the log show times: a reading shows the same everywhere.
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace json_detail

inline void to_json(nlohmann::json& j, const CarData& d) {
  j = nlohmann::json{
      {"speed", d.speed}, {"location", d.location}, {"time", json_detail::millis(d.time)}};
}

inline void from_json(const nlohmann::json& j, CarData& d) {
  namespace jd = json_detail;
  CarData out;
  out.speed = jd::number(j, "CarData", "speed", 0.0);
  out.location = jd::number(j, "CarData", "location", 0.0);
  out.time = jd::time(j, "CarData", "time");
  d = out;
}

inline void to_json(nlohmann::json& j, const CarStatus& s) {
  j = nlohmann::json{{"connected", s.connected},
                     {"disconnects", s.disconnects},
                     {"failed_attempts", s.failed_attempts},
                     {"retry_in_polls", s.retry_in_polls},
                     {"last_error", s.last_error},
                     {"changed", json_detail::millis(s.changed)},
                     {"changes", s.changes}};
}

inline void from_json(const nlohmann::json& j, CarStatus& s) {
  namespace jd = json_detail;
  CarStatus out;
  out.connected = jd::boolean(j, "CarStatus", "connected", false);
  out.disconnects = jd::count<std::uint64_t>(j, "CarStatus", "disconnects");
  out.failed_attempts = jd::count<std::uint32_t>(j, "CarStatus", "failed_attempts");
  out.retry_in_polls = jd::count<std::uint32_t>(j, "CarStatus", "retry_in_polls");
  out.last_error = jd::text(j, "CarStatus", "last_error");
  out.changed = jd::time(j, "CarStatus", "changed");
  out.changes = jd::count<std::uint64_t>(j, "CarStatus", "changes");
  s = std::move(out);
}

}  // namespace car
