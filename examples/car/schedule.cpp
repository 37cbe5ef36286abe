#include "schedule.hpp"

#include <custody/select.hpp>

namespace car {

Schedule::Schedule(std::chrono::nanoseconds poll_every, std::chrono::nanoseconds increase_every)
    : poll_every_(poll_every),
      increase_every_(increase_every),
      start_(std::chrono::steady_clock::now()),
      now_(start_) {}

TickDone Schedule::tick_done() const {
  return [done = custody::Sender<Done>(done_)]() mutable { (void)done.try_send(Done{}); };
}

void Schedule::run(std::stop_token stop, const std::function<bool()>& enough,
                   const std::function<void()>& on_enough) {
  // Both tasks end when their ticks end.
  struct CloseTicks {
    Schedule& s;
    ~CloseTicks() {
      s.poll_.close();
      s.increase_.close();
    }
  } close_ticks{*this};
  const auto acted_on = [&] { return done_.recv(stop).has_value(); };
  if (!acted_on()) return;  // the first connect attempt
  SteadyTime next_poll = start_ + poll_every_, next_increase = start_ + increase_every_;
  for (;;) {
    const bool poll = next_poll <= next_increase;
    const SteadyTime at = poll ? next_poll : next_increase;
    bool stopped = false;
    custody::select(custody::on_deadline(at), custody::on_stop(stop, [&] { stopped = true; }));
    if (stopped) return;
    now_.store(at);
    // Never waits: the tick before this one was taken, and acted on.
    if ((poll ? poll_ : increase_).try_send(at) != custody::status::ok) return;
    if (poll) {
      next_poll += poll_every_;
    } else {
      next_increase += increase_every_;
    }
    if (!acted_on()) return;
    if (enough()) {
      on_enough();
      return;
    }
  }
}

}  // namespace car
