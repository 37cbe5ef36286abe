// libFuzzer target, built in the interleave build (see include/custody/detail/interleave.hpp):
// the input is a program for 2-4 threads sharing two channels (unbuffered or buffered), each
// thread running its share of the operations: sends and receives with a deadline, without one
// (blocking until a peer, a close or the stop), with and without a stop token, try_send,
// try_recv, selects of a receive, a send, a stop and a timeout, closing a channel, triggering
// the stop.
// Four input bytes seed the interleave points, and every thread draws from the stream of its own
// number, so an input replays the same perturbations per thread (the operating system's
// schedule is not replayed).
//
// Checked:
//   - conservation: every value sent with `ok` was received exactly once or is still buffered at
//     the end; nothing received was not sent; a send that failed left its value untouched;
//   - `stopped` only from an operation with a stop token, and only once the stop was requested;
//   - no lost wake-up: the main thread watches the workers. When every worker still running waits
//     in an operation without a deadline, one of them must be able to move (a value buffered for a
//     waiting receiver, room for a waiting sender, a sender and a receiver waiting on the same
//     unbuffered channel, a close, a requested stop), or else the main thread serves one of them
//     with try_send / try_recv, which must succeed. If that stays impossible for a whole second,
//     a wake-up was lost: the run aborts, printing who waits for what.
//
//   scripts/interleave, scripts/fuzz concurrent_fuzz

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include <custody/channel.hpp>
#include <custody/detail/interleave.hpp>
#include <custody/select.hpp>

#include "fuzz_support.hpp"

static_assert(CUSTODY_INTERLEAVE, "concurrent_fuzz is built with CUSTODY_INTERLEAVE=1");

using namespace std::chrono_literals;
using custody::status;
using fuzz::bytes;

namespace {

/// A value that is small and never throws when moved, so unbuffered receives take the lone-slot
/// path. A move leaves 0 behind; every real value is non-zero.
struct item {
  std::uint64_t v = 0;
  explicit item(std::uint64_t x) : v(x) {}
  item(item&& o) noexcept : v(std::exchange(o.v, 0)) {}
  item& operator=(item&& o) noexcept {
    v = std::exchange(o.v, 0);
    return *this;
  }
};

constexpr std::size_t max_ops_per_thread = 48;
constexpr auto lost_wakeup_after = 1s;

/// What a worker waits in, published while it is inside an operation without a deadline.
/// -1: none; otherwise (channel << 2) | (sending << 1) | has_stop_token.
int wait_code(unsigned channel, bool sending, bool token) {
  return static_cast<int>((channel << 2) | (sending ? 2u : 0u) | (token ? 1u : 0u));
}

struct shared_state {
  std::array<custody::Channel<item>, 2> channels;
  std::stop_source stop;
  shared_state(std::size_t cap_a, std::size_t cap_b)
      : channels{{custody::Channel<item>(cap_a), custody::Channel<item>(cap_b)}} {}
};

struct worker {
  std::vector<std::uint8_t> program;
  std::vector<std::uint64_t> sent;      // values sent with ok
  std::vector<std::uint64_t> received;  // values received
  std::atomic<int> waiting_in{-1};
  std::atomic<bool> finished{false};
};

std::chrono::microseconds deadline_from(bytes& in) {
  static constexpr std::chrono::microseconds table[4] = {0us, 20us, 200us, 1000us};
  return table[in.below(4)];
}

/// Checks a send's result and its value: moved out exactly when the send says ok.
void sent(worker& w, status s, const item& value, std::uint64_t v, bool token,
          const std::stop_source& stop) {
  if (s == status::ok) {
    FUZZ_CHECK(value.v == 0);
    w.sent.push_back(v);
  } else {
    FUZZ_CHECK(value.v == v);
    FUZZ_CHECK(s == status::closed || s == status::timeout || s == status::would_block ||
               s == status::stopped);
    if (s == status::stopped) FUZZ_CHECK(token && stop.stop_requested());
  }
}

void got(worker& w, const custody::received<item>& r, bool token, const std::stop_source& stop) {
  if (r.status() == status::ok) {
    FUZZ_CHECK(r.has_value() && r->v != 0);
    w.received.push_back(r->v);
  } else {
    FUZZ_CHECK(!r.has_value());
    if (r.status() == status::stopped) FUZZ_CHECK(token && stop.stop_requested());
  }
}

void run_worker(unsigned id, worker& w, shared_state& sh) {
  custody::detail::interleave::bind_thread(id);
  bytes in(w.program.data(), w.program.size());
  std::uint64_t counter = 0;
  const auto next_value = [&] { return (std::uint64_t{id} << 32) | ++counter; };
  while (!in.empty()) {
    const unsigned op = in.below(16);
    const unsigned c = in.below(2);
    custody::Channel<item>& ch = sh.channels[c];
    const bool token = in.flag();
    const std::stop_token st = token ? sh.stop.get_token() : std::stop_token{};
    switch (op) {
      case 0:
      case 1:
      case 2: {
        const std::uint64_t v = next_value();
        item value(v);
        const status s = ch.send_for(std::move(value), deadline_from(in), st);
        sent(w, s, value, v, token, sh.stop);
        break;
      }
      case 3:
      case 4:
      case 5:
        got(w, ch.recv_for(deadline_from(in), st), token, sh.stop);
        break;
      case 6: {
        const std::uint64_t v = next_value();
        item value(v);
        const status s = ch.try_send(std::move(value));
        FUZZ_CHECK(s != status::timeout && s != status::stopped);
        sent(w, s, value, v, token, sh.stop);
        break;
      }
      case 7: {
        const auto r = ch.try_recv();
        FUZZ_CHECK(r.status() != status::timeout && r.status() != status::stopped);
        got(w, r, token, sh.stop);
        break;
      }
      case 8:
      case 9: {  // no deadline: returns once a receiver takes it, on close, or on the stop
        const std::uint64_t v = next_value();
        item value(v);
        w.waiting_in.store(wait_code(c, true, token));
        const status s = token ? ch.send(std::move(value), st) : ch.send(std::move(value));
        w.waiting_in.store(-1);
        FUZZ_CHECK(s != status::timeout && s != status::would_block);
        sent(w, s, value, v, token, sh.stop);
        break;
      }
      case 10:
      case 11: {
        w.waiting_in.store(wait_code(c, false, token));
        const auto r = token ? ch.recv(st) : ch.recv();
        w.waiting_in.store(-1);
        FUZZ_CHECK(r.status() != status::timeout && r.status() != status::would_block);
        got(w, r, token, sh.stop);
        break;
      }
      case 12:
      case 13: {  // select: receive from this channel or send to either, with a timeout
        custody::Channel<item>& to = sh.channels[in.below(2)];
        const std::uint64_t v = next_value();
        item value(v);
        std::optional<std::uint64_t> in_value;
        bool was_sent = false;
        const auto sel =
            custody::select(custody::on_recv(ch, [&](item&& x) { in_value = x.v; }),
                            custody::on_send(to, value, [&] { was_sent = true; }),
                            custody::on_stop(st), custody::on_timeout(deadline_from(in)));
        FUZZ_CHECK(!(in_value && was_sent));
        if (sel.status == status::ok) FUZZ_CHECK(in_value.has_value() != was_sent);
        if (in_value) {
          FUZZ_CHECK(sel.index == 0 && *in_value != 0);
          w.received.push_back(*in_value);
        }
        sent(w, was_sent ? status::ok : status::timeout, value, v, token, sh.stop);
        if (sel.status == status::stopped) FUZZ_CHECK(token && sh.stop.stop_requested());
        break;
      }
      case 14:
        if (in.below(4) == 0) ch.close();
        break;
      default:
        if (in.below(4) == 0) sh.stop.request_stop();
        break;
    }
  }
  w.finished.store(true);
}

/// Everyone still running waits in an operation without a deadline: true when one of them can
/// move without help. Otherwise `serve` names the worker the main thread should serve.
bool someone_can_move(const std::vector<int>& codes, shared_state& sh, std::size_t& serve) {
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const int code = codes[i];
    if (code < 0) continue;
    const unsigned c = static_cast<unsigned>(code) >> 2;
    const bool sending = code & 2;
    const bool token = code & 1;
    custody::Channel<item>& ch = sh.channels[c];
    if (ch.is_closed() || (token && sh.stop.stop_requested())) return true;
    if (ch.capacity() > 0) {
      if (sending ? ch.size() < ch.capacity() : ch.size() > 0) return true;
    } else {
      const int peer_bit = sending ? 0 : 2;
      for (const int other : codes) {
        if (other >= 0 && (static_cast<unsigned>(other) >> 2) == c && (other & 2) == peer_bit) {
          return true;
        }
      }
    }
    serve = i;
  }
  return false;
}

[[noreturn]] void lost_wakeup(const std::vector<int>& codes, shared_state& sh) {
  std::fprintf(
      stderr,
      "concurrent_fuzz: lost wake-up: for %lld ms every running worker has "
      "waited and none could move or be served\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(lost_wakeup_after).count()));
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < 0) continue;
    const unsigned c = static_cast<unsigned>(codes[i]) >> 2;
    std::fprintf(stderr, "  worker %zu waits to %s on channel %u (capacity %zu, size %zu%s)%s\n",
                 i + 1, (codes[i] & 2) ? "send" : "receive", c, sh.channels[c].capacity(),
                 sh.channels[c].size(), sh.channels[c].is_closed() ? ", closed" : "",
                 (codes[i] & 1) ? " with a stop token" : "");
  }
  std::fprintf(stderr, "  stop requested: %s\n", sh.stop.stop_requested() ? "yes" : "no");
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytes in(data, size);
  const std::size_t cap_a = fuzz::capacity_from(in.next());
  const std::size_t cap_b = fuzz::capacity_from(in.next());
  std::uint32_t seed = 0;
  for (int i = 0; i < 4; ++i) seed = (seed << 8) | in.next();
  const unsigned n = 2 + in.below(3);
  custody::detail::interleave::reseed(seed);
  custody::detail::interleave::bind_thread(0);

  // Byte k of the rest goes to worker k % n, so each worker's share stays a stable program
  // while the fuzzer mutates the others'.
  std::vector<worker> workers(n);
  for (std::size_t k = 0; !in.empty(); ++k) {
    worker& w = workers[k % n];
    const std::uint8_t b = in.next();
    if (w.program.size() < max_ops_per_thread * 4) w.program.push_back(b);
  }

  shared_state sh(cap_a, cap_b);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n; ++i) {
    threads.emplace_back([&, i] { run_worker(i + 1, workers[i], sh); });
  }

  // The main thread's own sends and receives when it serves a waiting worker.
  worker main_thread;
  std::uint64_t main_counter = 0;
  std::vector<int> codes(n);
  std::optional<std::chrono::steady_clock::time_point> stuck_since;
  for (;;) {
    bool all_finished = true, all_waiting = true;
    for (unsigned i = 0; i < n; ++i) {
      codes[i] = -1;
      if (workers[i].finished.load()) continue;
      all_finished = false;
      codes[i] = workers[i].waiting_in.load();
      if (codes[i] < 0) all_waiting = false;
    }
    if (all_finished) break;
    bool stuck = false;
    if (all_waiting) {
      std::size_t serve = n;
      stuck = true;
      if (!someone_can_move(codes, sh, serve) && serve < n) {
        // Nobody can move by themselves: act as their peer.
        custody::Channel<item>& ch = sh.channels[static_cast<unsigned>(codes[serve]) >> 2];
        if (codes[serve] & 2) {
          const auto r = ch.try_recv();
          if (r) {
            main_thread.received.push_back(r->v);
            stuck = false;
          }
        } else {
          const std::uint64_t v = ++main_counter;  // worker number 0
          item value(v);
          if (ch.try_send(std::move(value)) == status::ok) {
            main_thread.sent.push_back(v);
            stuck = false;
          }
        }
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (!stuck) {
      stuck_since.reset();
    } else if (!stuck_since) {
      stuck_since = now;
    } else if (now - *stuck_since > lost_wakeup_after) {
      lost_wakeup(codes, sh);
    }
    std::this_thread::sleep_for(50us);
  }
  for (auto& t : threads) t.join();

  // What is still buffered counts as delivered later.
  for (auto& ch : sh.channels) {
    for (auto r = ch.try_recv(); r; r = ch.try_recv()) main_thread.received.push_back(r->v);
  }

  std::vector<std::uint64_t> sent = main_thread.sent, received = main_thread.received;
  for (const worker& w : workers) {
    sent.insert(sent.end(), w.sent.begin(), w.sent.end());
    received.insert(received.end(), w.received.begin(), w.received.end());
  }
  std::sort(sent.begin(), sent.end());
  std::sort(received.begin(), received.end());
  FUZZ_CHECK(std::adjacent_find(received.begin(), received.end()) == received.end());
  FUZZ_CHECK(std::adjacent_find(sent.begin(), sent.end()) == sent.end());
  FUZZ_CHECK(received == sent);
  return 0;
}
