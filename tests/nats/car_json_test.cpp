// The car example's JSON (examples/car/car_json.hpp): what goes over NATS for CarData and
// CarStatus, what a client may leave out, and what is refused.

#include "car_json.hpp"

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <custody/nats/codec.hpp>

#include "car_data.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

car::WallTime at_millis(std::int64_t ms) { return car::WallTime(std::chrono::milliseconds(ms)); }

TEST(CarJson, CarDataHasItsFieldsAndMillisecondsSinceTheEpoch) {
  const car::CarData d{12.5, 80.25, at_millis(1764291972237) + 999us};
  const json j = d;
  EXPECT_EQ(j, json::parse(R"({"speed": 12.5, "location": 80.25, "time": 1764291972237})"));
  const auto back = j.get<car::CarData>();
  EXPECT_EQ(back.speed, 12.5);
  EXPECT_EQ(back.location, 80.25);
  EXPECT_EQ(back.time, at_millis(1764291972237)) << "whole milliseconds, rounded down";
}

TEST(CarJson, CarDataRoundTripsExactly) {
  // Doubles survive the text form bit for bit, so both sides print the same reading.
  const car::CarData d{1.0 / 3.0, 123456.789012345678, at_millis(1)};
  using codec = custody::nats::json_codec<car::CarData>;
  EXPECT_EQ(codec::decode(codec::encode(d)), d);
}

TEST(CarJson, CarStatusHasItsFields) {
  car::CarStatus s;
  s.connected = true;
  s.disconnects = 18446744073709551615ull;
  s.failed_attempts = 4294967295u;
  s.retry_in_polls = 8;
  s.last_error = "no answer \"while\" reading\n";
  s.changed = at_millis(-1500);  // before 1970: still whole milliseconds
  s.changes = 42;
  const json j = s;
  EXPECT_EQ(j, json::parse(R"({"connected": true, "disconnects": 18446744073709551615,
                               "failed_attempts": 4294967295, "retry_in_polls": 8,
                               "last_error": "no answer \"while\" reading\n",
                               "changed": -1500, "changes": 42})"));
  EXPECT_EQ(j.get<car::CarStatus>(), s);
}

TEST(CarJson, MissingFieldsTakeTheirDefaults) {
  const auto d = json::parse(R"({"speed": 42})").get<car::CarData>();
  EXPECT_EQ(d, (car::CarData{42, 0, car::WallTime{}}));
  EXPECT_EQ(json::parse("{}").get<car::CarStatus>(), car::CarStatus{});
  // Unknown fields are ignored: newer clients may send more.
  EXPECT_EQ(json::parse(R"({"speed": 1, "colour": "red"})").get<car::CarData>().speed, 1);
}

TEST(CarJson, WrongTypesAreRefusedWithAnException) {
  const std::vector<std::string> data = {
      R"({"speed": "fast"})",
      R"({"speed": true})",
      R"({"speed": null})",
      R"({"speed": [1]})",
      R"({"location": {}})",
      R"({"time": 1.5})",
      R"({"time": "now"})",
      R"({"time": 1e300})",
      R"({"time": 18446744073709551615})",
      R"({"time": -9223372036854775808})",
      R"(42)",
      R"([{"speed": 1}])",
      R"("speed")",
      R"(null)",
  };
  for (const std::string& text : data) {
    EXPECT_THROW((void)json::parse(text).get<car::CarData>(), json::exception) << text;
  }
  const std::vector<std::string> status = {
      R"({"connected": 1})",
      R"({"connected": "yes"})",
      R"({"disconnects": -1})",
      R"({"disconnects": 1.5})",
      R"({"failed_attempts": 4294967296})",
      R"({"retry_in_polls": -1})",
      R"({"last_error": 3})",
      R"({"changed": "x"})",
      R"({"changes": true})",
      R"([])",
  };
  for (const std::string& text : status) {
    EXPECT_THROW((void)json::parse(text).get<car::CarStatus>(), json::exception) << text;
  }
}

TEST(CarJson, TheCodecRefusesHostileInputWithoutCrashing) {
  using codec = custody::nats::json_codec<car::CarData>;
  const std::vector<std::string> hostile = {"",
                                            "{",
                                            "{\"speed\": 1e400}",
                                            "{\"speed\": NaN}",
                                            std::string(100000, '['),
                                            std::string("{\"speed\": \0}", 12),
                                            "\xff\xfe"};
  for (const std::string& text : hostile) {
    EXPECT_ANY_THROW((void)codec::decode(text)) << text.substr(0, 40);
  }
}

}  // namespace
