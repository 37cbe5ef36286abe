#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>

namespace {
namespace channel_test {

using namespace std::chrono_literals;
using custody::Channel;
using custody::Receiver;
using custody::Sender;
using custody::status;

// Counts live instances, so leftovers can be shown destroyed exactly once.
struct Counted {
  static inline std::atomic<int> live{0};
  int value;
  explicit Counted(int v) : value(v) { ++live; }
  Counted(Counted&& o) noexcept : value(o.value) { ++live; }
  Counted(const Counted&) = delete;
  ~Counted() { --live; }
};

// Its move throws on demand; the channel must stay consistent and the value with its sender.
struct Fragile {
  static inline std::atomic<bool> throw_on_move{false};
  int value;
  explicit Fragile(int v) : value(v) {}
  Fragile(Fragile&& o) : value(o.value) {
    if (throw_on_move) throw std::runtime_error("move failed");
  }
};

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
};

TEST(Channel, BufferedHoldsExactlyCapacity) {
  for (std::size_t cap : {1u, 2u, 3u, 7u, 64u, 100u}) {
    Channel<int> ch(cap);
    for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(ch.try_send(int(i)), status::ok);
    EXPECT_EQ(ch.try_send(-1), status::would_block);
    EXPECT_EQ(ch.size(), cap);
    EXPECT_EQ(ch.capacity(), cap);
    for (std::size_t i = 0; i < cap; ++i) {
      auto r = ch.try_recv();
      ASSERT_TRUE(r);
      EXPECT_EQ(*r, int(i));  // FIFO
    }
    EXPECT_EQ(ch.try_recv().status(), status::would_block);
  }
}

TEST(Channel, UnbufferedNeedsAReceiver) {
  Channel<int> ch;
  EXPECT_EQ(ch.try_send(1), status::would_block);
  EXPECT_EQ(ch.send_for(1, 20ms), status::timeout);
  EXPECT_EQ(ch.try_recv().status(), status::would_block);
  std::jthread receiver([rx = ch.receiver()]() mutable {
    auto r = rx.recv();
    EXPECT_EQ(*r, 5);
  });
  EXPECT_EQ(ch.send(5), status::ok);
}

TEST(Channel, UnbufferedSendReturnsOnlyAfterReceiverTookTheValue) {
  Channel<int> ch;
  std::atomic<bool> received{false};
  std::jthread receiver([&] {
    auto r = ch.recv();
    received = true;
    EXPECT_EQ(*r, 9);
  });
  ASSERT_EQ(ch.send(9), status::ok);
  // The hand-over happened inside send; the receiver thread may still be returning.
  receiver.join();
  EXPECT_TRUE(received);
}

TEST(Channel, UnbufferedReceiversWaitingTogetherEachTakeOneValue) {
  // The first receiver to block waits in the channel's own slot, the others in its queue;
  // every kind of send reaches one of them, and each value reaches exactly one.
  Channel<int> ch;
  constexpr int kReceivers = 4;
  std::vector<int> got(kReceivers, -1);
  std::latch started(kReceivers);
  {
    std::vector<std::jthread> receivers;
    for (int i = 0; i < kReceivers; ++i) {
      receivers.emplace_back([&, i] {
        started.count_down();
        auto r = ch.recv();
        ASSERT_TRUE(r) << custody::to_string(r.status());
        got[i] = *r;
      });
    }
    started.wait();
    ASSERT_EQ(ch.send(0), status::ok);
    int one = 1;
    ASSERT_EQ(custody::select(custody::on_send(Sender<int>(ch), one)).status, status::ok);
    while (ch.try_send(2) == status::would_block) std::this_thread::yield();  // one is waiting
    ASSERT_EQ(ch.send(3), status::ok);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Channel, CloseDrainsThenReportsClosed) {
  Channel<int> ch(4);
  ASSERT_EQ(ch.send(1), status::ok);
  ASSERT_EQ(ch.send(2), status::ok);
  EXPECT_TRUE(ch.close());
  EXPECT_FALSE(ch.close());  // the second close is reported, not undefined
  EXPECT_TRUE(ch.is_closed());
  EXPECT_EQ(ch.send(3), status::closed);
  EXPECT_EQ(*ch.recv(), 1);
  EXPECT_EQ(*ch.recv(), 2);
  auto r = ch.recv();
  EXPECT_FALSE(r);
  EXPECT_EQ(r.status(), status::closed);
  EXPECT_THROW((void)r.value(), std::logic_error);
}

TEST(Channel, EveryOperationOnAClosedUnbufferedChannelReportsClosed) {
  Channel<int> ch;
  EXPECT_TRUE(ch.close());
  EXPECT_FALSE(ch.close());
  EXPECT_EQ(ch.try_send(1), status::closed);
  EXPECT_EQ(ch.try_recv().status(), status::closed);
  EXPECT_EQ(ch.send(2), status::closed);
  EXPECT_EQ(ch.recv().status(), status::closed);
  EXPECT_EQ(ch.send_for(3, 1h), status::closed);
  EXPECT_EQ(ch.recv_for(1h).status(), status::closed);
}

TEST(Channel, CloseWakesBlockedReceiversAndSenders) {
  for (std::size_t cap : {0u, 1u}) {
    Channel<int> ch(cap);
    if (cap) {
      ASSERT_EQ(ch.send(0), status::ok);
    }
    Channel<int> empty(cap);
    std::latch started(4);
    std::vector<std::jthread> threads;
    std::atomic<int> closed_results{0};
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&] {
        started.count_down();
        if (empty.recv().status() == status::closed) ++closed_results;
      });
      threads.emplace_back([&, i] {
        started.count_down();
        int v = i + 100;
        const status s = ch.send(std::move(v));
        if (s == status::closed) {
          EXPECT_EQ(v, i + 100);
          ++closed_results;
        }
      });
    }
    started.wait();
    empty.close();
    // Senders on `ch`: a buffered one may have delivered nothing (full), unbuffered too.
    ch.close();
    threads.clear();
    EXPECT_EQ(closed_results, 4) << "capacity " << cap;
  }
}

TEST(Channel, FailedSendLeavesMoveOnlyValueWithCaller) {
  Channel<std::unique_ptr<int>> ch(1);
  ASSERT_EQ(ch.send(std::make_unique<int>(1)), status::ok);
  auto p = std::make_unique<int>(2);
  EXPECT_EQ(ch.try_send(std::move(p)), status::would_block);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(ch.send_for(std::move(p), 1ms), status::timeout);
  ASSERT_NE(p, nullptr);
  ch.close();
  EXPECT_EQ(ch.send(std::move(p)), status::closed);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 2);
  EXPECT_EQ(**ch.recv(), 1);
}

TEST(Channel, NonDefaultConstructibleElements) {
  Channel<NoDefault> ch(2);
  ASSERT_EQ(ch.send(NoDefault(3)), status::ok);
  EXPECT_EQ(ch.recv()->value, 3);
}

TEST(Channel, LeftoverValuesAreDestroyedExactlyOnceWithTheLastHandle) {
  for (std::size_t cap : {1u, 5u, 16u}) {
    {
      Channel<Counted> ch(cap);
      Receiver<Counted> rx = ch;
      for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(ch.send(Counted(int(i))), status::ok);
      ASSERT_EQ(Counted::live, int(cap));
      { auto r = rx.recv(); }
      EXPECT_EQ(Counted::live, int(cap) - 1);
    }
    EXPECT_EQ(Counted::live, 0);
  }
}

TEST(Channel, ThrowingMoveKeepsChannelConsistent) {
  Channel<Fragile> ch(2);
  ASSERT_EQ(ch.send(Fragile(1)), status::ok);
  Fragile f(2);
  Fragile::throw_on_move = true;
  EXPECT_THROW((void)ch.send(std::move(f)), std::runtime_error);
  EXPECT_EQ(f.value, 2);
  EXPECT_EQ(ch.size(), 1u);
  EXPECT_THROW((void)ch.recv(), std::runtime_error);
  EXPECT_EQ(ch.size(), 1u);  // the value stayed in the channel
  Fragile::throw_on_move = false;
  EXPECT_EQ(ch.recv()->value, 1);
  EXPECT_EQ(ch.send(std::move(f)), status::ok);
  EXPECT_EQ(ch.recv()->value, 2);
}

TEST(Channel, ThrowingMoveOnUnbufferedHandOver) {
  Channel<Fragile> ch;
  std::latch ready(1);
  std::jthread receiver([&] {
    ready.count_down();
    // Whichever side arrives second moves the value, so the throwing move may run here: the
    // exception then reaches this caller, the value stays with the sender, and we try again.
    for (;;) {
      try {
        auto r = ch.recv();
        EXPECT_EQ(r->value, 7);
        return;
      } catch (const std::runtime_error&) {
      }
    }
  });
  ready.wait();
  Fragile f(7);
  // Only the hand-over into a waiting receiver moves; make it throw once.
  Fragile::throw_on_move = true;
  status s = status::would_block;
  try {
    s = ch.send(std::move(f));
  } catch (const std::runtime_error&) {
    s = status::would_block;
  }
  Fragile::throw_on_move = false;
  if (s != status::ok) {
    EXPECT_EQ(f.value, 7);
    EXPECT_EQ(ch.send(std::move(f)), status::ok);
  }
}

TEST(Channel, RangeForReceivesUntilClosedAndDrained) {
  Channel<int> ch(8);
  std::jthread producer([tx = Sender<int>(ch)]() mutable {
    for (int i = 1; i <= 100; ++i) ASSERT_EQ(tx.send(i), status::ok);
    tx.close();
  });
  int sum = 0;
  Receiver<int> rx = ch;
  for (int v : rx) sum += v;
  EXPECT_EQ(sum, 5050);
}

TEST(Channel, RangeForWorksOnAChannelItself) {
  Channel<int> ch(4);
  for (int i = 1; i <= 4; ++i) ASSERT_EQ(ch.send(int{i}), status::ok);
  ch.close();
  int sum = 0;
  for (auto& v : ch) sum += v;
  EXPECT_EQ(sum, 10);
}

// Range-for receives straight into the iterator: no assignment after the channel let go of a
// value, so a throwing assignment cannot lose one.
struct AssignThrows {
  int value = 0;
  explicit AssignThrows(int v) noexcept : value(v) {}
  AssignThrows(AssignThrows&&) noexcept = default;
  AssignThrows& operator=(AssignThrows&&) { throw std::runtime_error("assignment"); }
};

TEST(Channel, RangeForKeepsEveryValueWhenAssignmentThrows) {
  Channel<AssignThrows> ch(4);
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(ch.send(AssignThrows(i)), status::ok);
  ch.close();
  std::vector<int> got;
  for (AssignThrows& v : Receiver<AssignThrows>(ch)) got.push_back(v.value);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
}

TEST(Channel, StopTokenWakesBlockedOperations) {
  for (std::size_t cap : {0u, 1u}) {
    Channel<int> ch(cap);
    std::stop_source stop;
    std::latch started(1);
    std::jthread receiver([&] {
      started.count_down();
      EXPECT_EQ(ch.recv(stop.get_token()).status(), status::stopped);
    });
    started.wait();
    stop.request_stop();
    receiver.join();
    EXPECT_EQ(ch.recv(stop.get_token()).status(), status::stopped);  // already stopped
    if (cap) {
      ASSERT_EQ(ch.send(1), status::ok);
    }
    int v = 2;
    EXPECT_EQ(ch.send(std::move(v), stop.get_token()), status::stopped);
    EXPECT_EQ(v, 2);
  }
}

// A fired stop is checked first, so that a loop of receives (or sends) stops even while its
// channel never runs dry; an expired deadline still lets a ready value through.
TEST(Channel, StopWinsOverAReadyValueAnExpiredDeadlineDoesNot) {
  Channel<int> ch(1);
  ASSERT_EQ(ch.send(1), status::ok);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(ch.recv(stop.get_token()).status(), status::stopped);
  EXPECT_EQ(ch.send(2, stop.get_token()), status::stopped);  // no room anyway; stop first
  EXPECT_EQ(ch.recv_for(0ms).status(), status::ok);
  EXPECT_EQ(ch.send(2, stop.get_token()), status::stopped);  // room now, but stopped
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.send_for(2, 0ms), status::ok);
}

TEST(Channel, TimeoutsHonourDeadlines) {
  Channel<int> ch;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_for(30ms).status(), status::timeout);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 30ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(ch.recv_until(std::chrono::steady_clock::now() - 1s).status(), status::timeout);
  // A huge timeout saturates instead of overflowing into the past.
  std::jthread sender([&] { ASSERT_EQ(ch.send(1), status::ok); });
  EXPECT_EQ(ch.recv_for(std::chrono::hours::max()).status(), status::ok);
}

TEST(Channel, NilHandlesThrow) {
  Receiver<int> rx;
  Sender<int> tx;
  EXPECT_FALSE(rx);
  EXPECT_THROW((void)rx.recv(), std::logic_error);
  EXPECT_THROW((void)tx.send(1), std::logic_error);
  EXPECT_THROW(tx.close(), std::logic_error);
}

TEST(Channel, SendHappensBeforeReceive) {
  // Plain (non-atomic) data published through the channel; the thread sanitizer checks the edge.
  Channel<std::vector<int>*> ch;
  std::vector<int> data;
  std::jthread producer([&] {
    data.assign(1000, 7);
    ASSERT_EQ(ch.send(&data), status::ok);
  });
  auto r = ch.recv();
  EXPECT_EQ(std::accumulate((*r)->begin(), (*r)->end(), 0), 7000);
}

// Every value sent with status ok is received exactly once; every other value stays with its
// sender. Stops and timeouts race values all the time here.
TEST(Channel, ConservationUnderStopsAndTimeouts) {
  for (std::size_t cap : {0u, 1u, 16u}) {
    Channel<int> ch(cap);
    constexpr int producers = 3, consumers = 3, per_producer = 3000;
    std::vector<std::vector<int>> sent(producers), got(consumers);
    std::atomic<int> producers_left{producers};
    {
      std::vector<std::jthread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
          for (int i = 0; i < per_producer; ++i) {
            int v = p * per_producer + i;
            std::stop_source stop;
            if (i % 7 == 0) stop.request_stop();
            const status s = i % 3 ? ch.send(std::move(v), stop.get_token())
                                   : ch.send_for(std::move(v), std::chrono::microseconds(i % 50));
            if (s == status::ok)
              sent[p].push_back(p * per_producer + i);
            else
              EXPECT_EQ(v, p * per_producer + i);  // not lost
          }
          if (--producers_left == 0) ch.close();
        });
      }
      for (int c = 0; c < consumers; ++c) {
        threads.emplace_back([&, c] {
          for (int i = 0;; ++i) {
            auto r = i % 2 ? ch.recv_for(std::chrono::microseconds(i % 40)) : ch.recv();
            if (r)
              got[c].push_back(*r);
            else if (r.status() == status::closed)
              break;
          }
        });
      }
    }
    std::multiset<int> all_sent, all_got;
    for (auto& v : sent) all_sent.insert(v.begin(), v.end());
    for (auto& v : got) all_got.insert(v.begin(), v.end());
    EXPECT_EQ(all_sent, all_got) << "capacity " << cap;
    EXPECT_GT(all_sent.size(), 0u);
  }
}

TEST(Channel, ManyProducersManyConsumersLoseNothing) {
  for (std::size_t cap : {0u, 1u, 3u, 1024u}) {
    Channel<long> ch(cap);
    constexpr int producers = 4, consumers = 4;
    constexpr long per_producer = 20000;
    std::atomic<long> sum{0}, count{0};
    std::atomic<int> left{producers};
    {
      std::vector<std::jthread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&] {
          for (long i = 1; i <= per_producer; ++i) ASSERT_EQ(ch.send(i), status::ok);
          if (--left == 0) ch.close();
        });
      }
      for (int c = 0; c < consumers; ++c) {
        threads.emplace_back([&] {
          for (long v : ch.receiver()) {
            sum += v;
            ++count;
          }
        });
      }
    }
    EXPECT_EQ(count, producers * per_producer);
    EXPECT_EQ(sum, producers * per_producer * (per_producer + 1) / 2);
  }
}

TEST(Channel, BlockedReceiverUsesAlmostNoCpu) {
  Channel<int> ch;
  rusage before{}, after{};
  std::jthread waiter([&] {
    getrusage(RUSAGE_THREAD, &before);
    EXPECT_EQ(ch.recv_for(1s).status(), status::timeout);
    getrusage(RUSAGE_THREAD, &after);
  });
  waiter.join();
  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 +
           r.ru_stime.tv_usec;
  };
  EXPECT_LT(cpu(after) - cpu(before), 100000) << "microseconds of CPU while blocked for 1 s";
}

}  // namespace channel_test
}  // namespace
