// Stress: many producers and consumers on one channel, every kind of send and receive, a stop
// token and a close at random moments. Ends every round with conservation checks.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>

#include "stress_support.hpp"
#include "stress_values.hpp"

using namespace std::chrono_literals;
using custody::Channel;
using custody::status;

namespace {

using stress::id;
using stress::kind;
using stress::ledger;
using stress::rng;

// One producer: sends values p:0, p:1, ... with a random operation each time, until its quota
// is done, the channel is closed or the stop token fires. Every value ends sent or kept.
template <class T>
std::uint64_t produce(Channel<T> ch, std::uint32_t p, std::uint32_t quota, std::stop_token stop,
                      ledger& book, rng r) {
  std::uint64_t ops = 0;
  for (std::uint32_t seq = 0; seq < quota; ++seq) {
    T value = kind<T>::make(p, seq);
    for (;;) {
      ++ops;
      status s = status::would_block;
      const auto how = r.below(8);
      try {
        switch (how) {
          case 0:
            s = ch.send(std::move(value));
            break;
          case 1:
            s = ch.send(std::move(value), stop);
            break;
          case 2:
          case 3:
            s = ch.send_for(std::move(value), std::chrono::microseconds(r.below(300)), stop);
            break;
          case 4:
            s = ch.try_send(std::move(value));
            break;
          case 5: {
            // A select of one send case, with a stop and a short timeout.
            bool sent = false;
            auto sel = custody::select(
                custody::on_send(ch, value, [&] { sent = true; }), custody::on_stop(stop),
                custody::on_timeout(std::chrono::microseconds(r.below(200))));
            s = sel.status;
            EXPECT_EQ(sent, sel.index == 0 && s == status::ok);
            break;
          }
          default: {
            // Sent or not at once: a select with a default case.
            auto sel = custody::select(custody::on_send(ch, value), custody::on_default());
            s = sel.status;
            break;
          }
        }
      } catch (const stress::fragile_error&) {
        // The move threw: the value must still be ours, and the channel usable.
        EXPECT_EQ(kind<T>::of(value), (id{p, seq})) << "a throwing send lost its value";
        continue;
      }
      if (s == status::ok) {
        EXPECT_EQ(kind<T>::of(value), id{}) << "send returned ok without moving the value";
        book.record(id{p, seq}, ledger::sent);
        break;
      }
      // Any other outcome leaves the value with us, untouched.
      EXPECT_EQ(kind<T>::of(value), (id{p, seq})) << "failed send (" << custody::to_string(s)
                                                  << ") did not leave the value with its sender";
      if (s == status::closed || s == status::stopped) {
        book.record(id{p, seq}, ledger::kept);
        return ops;
      }
      if (r.one_in(8)) {  // give up on this value: it stays with us
        book.record(id{p, seq}, ledger::kept);
        break;
      }
    }
  }
  return ops;
}

// One consumer: receives with a random operation each time until the channel is closed and
// drained or the stop token fires. Checks that each producer's values arrive in order.
template <class T>
std::uint64_t consume(Channel<T> ch, std::uint32_t producers, std::stop_token stop, ledger& book,
                      rng r) {
  std::uint64_t ops = 0;
  std::vector<std::int64_t> last(producers, -1);
  auto take = [&](const T& value) {
    const id v = kind<T>::of(value);
    if (!book.receive(v)) return;
    EXPECT_GT(std::int64_t{v.seq}, last[v.producer])
        << "values of producer " << v.producer << " overtook each other";
    last[v.producer] = v.seq;
  };
  custody::Receiver<T> rx = ch;
  for (;;) {
    ++ops;
    status s = status::would_block;
    try {
      switch (r.below(8)) {
        case 0: {
          auto got = rx.recv();
          s = got.status();
          if (got) take(*got);
          break;
        }
        case 1: {
          auto got = rx.recv(stop);
          s = got.status();
          if (got) take(*got);
          break;
        }
        case 2:
        case 3: {
          auto got = rx.recv_for(std::chrono::microseconds(r.below(300)), stop);
          s = got.status();
          EXPECT_EQ(got.has_value(), s == status::ok);
          if (got) take(*got);
          break;
        }
        case 4: {
          auto got = ch.try_recv();
          s = got.status();
          if (got) take(*got);
          break;
        }
        case 5: {
          auto sel = custody::select(custody::on_recv(rx, [&](T&& value) { take(value); }),
                                     custody::on_stop(stop),
                                     custody::on_timeout(std::chrono::microseconds(r.below(200))));
          s = sel.status;
          break;
        }
        case 6: {
          auto sel = custody::select(custody::on_recv(rx, [&](T&& value) { take(value); }),
                                     custody::on_default());
          s = sel.status;
          break;
        }
        default: {
          // Range-for for a few values (it ends by itself once closed and drained).
          std::uint64_t n = r.between(1, 16);
          s = status::closed;
          for (T& value : rx) {
            take(value);
            if (--n == 0) {
              s = status::ok;
              break;
            }
          }
          break;
        }
      }
    } catch (const stress::fragile_error&) {
      continue;  // an unbuffered hand-over threw in the sender's move: the sender retries
    }
    if (s == status::closed || s == status::stopped) return ops;
  }
}

template <class T>
std::uint64_t round(rng& r, stress::runner& run) {
  static constexpr std::size_t capacities[] = {0, 0, 1, 1, 2, 3, 5, 16, 64};
  const std::size_t capacity = r.pick(capacities);
  const auto producers = static_cast<std::uint32_t>(r.between(1, 4));
  const auto consumers = static_cast<std::uint32_t>(r.between(1, 4));
  const auto quota = static_cast<std::uint32_t>(r.between(1, 1500));
  // When the stop token fires and when the channel is closed, from the round's start.
  const bool stop_early = r.one_in(3);
  const bool close_early = r.one_in(2);
  const auto stop_at = std::chrono::microseconds(r.below(20'000));
  const auto close_at = std::chrono::microseconds(r.below(30'000));
  // A round never runs longer than this; then the channel is closed.
  const auto limit = std::chrono::milliseconds(r.between(20, 200));

  Channel<T> ch(capacity);
  ledger book(producers, quota);
  std::stop_source stop;
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint32_t> producers_left{producers};
  {
    std::vector<std::jthread> threads;
    for (std::uint32_t p = 0; p < producers; ++p) {
      threads.emplace_back([&, p, seed = r.next()] {
        ops += produce<T>(ch, p, quota, stop.get_token(), book, rng(seed));
        producers_left.fetch_sub(1);
      });
    }
    for (std::uint32_t c = 0; c < consumers; ++c) {
      threads.emplace_back([&, seed = r.next()] {
        ops += consume<T>(ch, producers, stop.get_token(), book, rng(seed));
      });
    }
    const auto start = stress::clock::now();
    auto wait_until = [&](auto when) {
      while (stress::clock::now() < start + when && producers_left.load() > 0) {
        std::this_thread::sleep_for(100us);
      }
    };
    if (stop_early) {
      wait_until(stop_at);
      stop.request_stop();
      run.count_stop();
    }
    if (close_early || stop_early) {
      wait_until(close_at);
      if (ch.close()) run.count_stop();
    }
    wait_until(limit);
    // Consumers see closed once the channel is drained; blocked senders see closed.
    ch.close();
  }
  // Whatever is still buffered was sent: receive it here.
  for (;;) {
    auto got = ch.try_recv();
    if (!got) {
      EXPECT_EQ(got.status(), status::closed);
      break;
    }
    book.receive(kind<T>::of(*got));
  }
  book.check(kind<T>::name);
  return ops.load();
}

}  // namespace

TEST(ChannelStress, ProducersConsumersRandomCloseAndStop) {
  stress::runner run("ChannelStress.ProducersConsumersRandomCloseAndStop");
  run.run([&](rng& r, std::uint64_t) -> std::uint64_t {
    return stress::round_of_random_kind(r, [&]<class T>() { return round<T>(r, run); });
  });
  std::printf("[stress] fragile moves that threw: %llu\n",
              static_cast<unsigned long long>(stress::fragile_throws.load()));
}
