// The types tell the truth: every capability a view lacks is denied by the traits and by
// requires-expressions too, not only by a compile error inside the call (the compile-fail
// tests check the messages). read() never hands out a reference into the store.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/store.hpp>

namespace {
namespace store_traits_test {

using custody::GetSetter;
using custody::GetSubscriber;
using custody::Getter;
using custody::Owner;
using custody::Setter;
using custody::Store;
using custody::Subscriber;

template <class V>
constexpr bool can_get = requires(const V& v) {
  v.get();
};
template <class V>
constexpr bool can_read = requires(const V& v) {
  v.read([](const int& x) { return x; });
};
template <class V>
constexpr bool can_set = requires(const V& v) {
  v.set(1);
};
template <class V>
constexpr bool can_set_for = requires(const V& v) {
  v.set_for(1, std::chrono::seconds(1));
};
template <class V>
constexpr bool can_subscribe = requires(const V& v) {
  v.subscribe(custody::policy::latest());
};

// Narrowing converts; widening is neither convertible nor constructible.
static_assert(std::is_convertible_v<Store<int>, Getter<int>>);
static_assert(std::is_convertible_v<GetSetter<int>, Setter<int>>);
static_assert(std::is_convertible_v<const Store<int>&, Subscriber<int>>);
static_assert(!std::is_convertible_v<Getter<int>, Setter<int>>);
static_assert(!std::is_constructible_v<Setter<int>, Getter<int>>);
static_assert(!std::is_convertible_v<Getter<int>, Store<int>>);
static_assert(!std::is_constructible_v<GetSetter<int>, GetSubscriber<int>>);
static_assert(!std::is_constructible_v<Store<int>, Getter<int>&&>);

// No view becomes an Owner, whichever way it is asked.
static_assert(!std::is_constructible_v<Owner<int>, Getter<int>>);
static_assert(!std::is_constructible_v<Owner<int>, Store<int>>);
static_assert(!std::is_convertible_v<Store<int>, Owner<int>>);
static_assert(!std::is_copy_constructible_v<Owner<int>>);

// Each operation exists exactly on the views with its capability.
static_assert(can_get<Getter<int>> && can_read<Getter<int>> && !can_set<Getter<int>> &&
              !can_subscribe<Getter<int>>);
static_assert(!can_get<Setter<int>> && !can_read<Setter<int>> && can_set<Setter<int>> &&
              can_set_for<Setter<int>> && !can_subscribe<Setter<int>>);
static_assert(!can_get<Subscriber<int>> && !can_set<Subscriber<int>> &&
              !can_set_for<Subscriber<int>> && can_subscribe<Subscriber<int>>);
static_assert(can_get<Store<int>> && can_set<Store<int>> && can_subscribe<Store<int>>);

// A large trivially copyable value is pinned, not read optimistically: an optimistic copy of
// 4 KiB kept retrying for tens of milliseconds under an owner that publishes without pause
// (custody-bench-store_get_wait measures it).
struct Page {
  std::array<std::uint64_t, 512> words;
};
static_assert(
    std::is_same_v<custody::detail::snapshot_cell<Page>, custody::detail::pinned_cell<Page>>);
static_assert(std::is_same_v<custody::detail::snapshot_cell<std::uint64_t>,
                             custody::detail::seqlock_cell<std::uint64_t>>);

TEST(StoreTraits, ALargeTriviallyCopyableValueIsNeverTorn) {
  auto [owner, store] = custody::make_store<Page>(Page{});
  std::jthread publisher([&owner = owner](std::stop_token stop) {
    Page p{};
    for (std::uint64_t i = 1; !stop.stop_requested(); ++i) {
      p.words.fill(i);
      (void)owner.publish(p);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    const Page p = store.get();
    ASSERT_EQ(p.words.front(), p.words.back());
  }
}

struct Car {
  std::string name;
  int speed = 0;
};

TEST(StoreTraits, ReadReturnsByValueEvenWhenFnReturnsAReference) {
  auto [owner, store] = custody::make_store<Car>(Car{"first", 1});
  const Getter<Car> g = store;
  auto name_ref = [](const Car& c) -> const std::string& { return c.name; };
  static_assert(std::is_same_v<decltype(g.read(name_ref)), std::string>);
  static_assert(std::is_same_v<decltype(g.read([](const Car& c) { return c.speed; })), int>);
  static_assert(std::is_void_v<decltype(g.read([](const Car&) {}))>);
  // A trivially copyable value takes the other cell; the rule is the same.
  auto [small_owner, small] = custody::make_store<int>(3);
  static_assert(
      std::is_same_v<
          decltype(Getter<int>(small).read([](const int& v) -> const int& { return v; })), int>);
  EXPECT_EQ(Getter<int>(small).read([](const int& v) -> const int& { return v; }), 3);

  // Under an owner that publishes without pause, the name a reader gets is never torn.
  std::jthread publisher([&owner = owner](std::stop_token stop) {
    for (int i = 0; !stop.stop_requested(); ++i) {
      (void)owner.publish(Car{std::string(64, static_cast<char>('a' + i % 26)), i});
    }
  });
  for (int i = 0; i < 20'000; ++i) {
    const std::string name = g.read(name_ref);
    if (name == "first") continue;
    ASSERT_EQ(name, std::string(64, name[0]));
  }
}

}  // namespace store_traits_test
}  // namespace
