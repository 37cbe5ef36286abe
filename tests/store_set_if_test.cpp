// set_if(): a conditional set is stored only while the store is still at the version the
// caller read; a set that raced with another is answered conflict and stores nothing.

#include <cstdint>
#include <optional>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

#include <custody/select.hpp>
#include <custody/store.hpp>

namespace {
namespace store_set_if_test {

using namespace std::chrono_literals;

using custody::make_store;
using custody::Owner;
using custody::set_status;
using custody::SetRequest;

// Accepts every request with Owner::accept until stopped.
void accept_until_stopped(Owner<std::int64_t>& owner, std::stop_token stop) {
  auto requests = owner.requests();
  for (bool running = true; running;) {
    custody::select(
        custody::on_recv(requests, [&](SetRequest<std::int64_t> r) { owner.accept(std::move(r)); }),
        custody::on_stop(stop, [&] { running = false; }));
  }
}

template <class View>
concept has_set_if = requires(const View& v) {
  v.set_if(std::uint64_t{1}, std::int64_t{1});
};

static_assert(has_set_if<custody::Setter<std::int64_t>>);
static_assert(has_set_if<custody::Store<std::int64_t>>);
static_assert(!has_set_if<custody::Getter<std::int64_t>>);
static_assert(custody::to_string(set_status::conflict) == "conflict");

TEST(StoreSetIf, AcceptedWhileTheStoreIsAtTheExpectedVersion) {
  auto made = make_store<std::int64_t>(5);
  std::jthread task([&](std::stop_token st) { accept_until_stopped(made.owner, st); });

  const auto [value, version] = made.store.get_versioned();
  const auto r = made.store.set_if(version, value + 1);
  ASSERT_EQ(r.status(), set_status::accepted);
  EXPECT_EQ(r.value(), 6);
  EXPECT_EQ(r.version(), version + 1);
  EXPECT_EQ(made.store.get(), 6);
}

TEST(StoreSetIf, ASetThatRacedWithAnotherIsAnsweredConflictAndStoresNothing) {
  auto made = make_store<std::int64_t>(5);
  std::jthread task([&](std::stop_token st) { accept_until_stopped(made.owner, st); });

  // Two read-modify-writes computed from the same reading: the first one wins.
  const auto [value, version] = made.store.get_versioned();
  ASSERT_EQ(made.store.set_if(version, value + 1).status(), set_status::accepted);
  const auto second = made.store.set_if_for(version, value + 10, 10s);
  EXPECT_EQ(second.status(), set_status::conflict);
  EXPECT_FALSE(second);
  EXPECT_EQ(made.store.get(), 6);

  // Read again, it goes through.
  const auto [now, now_version] = made.store.get_versioned();
  EXPECT_EQ(made.store.set_if_until(now_version, now + 10, std::chrono::steady_clock::now() + 10s)
                .status(),
            set_status::accepted);
  EXPECT_EQ(made.store.get(), 16);
}

TEST(StoreSetIf, TheOwnerSeesTheExpectedVersionAndAPlainSetHasNone) {
  auto made = make_store<std::int64_t>(0);
  auto requests = made.owner.requests();
  std::jthread setter([store = made.store] {
    (void)store.set_if(7, 1);
    (void)store.set(2);
  });
  auto conditional = requests.recv();
  ASSERT_TRUE(conditional);
  EXPECT_EQ(conditional->expected_version(), std::optional<std::uint64_t>(7));
  EXPECT_EQ(made.owner.accept(std::move(*conditional)), custody::status::ok);  // a conflict
  auto plain = requests.recv();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->expected_version(), std::nullopt);
  made.owner.accept(std::move(*plain));
  EXPECT_EQ(made.store.get(), 2);
}

TEST(StoreSetIf, AStopEndsAConditionalSetTheOwnerDoesNotAnswer) {
  auto made = make_store<std::int64_t>(0);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(made.store.set_if(1, 1, stop.get_token()).status(), set_status::stopped);
}

}  // namespace store_set_if_test
}  // namespace
