// libFuzzer target: custody::nats::json_codec<T>::decode on arbitrary bytes, which is what a
// RemoteStore does with every value it reads from a bucket and an Exporter with every set
// request it receives: both come from the network, so decode must be safe on hostile input.
//
// The same input goes to the decoder of each type below. For each, decode must either throw a
// std::exception (anything else thrown fails the run) or return a value v such that
//   - encode(v) succeeds and decode(encode(v)) == v   (the round trip keeps the value), and
//   - encode(decode(encode(v))) == encode(v)          (encoding is canonical),
// and never crash, leak or hang (AddressSanitizer, UndefinedBehaviorSanitizer, libFuzzer's
// -timeout). The corpus holds deep nesting (100,000 '[' and '{"a":'), which the parser must
// handle without recursion.
//
// Types:
//   car::CarData, car::CarStatus  the car example's wire format (examples/car/car_json.hpp):
//                                 strict from_json, every field optional
//   reading                       a struct like CarData read the tolerant way the codec's
//                                 documentation suggests, with j.value(field, default)
//   nested                        vectors of maps of strings, optional fields, a map of vectors
//   nlohmann::json                raw JSON documents (a store of json), up to max_json_depth

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <custody/nats/codec.hpp>

#include "../../examples/car/car_json.hpp"
#include "fuzz_support.hpp"

namespace {

using json = nlohmann::json;

/// {double speed, location; int64 time in ms}, read leniently: missing fields get defaults.
struct reading {
  double speed = 0;
  double location = 0;
  std::int64_t time_ms = 0;
  friend bool operator==(const reading&, const reading&) = default;
};

void to_json(json& j, const reading& r) {
  j = json{{"speed", r.speed}, {"location", r.location}, {"time", r.time_ms}};
}

void from_json(const json& j, reading& r) {
  r.speed = j.value("speed", 0.0);
  r.location = j.value("location", 0.0);
  // j.value("time", std::int64_t{0}) alone is undefined behaviour on {"time": 1e30}:
  // nlohmann converts a floating-point number to an integer with a plain static_cast, out of
  // range here (found with this target; corpus: regression-float-to-int64). Fractions are fine.
  if (const auto it = j.find("time"); it != j.end() && it->is_number_float()) {
    const double t = it->get<double>();
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) {
      throw json::out_of_range::create(406, "reading: \"time\" out of range", &*it);
    }
  }
  r.time_ms = j.value("time", std::int64_t{0});
}

/// Nested containers and optional fields.
struct nested {
  std::vector<std::map<std::string, std::string>> rows;
  std::optional<std::string> label;
  std::optional<std::vector<double>> values;
  std::map<std::string, std::vector<std::string>> tags;
  friend bool operator==(const nested&, const nested&) = default;
};

void to_json(json& j, const nested& n) {
  j = json{{"rows", n.rows}, {"tags", n.tags}};
  if (n.label) j["label"] = *n.label;
  if (n.values) j["values"] = *n.values;
}

void from_json(const json& j, nested& n) {
  n.rows = j.at("rows").get<std::vector<std::map<std::string, std::string>>>();
  n.label.reset();
  n.values.reset();
  // Absent or null: none.
  if (const auto it = j.find("label"); it != j.end() && !it->is_null()) {
    n.label = it->get<std::string>();
  }
  if (const auto it = j.find("values"); it != j.end() && !it->is_null()) {
    n.values = it->get<std::vector<double>>();
  }
  n.tags = j.value("tags", std::map<std::string, std::vector<std::string>>{});
}

// json_codec<nlohmann::json> decodes with the iterative parser, but then copies the document
// (get<json>()) and encodes it (dump()) recursively, one stack frame per level: a document
// nested 100,000 deep overflows the stack there (a known limit of a store of raw json, not of
// the parser). Deeper inputs are not given to that decoder; the fuzzer's inputs (scripts/fuzz:
// at most 512 bytes) never reach this depth anyway.
constexpr int max_json_depth = 1000;

int nesting_depth(std::string_view bytes) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : bytes) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

/// Decodes `bytes` as T and checks the outcome (see the top of the file).
template <class T>
void check_codec(std::string_view bytes) {
  using codec = custody::nats::json_codec<T>;
  std::optional<T> decoded;
  try {
    decoded.emplace(codec::decode(bytes));
  } catch (const std::exception&) {
    return;  // rejected: fine
  } catch (...) {
    FUZZ_CHECK(!"decode threw something that is not a std::exception");
  }
  std::string encoded;
  try {
    encoded = codec::encode(*decoded);
  } catch (const std::exception&) {
    FUZZ_CHECK(!"a decoded value cannot be encoded");
  }
  std::optional<T> again;
  try {
    again.emplace(codec::decode(encoded));
  } catch (const std::exception&) {
    FUZZ_CHECK(!"the encoding of a decoded value does not decode");
  }
  FUZZ_CHECK(*again == *decoded);
  FUZZ_CHECK(codec::encode(*again) == encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_codec<car::CarData>(bytes);
  check_codec<car::CarStatus>(bytes);
  check_codec<reading>(bytes);
  check_codec<nested>(bytes);
  if (nesting_depth(bytes) <= max_json_depth) check_codec<json>(bytes);
  return 0;
}
