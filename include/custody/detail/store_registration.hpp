#pragma once
// A named store's registration: what custody::inspect() reports of it beyond its live state,
// counted as it happens. Only a named store has one; an unnamed store pays a null test.

#include <array>
#include <cstddef>
#include <cstdint>

#include "../inspection.hpp"
#include "interleave.hpp"
#include "registry.hpp"
#include "set_result.hpp"

namespace custody::detail {

class store_registration : public registration {
 public:
  using registration::registration;

  /// One set() returned `s`. Any thread; relaxed: the counts order nothing else.
  void count_answer(set_status s) noexcept {
    answers_[static_cast<std::size_t>(s)].fetch_add(1, std::memory_order_relaxed);
  }

  set_answer_counts answers() const noexcept {
    set_answer_counts counts;
    for (std::size_t i = 0; i < set_status_count; ++i) {
      counts.by_status[i] = answers_[i].load(std::memory_order_relaxed);
    }
    return counts;
  }

 private:
  std::array<atomic<std::uint64_t>, set_status_count> answers_{};
};

}  // namespace custody::detail
