#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <custody/select.hpp>

namespace {
namespace select_test {

using namespace std::chrono_literals;
using custody::Channel;
using custody::on_deadline;
using custody::on_default;
using custody::on_recv;
using custody::on_send;
using custody::on_stop;
using custody::on_timeout;
using custody::Receiver;
using custody::select;
using custody::Sender;
using custody::status;

TEST(Select, ChoosesUniformlyAmongReadyCases) {
  Channel<int> a(1), b(1);
  ASSERT_EQ(a.send(0), status::ok);
  ASSERT_EQ(b.send(1), status::ok);
  constexpr int rounds = 100000;
  int wins[2] = {0, 0};
  for (int i = 0; i < rounds; ++i) {
    const auto r = select(on_recv(a, [&](int v) { ASSERT_EQ(a.send(std::move(v)), status::ok); }),
                          on_recv(b, [&](int v) { ASSERT_EQ(b.send(std::move(v)), status::ok); }));
    ASSERT_EQ(r.status, status::ok);
    ++wins[r.index];
  }
  EXPECT_NEAR(wins[0] / double(rounds), 0.5, 0.02);
  EXPECT_NEAR(wins[1] / double(rounds), 0.5, 0.02);
}

TEST(Select, UniformWithANeverReadyCaseInBetween) {
  Channel<int> a(1), never, b(1);
  ASSERT_EQ(a.send(0), status::ok);
  ASSERT_EQ(b.send(1), status::ok);
  constexpr int rounds = 30000;
  int wins[3] = {0, 0, 0};
  for (int i = 0; i < rounds; ++i) {
    const auto r = select(on_recv(a, [&](int v) { ASSERT_EQ(a.send(std::move(v)), status::ok); }),
                          on_recv(never, [](int) {}),
                          on_recv(b, [&](int v) { ASSERT_EQ(b.send(std::move(v)), status::ok); }));
    ++wins[r.index];
  }
  EXPECT_EQ(wins[1], 0);
  EXPECT_NEAR(wins[0] / double(rounds), 0.5, 0.03);
}

TEST(Select, DefaultRunsWhenNothingIsReady) {
  Channel<int> a;
  bool ran = false;
  const auto r = select(on_recv(a, [](int) { FAIL(); }), on_default([&] { ran = true; }));
  EXPECT_TRUE(ran);
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.status, status::would_block);
}

TEST(Select, SendCaseMovesOnlyWhenItCommits) {
  Channel<std::unique_ptr<int>> full(1), ready(1);
  ASSERT_EQ(full.send(std::make_unique<int>(0)), status::ok);
  ASSERT_EQ(ready.send(std::make_unique<int>(1)), status::ok);
  auto mine = std::make_unique<int>(42);
  const auto r = select(on_send(full, mine, [] { FAIL(); }),
                        on_recv(ready, [](std::unique_ptr<int> p) { EXPECT_EQ(*p, 1); }));
  EXPECT_EQ(r.index, 1u);
  ASSERT_NE(mine, nullptr);  // not given to the case that did not commit
  (void)full.recv();
  bool sent = false;
  EXPECT_EQ(select(on_send(full, mine, [&] { sent = true; })).status, status::ok);
  EXPECT_TRUE(sent);
  EXPECT_EQ(mine, nullptr);
  EXPECT_EQ(**full.recv(), 42);
}

TEST(Select, DisabledAndNilCasesNeverFire) {
  Channel<int> a(1);
  ASSERT_EQ(a.send(1), status::ok);
  Receiver<int> nil;
  const auto r = select(on_recv(a, [](int) { FAIL(); }).when(false), on_recv(nil, [](int) {}),
                        on_timeout(5ms));
  EXPECT_EQ(r.status, status::timeout);
  EXPECT_EQ(r.index, 2u);
  EXPECT_THROW(select(on_recv(nil, [](int) {})), std::logic_error);
}

TEST(Select, ClosedChannelCommitsItsCase) {
  Channel<int> a;
  a.close();
  bool closed = false;
  const auto r = select(on_recv(
                            a, [](int) { FAIL(); }, [&] { closed = true; }),
                        on_timeout(1s));
  EXPECT_EQ(r.index, 0u);
  EXPECT_EQ(r.status, status::closed);
  EXPECT_TRUE(closed);
  int v = 3;
  const auto s = select(on_send(a, v));
  EXPECT_EQ(s.status, status::closed);
  EXPECT_EQ(v, 3);
}

TEST(Select, StopAndDeadlineCases) {
  Channel<int> a;
  std::stop_source stop;
  std::latch waiting(1);
  std::jthread stopper([&] {
    waiting.wait();
    stop.request_stop();
  });
  bool stopped = false;
  waiting.count_down();
  auto r = select(on_recv(a, [](int) { FAIL(); }),
                  on_stop(stop.get_token(), [&] { stopped = true; }), on_timeout(1h));
  EXPECT_EQ(r.status, status::stopped);
  EXPECT_EQ(r.index, 1u);
  EXPECT_TRUE(stopped);
  r = select(on_recv(a, [](int) { FAIL(); }), on_deadline(std::chrono::steady_clock::now() + 10ms));
  EXPECT_EQ(r.status, status::timeout);
}

TEST(Select, OneUnbufferedReceiveCaseTakesEveryValueOnce) {
  // The seed's loop: one channel and a done signal. Senders alternate plain sends and sends
  // from a select; each value must reach the handler exactly once.
  Channel<int> a;
  std::stop_source stop;
  constexpr int n = 2000;
  std::jthread sender([tx = a.sender()]() mutable {
    for (int i = 1; i <= n; ++i) {
      int v = i;
      const status s = i % 2 ? tx.send(i) : select(on_send(tx, v)).status;
      ASSERT_EQ(s, status::ok);
    }
  });
  long long sum = 0;
  for (int i = 0; i < n; ++i) {
    const auto r = select(on_recv(a, [&](int v) { sum += v; }), on_stop(stop.get_token()));
    ASSERT_EQ(r.index, 0u);
    ASSERT_EQ(r.status, status::ok);
  }
  EXPECT_EQ(sum, 1LL * n * (n + 1) / 2);
}

TEST(Select, BlocksUntilAPeerArrivesOnAnyCase) {
  for (std::size_t cap : {0u, 4u}) {
    Channel<int> a(cap), b(cap), out(cap);
    std::jthread peer([&] {
      auto v = out.recv();  // the select below offers a send on `out`, or receives from a/b
      if (v) {
        EXPECT_EQ(*v, 77);
      } else {
        ASSERT_EQ(b.send(5), status::ok);
      }
    });
    int offer = 77;
    int got = -1;
    const auto r = select(on_recv(a, [&](int v) { got = v; }), on_recv(b, [&](int v) { got = v; }),
                          on_send(out, offer, [&] { got = 0; }));
    EXPECT_EQ(r.status, status::ok);
    if (r.index == 2) {
      EXPECT_EQ(got, 0);
    }
    out.close();
  }
}

TEST(Select, SelectMeetsSelectOnUnbufferedChannels) {
  Channel<int> ch;
  std::stop_source stop;
  std::jthread sender([&] {
    for (int i = 0; i < 2000; ++i) {
      int v = i;
      ASSERT_EQ(select(on_send(ch, v), on_stop(stop.get_token())).status, status::ok);
    }
  });
  long sum = 0;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(select(on_recv(ch, [&](int v) { sum += v; }), on_timeout(10s)).status, status::ok);
  }
  EXPECT_EQ(sum, 1999L * 2000 / 2);
}

TEST(Select, SendAndReceiveOnTheSameChannelNeverMatchThemselves) {
  Channel<int> ch;
  int v = 1;
  const auto r = select(on_send(ch, v), on_recv(ch, [](int) { FAIL(); }), on_timeout(20ms));
  EXPECT_EQ(r.status, status::timeout);
  EXPECT_EQ(v, 1);
}

// Values are never lost when timeouts race them: every value sent is received exactly once.
TEST(Select, ConservationWithTimeoutsRacingValues) {
  for (std::size_t cap : {0u, 2u}) {
    Channel<int> a(cap), b(cap);
    constexpr int per_sender = 4000;
    std::vector<int> sent_a, sent_b;
    std::jthread pa([&] {
      for (int i = 0; i < per_sender; ++i) {
        int v = i;
        if (select(on_send(a, v), on_timeout(std::chrono::microseconds(i % 30))).status ==
            status::ok) {
          sent_a.push_back(i);
        } else {
          EXPECT_EQ(v, i);
        }
      }
      a.close();
    });
    std::jthread pb([&] {
      for (int i = 0; i < per_sender; ++i) {
        if (b.send_for(i + per_sender, std::chrono::microseconds(i % 20)) == status::ok) {
          sent_b.push_back(i + per_sender);
        }
      }
      b.close();
    });
    std::multiset<int> got;
    bool a_open = true, b_open = true;
    while (a_open || b_open) {
      select(on_recv(
                 a, [&](int v) { got.insert(v); }, [&] { a_open = false; })
                 .when(a_open),
             on_recv(
                 b, [&](int v) { got.insert(v); }, [&] { b_open = false; })
                 .when(b_open),
             on_timeout(std::chrono::microseconds(15)));
    }
    pa.join();
    pb.join();
    std::multiset<int> sent(sent_a.begin(), sent_a.end());
    sent.insert(sent_b.begin(), sent_b.end());
    EXPECT_EQ(got, sent) << "capacity " << cap;
  }
}

TEST(Select, ManyCasesBeyondTheInlineBuffer) {
  std::vector<Channel<int>> chans;
  for (int i = 0; i < 12; ++i) chans.emplace_back(1);
  ASSERT_EQ(chans[11].send(11), status::ok);
  int got = -1;
  auto fn = [&](int v) { got = v; };
  const auto r = select(on_recv(chans[0], fn), on_recv(chans[1], fn), on_recv(chans[2], fn),
                        on_recv(chans[3], fn), on_recv(chans[4], fn), on_recv(chans[5], fn),
                        on_recv(chans[6], fn), on_recv(chans[7], fn), on_recv(chans[8], fn),
                        on_recv(chans[9], fn), on_recv(chans[10], fn), on_recv(chans[11], fn));
  EXPECT_EQ(r.index, 11u);
  EXPECT_EQ(got, 11);
}

// A fired stop is a ready case like Go's closed `done`: a loop whose input never runs dry
// stops within a few rounds, and the stop does not always win either (uniform choice).
TEST(Select, AFiredStopIsChosenUniformlyAmongReadyCases) {
  Channel<int> input(1);
  ASSERT_EQ(input.send(0), status::ok);
  std::stop_source stop;
  stop.request_stop();
  constexpr int rounds = 4000;
  int stops = 0;
  for (int i = 0; i < rounds; ++i) {
    const auto r =
        select(on_recv(input, [&](int v) { ASSERT_EQ(input.send(std::move(v)), status::ok); }),
               on_stop(stop.get_token()));
    if (r.status == status::stopped) {
      ASSERT_EQ(r.index, 1u);
      ++stops;
    }
  }
  EXPECT_NEAR(stops / double(rounds), 0.5, 0.05);
}

TEST(Select, ABusyLoopStopsWithinAFewRoundsOfTheStop) {
  Channel<int> input(64);
  for (int i = 0; i < 64; ++i) ASSERT_EQ(input.send(int{i}), status::ok);
  std::stop_source stop;
  int rounds_after_stop = 0;
  for (int round = 0;; ++round) {
    if (round == 100) stop.request_stop();
    if (stop.stop_requested()) ++rounds_after_stop;
    const auto r =
        select(on_recv(input, [&](int v) { ASSERT_EQ(input.send(std::move(v)), status::ok); }),
               on_stop(stop.get_token()), on_timeout(1h));
    if (r.status == status::stopped) break;
    ASSERT_EQ(r.status, status::ok);
  }
  // Each round stops with probability 1/2: 40 rounds fail to stop once in 2^40 runs.
  EXPECT_LE(rounds_after_stop, 40);
}

// A by-value callable of a receive case moves the value once more after the commit; for a
// type whose move may throw the callable takes it by reference instead, and it stays put.
struct throwing_move {
  int value = 0;
  bool fail = false;
  explicit throwing_move(int v) : value(v) {}
  throwing_move(throwing_move&& other) : value(other.value), fail(other.fail) {
    if (fail) throw std::runtime_error("move");
  }
  throwing_move& operator=(throwing_move&&) = default;
};

TEST(Select, ATypeWhoseMoveMayThrowIsHandedOverByReference) {
  auto by_rvalue = [](throwing_move&&) {};
  auto by_const_ref = [](const throwing_move&) {};
  auto by_value = [](throwing_move) {};
  EXPECT_FALSE((custody::detail::takes_by_value<throwing_move, decltype(by_rvalue)>()));
  EXPECT_FALSE((custody::detail::takes_by_value<throwing_move, decltype(by_const_ref)>()));
  EXPECT_TRUE((custody::detail::takes_by_value<throwing_move, decltype(by_value)>()));
  EXPECT_TRUE((custody::detail::takes_by_value<throwing_move, void (*)(const throwing_move)>()));

  Channel<throwing_move> ch(2);
  ASSERT_EQ(ch.send(throwing_move(7)), status::ok);
  int got = 0;
  const auto r = select(on_recv(ch, [&](throwing_move&& v) {
    v.fail = true;  // a move now would throw: the select must not make one
    got = v.value;
  }));
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(got, 7);
}

TEST(SelectList, ReceivesFromARuntimeListOfChannels) {
  constexpr std::size_t n = 12;  // more cases than a select keeps on its stack
  std::vector<Channel<int>> chans;
  for (std::size_t i = 0; i < n; ++i) chans.emplace_back(1);
  std::vector<std::optional<int>> got(n);
  custody::select_list cases;
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(cases.add_recv(Receiver<int>(chans[i]), got[i]), i);
  }
  EXPECT_EQ(cases.size(), n);
  EXPECT_EQ(cases.try_select().status, status::would_block);
  EXPECT_EQ(cases.try_select().index, custody::select_list::none);

  std::jthread sender([&] { ASSERT_EQ(chans[9].send(90), status::ok); });
  const custody::selected r = cases.select();
  EXPECT_EQ(r.index, 9u);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(got[9], 90);

  chans[3].close();
  EXPECT_EQ(cases.select().index, 3u);  // closed and drained
  cases.enable(3, false);
  EXPECT_EQ(cases.select_for(1ms).status, status::timeout);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(cases.select(stop.get_token()).status, status::stopped);
}

TEST(SelectList, SendsMoveOnlyTheCommittedValue) {
  Channel<std::unique_ptr<int>> a(1), b(0);
  auto va = std::make_unique<int>(1);
  auto vb = std::make_unique<int>(2);
  custody::select_list cases;
  const std::size_t ia = cases.add_send(Sender<std::unique_ptr<int>>(a), va);
  const std::size_t ib = cases.add_send(Sender<std::unique_ptr<int>>(b), vb);
  const custody::selected r = cases.select();
  EXPECT_EQ(r.index, ia);  // b has no receiver waiting
  EXPECT_EQ(va, nullptr);
  ASSERT_NE(vb, nullptr);
  cases.enable(ia, false);
  EXPECT_EQ(cases.try_select().status, status::would_block);
  b.close();
  EXPECT_EQ(cases.select().index, ib);
  EXPECT_EQ(*vb, 2);  // closed: untouched
  cases.clear();
  EXPECT_THROW(cases.select(), std::logic_error);  // nothing could ever wake it
}

}  // namespace select_test
}  // namespace
