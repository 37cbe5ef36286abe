// get() and joint snapshots: never torn, never mixed, never waiting for the owner.

#include <array>
#include <atomic>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/store.hpp>

namespace {
namespace store_snapshot_test {

using custody::make_store;
using custody::status;

struct Pair {  // trivially copyable: the seqlock kind
  double a;
  double b;
};

struct Wide {  // trivially copyable and larger than a cache line
  std::array<std::int64_t, 24> words;
};

struct Text {  // not trivially copyable: the pinned kind
  std::string name;
  std::int64_t n;
};

Text text_for(std::int64_t n) {
  // Longer than the small-string buffer, so copies allocate and a torn copy would show.
  return Text{"value-" + std::to_string(n) + std::string(static_cast<std::size_t>(n % 40), '#'), n};
}

bool consistent(const Text& t) { return t.name == text_for(t.n).name; }

constexpr int reads_per_reader = 100'000;

template <class T, class Make, class Check>
void readers_never_see_a_torn_value(Make make, Check check) {
  auto made = make_store<T>(make(0));
  auto& owner = made.owner;
  auto& store = made.store;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::jthread publisher([&, &owner = owner] {
    for (std::int64_t i = 1; !done.load(std::memory_order_relaxed); ++i) owner.publish(make(i));
  });
  {
    std::vector<std::jthread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&, g = custody::Getter<T>(store)] {
        for (int i = 0; i < reads_per_reader; ++i) {
          if (!check(g.get())) ++torn;
        }
      });
    }
  }
  done = true;
  EXPECT_EQ(torn.load(), 0);
}

TEST(StoreSnapshot, TriviallyCopyableValuesAreNeverTorn) {
  readers_never_see_a_torn_value<Pair>(
      [](std::int64_t i) {
        return Pair{static_cast<double>(i), -static_cast<double>(i)};
      },
      [](const Pair& p) { return p.a == -p.b; });
}

TEST(StoreSnapshot, WideValuesAreNeverTorn) {
  readers_never_see_a_torn_value<Wide>(
      [](std::int64_t i) {
        Wide w;
        w.words.fill(i);
        return w;
      },
      [](const Wide& w) {
        for (auto x : w.words) {
          if (x != w.words[0]) return false;
        }
        return true;
      });
}

TEST(StoreSnapshot, StringValuesAreNeverTorn) {
  readers_never_see_a_torn_value<Text>(text_for, consistent);
}

TEST(StoreSnapshot, ReadCallbacksSeeConsistentValues) {
  auto made = make_store<Text>(text_for(0));
  auto& owner = made.owner;
  auto& store = made.store;
  std::atomic<bool> done{false};
  std::jthread publisher([&, &owner = owner] {
    for (std::int64_t i = 1; !done.load(std::memory_order_relaxed); ++i) {
      owner.update([i](Text& t) { t = text_for(i); });
    }
  });
  int bad = 0;
  for (int i = 0; i < reads_per_reader; ++i) {
    if (!store.read([](const Text& t) { return consistent(t); })) ++bad;
  }
  done = true;
  EXPECT_EQ(bad, 0);
}

TEST(StoreSnapshot, GetNeverWaitsForTheOwnersWork) {
  auto made = make_store<Text>(text_for(1));
  auto& owner = made.owner;
  auto& store = made.store;
  std::latch device_call_started(1);
  std::latch device_call_may_end(1);
  std::jthread task([&, &owner = owner] {
    auto request = owner.requests().recv();
    ASSERT_TRUE(request);
    owner.publish(text_for(2));
    device_call_started.count_down();
    device_call_may_end.wait();  // a slow device call, with a request pending
    owner.accept(std::move(*request));
  });
  std::jthread setter([&] { EXPECT_TRUE(store.set(text_for(3))); });
  device_call_started.wait();
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(store.get().n, 2);
  device_call_may_end.count_down();
  setter.join();
  EXPECT_EQ(store.get().n, 3);
}

// The seed's car example: the device call updates car data and car status together.
struct CarData {
  double speed;
  std::int64_t sample;
};
struct CarStatus {
  std::string state;
  std::int64_t sample;
};

TEST(StoreSnapshot, JointSnapshotsAreNeverMixed) {
  auto data_made = make_store(CarData{0, 0});
  auto& data_owner = data_made.owner;
  auto& data = data_made.store;
  auto status_made = make_store(CarStatus{"sample 0", 0});
  auto& status_owner = status_made.owner;
  auto& status = status_made.store;
  auto third_made = make_store<std::int64_t>(0);
  auto& third_owner = third_made.owner;
  auto& third = third_made.store;
  std::atomic<bool> done{false};
  std::jthread device([&, &d = data_owner, &s = status_owner, &t = third_owner] {
    auto both = custody::joint(d, s, t);
    for (std::int64_t i = 1; !done.load(std::memory_order_relaxed); ++i) {
      if (i % 2 == 0) {
        both.publish(CarData{i * 1.5, i}, CarStatus{"sample " + std::to_string(i), i}, i);
      } else {
        both.update([i](CarData& cd, CarStatus& cs, std::int64_t& n) {
          cd = CarData{i * 1.5, i};
          cs.state = "sample " + std::to_string(i);
          cs.sample = i;
          n = i;
        });
      }
    }
  });
  std::atomic<int> mixed{0};
  {
    std::vector<std::jthread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&, g1 = custody::Getter<CarData>(data),
                            g2 = custody::Getter<CarStatus>(status),
                            g3 = custody::Getter<std::int64_t>(third)] {
        for (int i = 0; i < reads_per_reader / 2; ++i) {
          auto [d, s, n] = custody::snapshot(g1, g2, g3);
          if (d.sample != s.sample || d.sample != n || d.speed != d.sample * 1.5 ||
              s.state != "sample " + std::to_string(s.sample)) {
            if (mixed++ == 0) {
              ADD_FAILURE() << "mixed snapshot: data " << d.sample << " (" << d.speed
                            << "), status " << s.sample << " '" << s.state << "', third " << n;
            }
          }
        }
      });
    }
  }
  done = true;
  EXPECT_EQ(mixed.load(), 0);
}

TEST(StoreSnapshot, JointSnapshotsIncludeTheOwnerAndRepeatedStores) {
  auto a_made = make_store<std::int64_t>(1);
  auto& a_owner = a_made.owner;
  auto& a = a_made.store;
  auto b_made = make_store<Text>(text_for(1));
  auto& b = b_made.store;
  auto [x, y, z] = custody::snapshot(a_owner, b, a);
  EXPECT_EQ(x, 1);
  EXPECT_EQ(y.n, 1);
  EXPECT_EQ(z, 1);
}

TEST(StoreSnapshot, JointChangesNotifyEachStoresSubscribers) {
  auto a_made = make_store<std::int64_t>(0);
  auto& a_owner = a_made.owner;
  auto& a = a_made.store;
  auto b_made = make_store<Text>(text_for(0));
  auto& b_owner = b_made.owner;
  auto& b = b_made.store;
  auto sa = a.subscribe(custody::policy::block(4));
  auto sb = b.subscribe(custody::policy::latest());
  auto both = custody::joint(a_owner, b_owner);
  EXPECT_EQ(both.publish(5, text_for(5)), status::ok);
  EXPECT_EQ(both.update([](std::int64_t& x, Text& t) {
    x += 1;
    t = text_for(x);
  }),
            status::ok);
  EXPECT_EQ(both.update([](std::int64_t&, Text&) { return false; }), status::ok);
  EXPECT_EQ(*sa.try_recv(), 5);
  EXPECT_EQ(*sa.try_recv(), 6);
  EXPECT_EQ(sa.try_recv().status(), status::would_block);
  EXPECT_EQ(sb.try_recv()->n, 6);
  EXPECT_EQ(a.get(), 6);
  EXPECT_EQ(b.get().n, 6);
  b_owner.close();
  EXPECT_EQ(both.publish(7, text_for(7)), status::closed);
  EXPECT_EQ(a.get(), 6);
}

TEST(StoreSnapshot, JointRejectsTheSameStoreTwice) {
  auto made = make_store<std::int64_t>(0);
  auto& owner = made.owner;
  EXPECT_THROW((void)custody::joint(owner, owner), std::invalid_argument);
}

TEST(StoreSnapshot, GetKeepsTheLastValueAfterTheOwnerIsGone) {
  custody::Store<Text> store;
  {
    auto made = make_store<Text>(text_for(1));
    store = made.store;
    made.owner.publish(text_for(8));
  }
  EXPECT_TRUE(store.owner_gone());
  EXPECT_EQ(store.get().n, 8);
}

}  // namespace store_snapshot_test
}  // namespace
