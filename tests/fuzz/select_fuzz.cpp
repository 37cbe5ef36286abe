// libFuzzer target: the input is a sequence of selects over a few channels (buffered and
// unbuffered, of random capacity), each a random mix of two receive cases, two send cases, a
// stop case, a zero timeout and a default, any of them disabled; run on one thread and checked
// against a sequential model of the channels.
//
// The model knows which cases are ready (a receive: a buffered value, or closed; a send: room,
// or closed; on one thread an unbuffered channel is ready only when closed). The select must
// commit one of the ready channel cases; only when none is ready the stop case (if its token
// was triggered), else the timeout or the default. The committed case's callable alone runs,
// values move only for the committed case, and the channels then hold what the model holds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include <custody/channel.hpp>
#include <custody/select.hpp>

#include "fuzz_support.hpp"

using namespace std::chrono_literals;
using custody::status;
using fuzz::bytes;
using fuzz::safe;

namespace {

struct channel_model {
  explicit channel_model(std::size_t capacity) : ch(capacity), cap(capacity) {}
  custody::Channel<safe> ch;
  std::deque<int> q;
  std::size_t cap;
  bool closed = false;

  bool recv_ready() const { return !q.empty() || closed; }
  bool send_ready() const { return closed || q.size() < cap; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bytes in(data, size);
  std::vector<channel_model> chans;
  chans.reserve(4);
  const unsigned n = 2 + in.below(3);
  for (unsigned i = 0; i < n; ++i) chans.emplace_back(fuzz::capacity_from(in.next()));
  std::stop_source stop;
  int counter = 0;

  while (!in.empty()) {
    const std::uint8_t head = in.next();
    if (head >= 0xF0) {  // housekeeping: close a channel, or trigger the stop
      if (head & 8) {
        stop.request_stop();
      } else {
        channel_model& c = chans[head % n];
        FUZZ_CHECK(c.ch.close() == !c.closed);
        c.closed = true;
      }
      continue;
    }
    // Cases 0, 1: receive; 2, 3: send (both offer the same value); 4 stop; 5 timeout(0);
    // 6 default.
    const std::uint8_t enabled = in.next();
    bool on[7];
    for (int i = 0; i < 7; ++i) on[i] = (enabled >> i) & 1;
    unsigned target[4];
    for (unsigned& t : target) t = in.below(n);
    const int v = ++counter;
    safe value(v);

    bool ready[4];
    bool any_ready = false;
    for (int i = 0; i < 4; ++i) {
      const channel_model& c = chans[target[i]];
      ready[i] = on[i] && (i < 2 ? c.recv_ready() : c.send_ready());
      any_ready |= ready[i];
    }
    const bool any_channel_case = on[0] || on[1] || on[2] || on[3];
    const bool stop_fires = on[4] && stop.stop_requested();
    // On one thread, a select with nothing ready and no way out would wait forever: give it a
    // default case then. With no case at all it must throw instead.
    const bool way_out = any_ready || stop_fires || on[5] || on[6];
    const bool must_throw = !any_channel_case && !on[4] && !on[5] && !on[6];
    if (!way_out && !must_throw) on[6] = true;

    int fired = -1;
    std::optional<int> got;
    auto recv = [&](int i) { return [&, i](safe&& x) { fired = i, got = x.v; }; };
    auto closed = [&](int i) { return [&, i] { fired = 10 + i; }; };
    auto sent = [&](int i) { return [&, i] { fired = i; }; };
    custody::selected sel{};
    bool threw = false;
    try {
      sel = custody::select(
          custody::on_recv(chans[target[0]].ch, recv(0), closed(0)).when(on[0]),
          custody::on_recv(chans[target[1]].ch, recv(1), closed(1)).when(on[1]),
          custody::on_send(chans[target[2]].ch, value, sent(2), closed(2)).when(on[2]),
          custody::on_send(chans[target[3]].ch, value, sent(3), closed(3)).when(on[3]),
          custody::on_stop(stop.get_token(), [&] { fired = 4; }).when(on[4]),
          custody::on_timeout(0ms, [&] { fired = 5; }).when(on[5]),
          custody::on_default([&] { fired = 6; }).when(on[6]));
    } catch (const std::logic_error&) {
      threw = true;
    }
    FUZZ_CHECK(threw == must_throw);
    if (threw) {
      FUZZ_CHECK(fired == -1 && value.v == v);
      continue;
    }

    const std::size_t i = sel.index;
    FUZZ_CHECK(i < 7);
    FUZZ_CHECK(on[i]);
    if (any_ready && !(stop_fires && i == 4)) {
      // A fired stop is one more ready case, chosen uniformly with the others (as Go's
      // closed `done`); otherwise the chosen case is one of the ready ones.
      FUZZ_CHECK(i < 4);
      FUZZ_CHECK(ready[i]);
    } else if (stop_fires) {
      FUZZ_CHECK(i == 4 && sel.status == status::stopped && fired == 4);
    } else {
      // Nothing ready: the timeout or the default (either, when both are enabled).
      FUZZ_CHECK(i == 5 || i == 6);
      FUZZ_CHECK(sel.status == (i == 5 ? status::timeout : status::would_block));
      FUZZ_CHECK(fired == static_cast<int>(i));
    }
    if (i < 4) {
      channel_model& c = chans[target[i]];
      if (i < 2) {
        if (!c.q.empty()) {
          FUZZ_CHECK(sel.status == status::ok && fired == static_cast<int>(i));
          FUZZ_CHECK(got && *got == c.q.front());
          c.q.pop_front();
        } else {
          FUZZ_CHECK(c.closed);
          FUZZ_CHECK(sel.status == status::closed && fired == 10 + static_cast<int>(i));
          FUZZ_CHECK(!got);
        }
        FUZZ_CHECK(value.v == v);  // the send cases did not commit
      } else {
        if (c.closed) {
          FUZZ_CHECK(sel.status == status::closed && fired == 10 + static_cast<int>(i));
          FUZZ_CHECK(value.v == v);
        } else {
          FUZZ_CHECK(sel.status == status::ok && fired == static_cast<int>(i));
          FUZZ_CHECK(value.v == -1);
          c.q.push_back(v);
        }
      }
    } else {
      FUZZ_CHECK(value.v == v && !got);
    }
    long held = 1;  // `value`, moved from or not
    for (const auto& c : chans) {
      FUZZ_CHECK(c.ch.size() == c.q.size());
      FUZZ_CHECK(c.ch.is_closed() == c.closed);
      held += static_cast<long>(c.q.size());
    }
    FUZZ_CHECK(fuzz::live == held);
  }
  chans.clear();
  FUZZ_CHECK(fuzz::live == 0);
  return 0;
}
