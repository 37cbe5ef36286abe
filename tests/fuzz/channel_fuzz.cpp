// libFuzzer target: the input is a sequence of operations on a few channels (buffered and
// unbuffered, of random capacity, of a type whose move never throws and of one whose move throws
// on demand), run on one thread and checked against a sequential model: a queue, a capacity and
// a closed flag per channel.
//
// On one thread no peer ever waits, so an unbuffered channel is never ready unless closed, and
// a zero timeout must give exactly the answer of the non-blocking attempt (timeout instead of
// would_block). After every operation the live objects must be exactly those the model holds.
//
//   scripts/fuzz                 (builds with clang and runs every target)

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include <custody/channel.hpp>
#include <custody/select.hpp>

#include "fuzz_support.hpp"

using namespace std::chrono_literals;
using custody::status;
using fuzz::bytes;

namespace {

struct any_channel {
  virtual ~any_channel() = default;
  virtual void step(bytes& in, int& counter) = 0;
  virtual std::size_t held() const = 0;
};

template <class T>
struct modelled final : any_channel {
  explicit modelled(std::size_t capacity) : ch(capacity), cap(capacity) {}

  custody::Channel<T> ch;
  std::deque<int> q;
  std::size_t cap;
  bool closed = false;

  std::size_t held() const override { return q.size(); }

  // What a send would do right now, on one thread.
  status send_outcome() const {
    if (closed) return status::closed;
    return q.size() < cap ? status::ok : status::would_block;  // cap 0: nobody receives
  }
  status recv_outcome() const {
    if (!q.empty()) return status::ok;
    return closed ? status::closed : status::would_block;
  }

  void sent(status s, const T& value, int v) {
    if (s == status::ok) {
      q.push_back(v);
      FUZZ_CHECK(value.v == -1);  // moved into the channel
    } else {
      FUZZ_CHECK(value.v == v);  // still with the sender, untouched
    }
  }
  void got(status s, const std::optional<int>& v) {
    if (s == status::ok) {
      FUZZ_CHECK(v.has_value());
      FUZZ_CHECK(*v == q.front());
      q.pop_front();
    } else {
      FUZZ_CHECK(!v.has_value());
    }
  }

  void step(bytes& in, int& counter) override {
    const unsigned op = in.below(12);
    switch (op) {
      case 0:
      case 1: {  // try_send
        const int v = ++counter;
        T value(v);
        const status expect = send_outcome();
        const status s = ch.try_send(std::move(value));
        FUZZ_CHECK(s == expect);
        sent(s, value, v);
        break;
      }
      case 2:
      case 3: {  // try_recv
        const status expect = recv_outcome();
        auto r = ch.try_recv();
        FUZZ_CHECK(r.status() == expect);
        got(r.status(), r ? std::optional<int>(r->v) : std::nullopt);
        break;
      }
      case 4: {  // send_for(0): the non-blocking answer, with timeout for would_block
        const int v = ++counter;
        T value(v);
        status expect = send_outcome();
        if (expect == status::would_block) expect = status::timeout;
        const status s =
            in.flag() ? ch.send_for(std::move(value), 0ms)
                      : ch.send_until(std::move(value), std::chrono::steady_clock::now() - 1ms);
        FUZZ_CHECK(s == expect);
        sent(s, value, v);
        break;
      }
      case 5: {  // recv_for(0)
        status expect = recv_outcome();
        if (expect == status::would_block) expect = status::timeout;
        auto r = in.flag() ? ch.recv_for(0ms) : ch.recv_until(std::chrono::steady_clock::now());
        FUZZ_CHECK(r.status() == expect);
        got(r.status(), r ? std::optional<int>(r->v) : std::nullopt);
        break;
      }
      case 6: {  // close
        const bool first = !closed;
        FUZZ_CHECK(ch.close() == first);
        closed = true;
        break;
      }
      case 7: {  // select: send or default
        const int v = ++counter;
        T value(v);
        const status expect = send_outcome();
        int fired = -1;
        auto sel = custody::select(custody::on_send(
                                       ch, value, [&] { fired = 0; }, [&] { fired = 1; }),
                                   custody::on_default([&] { fired = 2; }));
        FUZZ_CHECK(sel.status == expect);
        FUZZ_CHECK(fired == (expect == status::ok ? 0 : expect == status::closed ? 1 : 2));
        FUZZ_CHECK(sel.index == (expect == status::would_block ? 1u : 0u));
        sent(sel.status, value, v);
        break;
      }
      case 8: {  // select: receive or default
        const status expect = recv_outcome();
        std::optional<int> v;
        auto sel =
            custody::select(custody::on_recv(ch, [&](T&& x) { v = x.v; }), custody::on_default());
        FUZZ_CHECK(sel.status == expect);
        FUZZ_CHECK(sel.index == (expect == status::would_block ? 1u : 0u));
        got(sel.status, v);
        break;
      }
      case 9: {  // a move that throws: nothing changes, the value stays where it was
        if constexpr (!std::is_nothrow_move_constructible_v<T>) {
          const int v = ++counter;
          T value(v);
          if (in.flag()) {
            const status expect = send_outcome();
            fuzz::throw_next = true;
            bool threw = false;
            status s = status::would_block;
            try {
              s = ch.try_send(std::move(value));
            } catch (const fuzz::move_error&) {
              threw = true;
            }
            fuzz::throw_next = false;
            // Only a send that would have moved the value throws.
            FUZZ_CHECK(threw == (expect == status::ok));
            if (threw) {
              FUZZ_CHECK(value.v == v);
            } else {
              FUZZ_CHECK(s == expect);
              sent(s, value, v);
            }
          } else {
            const status expect = recv_outcome();
            fuzz::throw_next = true;
            bool threw = false;
            std::optional<int> out;
            status s = status::would_block;
            try {
              auto r = ch.try_recv();
              s = r.status();
              if (r) out = r->v;
            } catch (const fuzz::move_error&) {
              threw = true;
            }
            fuzz::throw_next = false;
            FUZZ_CHECK(threw == (expect == status::ok));
            if (!threw) {
              FUZZ_CHECK(s == expect);
              got(s, out);
            }
          }
        }
        break;
      }
      default:  // queries
        break;
    }
    FUZZ_CHECK(ch.is_closed() == closed);
    FUZZ_CHECK(ch.capacity() == cap);
    FUZZ_CHECK(ch.size() == q.size());
  }
};

std::unique_ptr<any_channel> make(std::uint8_t b) {
  const std::size_t capacity = fuzz::capacity_from(b);
  if (b & 0x10) return std::make_unique<modelled<fuzz::risky>>(capacity);
  return std::make_unique<modelled<fuzz::safe>>(capacity);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytes in(data, size);
  std::vector<std::unique_ptr<any_channel>> channels;
  const unsigned n = 1 + in.below(4);
  for (unsigned i = 0; i < n; ++i) channels.push_back(make(in.next()));
  int counter = 0;
  while (!in.empty()) {
    const std::uint8_t b = in.next();
    if ((b & 0xF0) == 0xF0) {
      // Replace a channel: whatever it still buffers is destroyed with it.
      channels[b % n] = make(in.next());
    } else {
      channels[b % n]->step(in, counter);
    }
    long held = 0;
    for (const auto& c : channels) held += static_cast<long>(c->held());
    FUZZ_CHECK(fuzz::live == held);
  }
  channels.clear();
  FUZZ_CHECK(fuzz::live == 0);
  return 0;
}
