// A buffered channel hands a value straight to a waiting receiver when its ring is empty, and a
// receive that makes room pushes a waiting sender's value for it (detail/chan_core.hpp,
// buffered_core). Each test tells the direct path from the ring by how often the value moved,
// or by which thread first moved it.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/inspect.hpp>
#include <custody/select.hpp>

#include "support/inspection.hpp"

namespace {
namespace buffered_handover_test {

using custody::Channel;
using custody::status;
using custody_test::find;
using custody_test::inspect_until;

// Remembers how often it was moved, the thread that made it and the thread that first moved
// it: a value that passes the ring is moved once more than one handed over, and a value a
// receiver pushed for its sender was first moved by that receiver.
struct traced {
  int sender = 0;
  int seq = 0;
  int moves = 0;
  std::thread::id origin = std::this_thread::get_id();
  std::thread::id first_mover{};

  traced(int from, int n) : sender(from), seq(n) {}
  traced(traced&& other) noexcept
      : sender(other.sender),
        seq(other.seq),
        moves(other.moves + 1),
        origin(other.origin),
        first_mover(other.moves == 0 ? std::this_thread::get_id() : other.first_mover) {}
  traced& operator=(traced&&) = delete;
  traced(const traced&) = delete;
};
// The lock-free ring, the one that hands over.
static_assert(std::is_nothrow_move_constructible_v<traced>);

// Receives one value with recv(), or (`selecting`) with a select whose other case, on `idle`,
// never fires; nothing once `ch` is closed and drained.
std::optional<traced> receive_one(Channel<traced>& ch, bool selecting, Channel<traced>& idle) {
  std::optional<traced> v;
  if (!selecting) {
    auto in = ch.recv();
    if (in) v.emplace(std::move(*in));
    return v;
  }
  custody::select(custody::on_recv(ch, [&](traced&& x) { v.emplace(std::move(x)); }),
                  custody::on_recv(idle, [](traced&&) {}));
  return v;
}

// How often receive_one moves a value that went through the ring.
int moves_through_ring(bool selecting) {
  Channel<traced> ch(1);
  Channel<traced> idle(1);
  EXPECT_EQ(ch.try_send(traced(0, 0)), status::ok);
  return receive_one(ch, selecting, idle)->moves;
}

// Waits until `name` has `n` blocked receivers (or senders): they have registered.
void wait_blocked(const std::string& name, std::size_t n, bool senders = false) {
  inspect_until([&](const custody::inspection& i) {
    const custody::channel_report* c = find(i.channels, name);
    return c && (senders ? c->senders : c->receivers).size() == n;
  });
}

class BufferedHandOver : public ::testing::TestWithParam<std::size_t> {};

TEST_P(BufferedHandOver, ABlockedReceiverIsHandedTheValueAndBothEndsCountIt) {
  const int ring_moves = moves_through_ring(false);
  Channel<traced> ch(GetParam(), "handover");
  Channel<traced> idle(1);
  int received_moves = 0;
  std::thread receiver([&] {
    const std::optional<traced> v = receive_one(ch, false, idle);
    ASSERT_TRUE(v);
    received_moves = v->moves;
  });
  wait_blocked("handover", 1);
  ASSERT_EQ(ch.try_send(traced(1, 1)), status::ok);
  // It never entered the ring: room for a whole buffer remains at once.
  EXPECT_EQ(ch.size(), 0u);
  for (std::size_t i = 0; i < GetParam(); ++i) EXPECT_EQ(ch.try_send(traced(1, 2)), status::ok);
  EXPECT_EQ(ch.try_send(traced(1, 3)), status::would_block);
  receiver.join();
  EXPECT_EQ(received_moves, ring_moves - 1);
  const custody::inspection now = custody::inspect();
  const custody::channel_report* c = find(now.channels, "handover");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sends, 1u + GetParam());
  EXPECT_EQ(c->receives, 1u);
  EXPECT_EQ(c->length, GetParam());
}

TEST_P(BufferedHandOver, AReceiveThatMakesRoomPushesTheBlockedSendersValue) {
  Channel<traced> ch(GetParam(), "refill");
  for (std::size_t i = 0; i < GetParam(); ++i) ASSERT_EQ(ch.try_send(traced(0, 0)), status::ok);
  status sent = status::would_block;
  std::thread sender([&] { sent = ch.send(traced(1, 1)); });
  wait_blocked("refill", 1, /*senders=*/true);
  ASSERT_TRUE(ch.recv());
  // Pushed by this receive: the ring is full again at once.
  EXPECT_EQ(ch.size(), GetParam());
  EXPECT_EQ(ch.try_send(traced(2, 2)), status::would_block);
  sender.join();
  EXPECT_EQ(sent, status::ok);
  for (std::size_t i = 1; i < GetParam(); ++i) ASSERT_TRUE(ch.recv());
  auto last = ch.recv();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->sender, 1);
  EXPECT_EQ(last->first_mover, std::this_thread::get_id());
  EXPECT_NE(last->first_mover, last->origin);
  const custody::inspection now = custody::inspect();
  const custody::channel_report* c = find(now.channels, "refill");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->sends, GetParam() + 1);
  EXPECT_EQ(c->receives, GetParam() + 1);
}

INSTANTIATE_TEST_SUITE_P(Capacities, BufferedHandOver, ::testing::Values(1u, 2u));

TEST(BufferedHandOverSelect, TheClaimedSelectCommitsOneCaseAndTheOtherKeepsItsValue) {
  const int ring_moves = moves_through_ring(true);
  Channel<traced> a(1, "select-a");
  Channel<traced> b(1, "select-b");
  std::optional<traced> got;
  std::size_t index = 99;
  std::thread chooser([&] {
    const auto r =
        custody::select(custody::on_recv(a, [&](traced&& v) { got.emplace(std::move(v)); }),
                        custody::on_recv(b, [&](traced&& v) { got.emplace(std::move(v)); }));
    index = r.index;
  });
  wait_blocked("select-a", 1);
  wait_blocked("select-b", 1);
  ASSERT_EQ(a.try_send(traced(1, 1)), status::ok);
  EXPECT_EQ(a.size(), 0u);  // handed over
  // The chooser is claimed by a: b must keep its value in the ring, not hand it to the chooser.
  ASSERT_EQ(b.try_send(traced(2, 1)), status::ok);
  EXPECT_EQ(b.size(), 1u);
  chooser.join();
  EXPECT_EQ(index, 0u);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sender, 1);
  EXPECT_EQ(got->moves, ring_moves - 1);
  auto kept = b.try_recv();
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->sender, 2);
}

// A hand-over racing close(): the send is ok exactly when the blocked receiver gets its value;
// otherwise both see closed. Rounds go on until both outcomes were seen (the race happened both
// ways).
TEST(BufferedHandOverClose, CloseRacingAHandOverLosesNothing) {
  int delivered = 0, refused = 0;
  for (int round = 0; round < 20'000 && (delivered < 3 || refused < 3); ++round) {
    Channel<traced> ch(1, "close-race");
    status received_status = status::would_block;
    int received_seq = -1;
    std::thread receiver([&] {
      auto r = ch.recv();
      received_status = r.status();
      if (r) received_seq = r->seq;
    });
    wait_blocked("close-race", 1);
    std::latch go(2);
    status sent = status::would_block;
    std::thread sender([&] {
      go.arrive_and_wait();
      sent = ch.send(traced(1, round));
    });
    go.arrive_and_wait();
    ch.close();
    sender.join();
    receiver.join();
    if (sent == status::ok) {
      ++delivered;
      ASSERT_EQ(received_status, status::ok);
      ASSERT_EQ(received_seq, round);
    } else {
      ++refused;
      ASSERT_EQ(sent, status::closed);
      ASSERT_EQ(received_status, status::closed);
    }
    // Nothing was left behind in the ring, and the closed channel stays closed.
    ASSERT_EQ(ch.size(), 0u);
    ASSERT_EQ(ch.recv().status(), status::closed);
    ASSERT_EQ(ch.try_send(traced(1, 0)), status::closed);
  }
  EXPECT_GE(delivered, 3);
  EXPECT_GE(refused, 3);
}

// Four senders and four receivers (two of them selecting) on capacity 1 and 2: every value is
// received exactly once, each receiver sees each sender's values in order, and values went
// both ways, handed over and through the ring, and by a receiver pushing for a sender.
class BufferedHandOverStress : public ::testing::TestWithParam<std::size_t> {};

TEST_P(BufferedHandOverStress, EveryValueOnceInSenderOrder) {
  constexpr int senders = 4, receivers = 4, per_sender = 5'000;
  const int ring_moves[2] = {moves_through_ring(false), moves_through_ring(true)};
  std::int64_t handed = 0, through_ring = 0, pushed_for_sender = 0;
  for (int round = 0; round < 50 && (handed == 0 || through_ring == 0 || pushed_for_sender == 0);
       ++round) {
    Channel<traced> ch(GetParam(), "stress");
    Channel<traced> idle(1);  // the selecting receivers' other case: never ready
    std::vector<std::vector<int>> seen(senders * receivers);  // [receiver][sender]: seqs
    std::array<std::int64_t, receivers> direct{}, ring{}, refilled{};
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s) {
      threads.emplace_back([&, s] {
        for (int i = 0; i < per_sender; ++i) ASSERT_EQ(ch.send(traced(s, i)), status::ok);
      });
    }
    for (int r = 0; r < receivers; ++r) {
      threads.emplace_back([&, r] {
        const bool selecting = r % 2 == 1;
        while (const std::optional<traced> v = receive_one(ch, selecting, idle)) {
          seen[r * senders + v->sender].push_back(v->seq);
          ++(v->moves < ring_moves[selecting] ? direct : ring)[r];
          if (v->first_mover != v->origin) ++refilled[r];
        }
      });
    }
    for (int s = 0; s < senders; ++s) threads[s].join();
    ch.close();
    for (int r = 0; r < receivers; ++r) threads[senders + r].join();

    std::vector<int> count(senders * per_sender, 0);
    for (int r = 0; r < receivers; ++r) {
      handed += direct[r];
      through_ring += ring[r];
      pushed_for_sender += refilled[r];
      for (int s = 0; s < senders; ++s) {
        const std::vector<int>& seqs = seen[r * senders + s];
        for (std::size_t k = 0; k < seqs.size(); ++k) {
          if (k > 0) {
            ASSERT_LT(seqs[k - 1], seqs[k]) << "receiver " << r << ", sender " << s;
          }
          ++count[s * per_sender + seqs[k]];
        }
      }
    }
    for (int c : count) ASSERT_EQ(c, 1);
    const custody::inspection now = custody::inspect();
    const custody::channel_report* report = find(now.channels, "stress");
    ASSERT_NE(report, nullptr);
    EXPECT_EQ(report->sends, std::uint64_t{senders} * per_sender);
    EXPECT_EQ(report->receives, std::uint64_t{senders} * per_sender);
  }
  EXPECT_GT(handed, 0);
  EXPECT_GT(through_ring, 0);
  EXPECT_GT(pushed_for_sender, 0);
}

INSTANTIATE_TEST_SUITE_P(Capacities, BufferedHandOverStress, ::testing::Values(1u, 2u));

}  // namespace buffered_handover_test
}  // namespace
