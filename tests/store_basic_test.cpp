// Store basics: make_store, views and their conversions, publish/update, nil handles, policies.

#include <stdexcept>
#include <string>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/store.hpp>

namespace {
namespace store_basic_test {

struct Point {
  double x;
  double y;
};

struct Named {
  std::string name;
  int n = 0;
};

using custody::GetSetter;
using custody::GetSubscriber;
using custody::Getter;
using custody::make_store;
using custody::Owner;
using custody::policy;
using custody::SetSubscriber;
using custody::Setter;
using custody::status;
using custody::Store;
using custody::Subscriber;

TEST(StoreBasic, InitialValueIsVisibleToEveryView) {
  auto made = make_store(Point{1, 2});
  auto& owner = made.owner;
  auto& store = made.store;
  Getter<Point> g = store;
  GetSetter<Point> gs = store;
  GetSubscriber<Point> gn = store;
  EXPECT_EQ(g.get().x, 1);
  EXPECT_EQ(gs.get().y, 2);
  EXPECT_EQ(gn.get().x, 1);
  EXPECT_EQ(owner.get().x, 1);
  EXPECT_EQ(owner.value().y, 2);
}

TEST(StoreBasic, PublishAndUpdateReplaceTheValue) {
  auto made = make_store<Named>(Named{"a", 1});
  auto& owner = made.owner;
  auto& store = made.store;
  EXPECT_EQ(owner.publish(Named{"b", 2}), status::ok);
  EXPECT_EQ(store.get().name, "b");
  EXPECT_EQ(owner.update([](Named& v) { v.n += 40; }), status::ok);
  EXPECT_EQ(store.get().n, 42);
  EXPECT_EQ(store.get().name, "b");
  // An update whose function returns false changes nothing.
  EXPECT_EQ(owner.update([](Named& v) {
    v.n = -1;
    return false;
  }),
            status::ok);
  EXPECT_EQ(store.get().n, 42);
  EXPECT_EQ(owner.value().n, 42);
}

TEST(StoreBasic, UpdateThatThrowsChangesNothing) {
  auto made = make_store<Named>(Named{"keep", 7});
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::buffer(4));
  EXPECT_THROW(owner.update([](Named& v) {
    v.name = "half done";
    throw std::runtime_error("device failed");
  }),
               std::runtime_error);
  EXPECT_EQ(store.get().name, "keep");
  EXPECT_EQ(sub.try_recv().status(), status::would_block);
}

TEST(StoreBasic, ReadSeesTheValueWithoutCopyingIt) {
  auto made = make_store<Named>(Named{std::string(100, 'x'), 3});
  auto& store = made.store;
  EXPECT_EQ(store.read([](const Named& v) { return v.name.size() + v.n; }), 103u);
  auto pmade = make_store(Point{3, 4});
  auto& pstore = pmade.store;
  EXPECT_EQ(pstore.read([](const Point& p) { return p.x * p.y; }), 12);
}

TEST(StoreBasic, ViewsOnlyNarrow) {
  // Every narrowing converts implicitly...
  static_assert(std::is_convertible_v<Store<int>, Getter<int>>);
  static_assert(std::is_convertible_v<Store<int>, GetSetter<int>>);
  static_assert(std::is_convertible_v<GetSetter<int>, Setter<int>>);
  static_assert(std::is_convertible_v<GetSubscriber<int>, Subscriber<int>>);
  static_assert(std::is_convertible_v<SetSubscriber<int>, Subscriber<int>>);
  // ...and no view can be constructed from anything that makes an Owner out of it except
  // make_store (the widening and owner cases are compile-fail tests).
  static_assert(!std::is_copy_constructible_v<Owner<int>>);
  static_assert(std::is_nothrow_move_constructible_v<Owner<int>>);
  static_assert(!std::is_convertible_v<Getter<int>, Store<long>>);

  auto made = make_store(5);
  auto& store = made.store;
  GetSetter<int> gs = store;
  Setter<int> s = gs;
  Getter<int> g = gs;
  EXPECT_TRUE(s == store);
  EXPECT_TRUE(g == gs);
  EXPECT_EQ(g.get(), 5);
}

TEST(StoreBasic, NilHandlesThrow) {
  Getter<int> g;
  Store<int> s;
  Owner<int> o;
  EXPECT_FALSE(g);
  EXPECT_FALSE(o);
  EXPECT_THROW((void)g.get(), std::logic_error);
  EXPECT_THROW((void)s.set(1), std::logic_error);
  EXPECT_THROW((void)s.subscribe(policy::latest()), std::logic_error);
  EXPECT_THROW((void)o.publish(1), std::logic_error);
  EXPECT_FALSE(o.close());
}

TEST(StoreBasic, MovedFromOwnerIsNilAndTheStoreStaysOpen) {
  auto made = make_store(1);
  auto& owner = made.owner;
  auto& store = made.store;
  Owner<int> other = std::move(owner);
  EXPECT_FALSE(owner);  // NOLINT(bugprone-use-after-move): moved-from is documented as nil
  EXPECT_TRUE(other);
  EXPECT_FALSE(store.owner_gone());
  EXPECT_EQ(other.publish(2), status::ok);
  EXPECT_EQ(store.get(), 2);
}

TEST(StoreBasic, OwnerMoveAssignmentClosesTheStoreItHad) {
  auto a_made = make_store(1);
  auto& a = a_made.owner;
  auto& sa = a_made.store;
  auto b_made = make_store(2);
  auto& b = b_made.owner;
  auto& sb = b_made.store;
  a = std::move(b);
  EXPECT_TRUE(sa.owner_gone());
  EXPECT_FALSE(sb.owner_gone());
  EXPECT_EQ(a.publish(3), status::ok);
  EXPECT_EQ(sb.get(), 3);
}

TEST(StoreBasic, PoliciesAreValidated) {
  EXPECT_THROW((void)policy::block(0), std::invalid_argument);
  EXPECT_THROW((void)policy::buffer(0), std::invalid_argument);
  constexpr policy p = policy::buffer(8).with_current();
  static_assert(p.kind() == policy::mode::buffer && p.capacity() == 8 && p.current_first());
  static_assert(policy::latest().capacity() == 1 && !policy::latest().lossless());
  static_assert(policy::block().capacity() == policy::default_block_capacity &&
                policy::block().lossless());
}

TEST(StoreBasic, AfterCloseGetKeepsTheLastValueAndPublishIsRefused) {
  auto made = make_store(Named{"last", 9});
  auto& owner = made.owner;
  auto& store = made.store;
  EXPECT_TRUE(owner.close());
  EXPECT_FALSE(owner.close());
  EXPECT_TRUE(owner.is_closed());
  EXPECT_TRUE(store.owner_gone());
  EXPECT_EQ(owner.publish(Named{"late", 10}), status::closed);
  EXPECT_EQ(store.get().name, "last");
}

// Its copies throw on demand; a throwing copy must leave the store consistent.
struct Brittle {
  static inline bool throw_on_copy = false;
  int n = 0;
  Brittle() = default;
  explicit Brittle(int v) : n(v) {}
  Brittle(const Brittle& o) : n(o.n) { check(); }
  Brittle& operator=(const Brittle& o) {
    check();
    n = o.n;
    return *this;
  }
  Brittle(Brittle&&) noexcept = default;
  Brittle& operator=(Brittle&&) noexcept = default;
  static void check() {
    if (throw_on_copy) throw std::runtime_error("copy failed");
  }
};

TEST(StoreBasic, ACopyThatThrowsWhileDeliveringLeavesTheValueStored) {
  auto made = make_store(Brittle(1));
  auto& owner = made.owner;
  auto& store = made.store;
  auto sub = store.subscribe(policy::buffer(4));
  Brittle::throw_on_copy = true;
  EXPECT_THROW((void)owner.publish(Brittle(2)), std::runtime_error);
  Brittle::throw_on_copy = false;
  EXPECT_EQ(store.get().n, 2);                              // stored before delivery
  EXPECT_EQ(sub.try_recv().status(), status::would_block);  // this subscriber missed it
  EXPECT_EQ(owner.publish(Brittle(3)), status::ok);
  EXPECT_EQ(sub.try_recv()->n, 3);
}

TEST(StoreBasic, EmptyRequestsThrow) {
  custody::SetRequest<int> empty;
  EXPECT_FALSE(empty);
  EXPECT_FALSE(empty.abandoned());
  EXPECT_THROW((void)empty.value(), std::logic_error);
  EXPECT_THROW((void)std::move(empty).accept(1), std::logic_error);
}

TEST(StoreBasic, ToStringNamesEverySetStatus) {
  EXPECT_EQ(custody::to_string(custody::set_status::accepted), "accepted");
  EXPECT_EQ(custody::to_string(custody::set_status::owner_gone), "owner gone");
  EXPECT_EQ(custody::to_string(custody::set_status::dropped), "dropped");
}

}  // namespace store_basic_test
}  // namespace
