#include "schedule.hpp"

#include <utility>

#include <custody/select.hpp>

namespace car {

Schedule::Schedule(std::chrono::nanoseconds poll_every, std::chrono::nanoseconds increase_every)
    : poll_every_(poll_every),
      increase_every_(increase_every),
      start_(std::chrono::steady_clock::now()),
      next_poll_(start_ + poll_every_),
      next_increase_(start_ + increase_every_),
      now_(start_) {}

TickDone Schedule::tick_done() const {
  return [done = custody::Sender<Done>(done_)]() mutable { (void)done.try_send(Done{}); };
}

bool Schedule::send_tick() {
  // A poll before an increase due at the same time.
  const bool poll = next_poll_ <= next_increase_;
  const SteadyTime at = poll ? next_poll_ : next_increase_;
  now_.store(at);
  // Never waits: the tick before this one was taken, and acted on.
  if ((poll ? poll_ : increase_).try_send(at) != custody::status::ok) return false;
  (poll ? next_poll_ : next_increase_) += poll ? poll_every_ : increase_every_;
  return true;
}

void Schedule::close_ticks() {
  poll_.close();
  increase_.close();
}

void Schedule::run(std::stop_token stop, const std::function<bool()>& enough,
                   const std::function<void()>& on_enough) {
  // Both tasks end when their ticks end.
  struct CloseTicks {
    Schedule& s;
    ~CloseTicks() { s.close_ticks(); }
  } close_ticks{*this};
  const auto acted_on = [&] { return done_.recv(stop).has_value(); };
  if (!acted_on()) return;  // the first connect attempt
  for (;;) {
    bool stopped = false;
    custody::select(custody::on_deadline(next_tick_at()),
                    custody::on_stop(stop, [&] { stopped = true; }));
    if (stopped || !send_tick() || !acted_on()) return;
    if (enough()) {
      on_enough();
      return;
    }
  }
}

void fireup_schedule(custody::TaskGroup& tasks, Schedule& schedule, std::function<bool()> enough,
                     std::function<void()> on_enough) {
  tasks.spawn("schedule", [&schedule, enough = std::move(enough), on_enough = std::move(on_enough)](
                              std::stop_token stop) { schedule.run(stop, enough, on_enough); });
}

}  // namespace car
