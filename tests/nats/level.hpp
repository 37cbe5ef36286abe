#pragma once
// The value most NATS tests keep in their stores: one integer, as the JSON {"n": ...}.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace nats_test {

struct Level {
  std::int64_t n = 0;
  friend bool operator==(const Level&, const Level&) = default;
};
inline void to_json(nlohmann::json& j, const Level& l) { j = {{"n", l.n}}; }
inline void from_json(const nlohmann::json& j, Level& l) {
  if (!j.at("n").is_number_integer()) throw std::invalid_argument("Level: n must be an integer");
  l.n = j.at("n").get<std::int64_t>();
}

}  // namespace nats_test
