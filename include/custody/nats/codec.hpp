#pragma once
// How values cross the wire: a codec per type, chosen by the user. The default, json_codec,
// works for any type with nlohmann::json's to_json/from_json, so that programs in other
// languages can read and write the data.

#include <concepts>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace custody::nats {

/// A codec for T: encode(const T&) gives the bytes of a value; decode(bytes) gives the value
/// back, or throws (any std::exception) for bytes that are not a valid T. decode must be safe
/// on hostile input: it is called on whatever arrives from the network.
template <class C, class T>
concept codec_for = requires(const T& value, std::string_view bytes) {
  { C::encode(value) } -> std::convertible_to<std::string>;
  { C::decode(bytes) } -> std::convertible_to<T>;
};

/// JSON through nlohmann::json: T needs to_json/from_json (or NLOHMANN_DEFINE_TYPE_...). A
/// from_json that reads fields with defaults (j.value("speed", 0.0)) lets clients send only
/// the fields a set request needs. from_json runs on hostile input: for integer fields check
/// is_number_integer() first, since nlohmann converts a float such as 1e30 to an integer
/// without a range check (undefined behaviour).
///
/// Documents nested deeper than max_depth are refused: nlohmann parses without recursion, but
/// copying and destroying a deeply nested value recurse.
template <class T>
struct json_codec {
  /// The deepest nesting of arrays and objects decode() accepts.
  static constexpr int max_depth = 256;

  /// The JSON text of `value`. Throws nlohmann::json::type_error for strings that are not
  /// valid UTF-8.
  static std::string encode(const T& value) { return nlohmann::json(value).dump(); }
  /// The value in the JSON text `bytes`. Throws nlohmann::json::exception for text that is
  /// not JSON or not a T, std::invalid_argument for nesting deeper than max_depth.
  static T decode(std::string_view bytes) {
    // parse() throws parse_error on malformed text; get() throws type_error/out_of_range on
    // well-formed JSON of the wrong shape.
    const auto limit_depth = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > max_depth) {
        throw std::invalid_argument("custody::nats::json_codec: JSON nested deeper than " +
                                    std::to_string(max_depth));
      }
      return true;
    };
    return nlohmann::json::parse(bytes.begin(), bytes.end(), limit_depth).template get<T>();
  }
};

}  // namespace custody::nats
