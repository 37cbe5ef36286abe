#pragma once
// The ticks of a custody-car run, paced so that the run is a function of the seed: the poll and
// increase ticks on one timeline, one at a time, each sent only once the one before has been
// acted on (README: "Reproducible runs").

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <stop_token>

#include <custody/channel.hpp>
#include <custody/task_group.hpp>

#include "tasks.hpp"

namespace car {

/// Two periodic timelines merged into one: a poll tick every `poll_every` and an increase tick
/// every `increase_every`, both counted from the schedule's start, in order of their time (a
/// poll before an increase due at the same time). Each tick is sent at its time, or at once if
/// the one before took longer, and only after the one before was acted on. So the device calls
/// come in the same order in every run, however the threads are scheduled; a slow car or a
/// loaded machine only delays the ticks, never drops or reorders them.
///
/// Each tick carries its nominal time: the schedule's start plus a whole number of periods.
/// now() returns the nominal time of the tick under way, which the simulated car takes as its
/// clock, so that the distance it travels between two ticks does not depend on when they were
/// acted on.
class Schedule {
 public:
  Schedule(std::chrono::nanoseconds poll_every, std::chrono::nanoseconds increase_every);
  Schedule(const Schedule&) = delete;
  Schedule& operator=(const Schedule&) = delete;

  /// The communication task's ticks, and the increase task's.
  Ticks poll_ticks() const { return poll_.receiver(); }
  Ticks increase_ticks() const { return increase_.receiver(); }
  /// What both tasks call once they have acted on a tick (the communication task also once its
  /// first connect attempt is over, which the schedule waits for before the first tick). It may
  /// outlive the schedule.
  TickDone tick_done() const;

  /// The nominal time of the tick under way: the start until the first tick. Thread-safe.
  SteadyTime now() const { return now_.load(); }

  /// The schedule's task. Blocks: waits for the first connect attempt, then sends the ticks,
  /// waking at each tick's time and when a tick has been acted on (tick_done()). After each tick
  /// has been acted on it asks `enough()` and, once that says so, calls `on_enough` and returns.
  /// A stop request makes it return at once, whether it waits for a tick's time or for a tick
  /// to be acted on. Closes both tick channels when it returns, which ends the tasks that take
  /// them. Throws what `enough` and `on_enough` throw (the channels are closed then too). Call
  /// once, from one thread; now() and tick_done() may be called meanwhile from any thread.
  void run(std::stop_token stop, const std::function<bool()>& enough,
           const std::function<void()>& on_enough);

  // The steps of run(), for a task that waits in its own way (coro_tasks.hpp). One task only.

  /// What tick_done() sends: a tick (or the first connect attempt) has been acted on.
  struct Done {};
  custody::Receiver<Done> acted_on() const { return done_.receiver(); }
  /// The nominal time of the next tick.
  SteadyTime next_tick_at() const { return std::min(next_poll_, next_increase_); }
  /// Sends the next tick: call it at next_tick_at(), and only once the tick before was acted
  /// on. Never waits. False if its channel is closed.
  bool send_tick();
  /// Ends the tasks that take the ticks.
  void close_ticks();

 private:
  const std::chrono::nanoseconds poll_every_, increase_every_;
  const SteadyTime start_;
  SteadyTime next_poll_, next_increase_;
  std::atomic<SteadyTime> now_;
  // One slot each: a tick is sent only once the one before was acted on, so a send never waits.
  custody::Channel<SteadyTime> poll_{1, "poll ticks"}, increase_{1, "increase ticks"};
  // One slot: one tick is under way at a time, and each is acted on once.
  custody::Channel<Done> done_{1, "tick done"};
};

/// Starts schedule.run(stop, enough, on_enough) as the task "schedule" of `tasks`. `schedule`
/// must outlive the task.
void fireup_schedule(custody::TaskGroup& tasks, Schedule& schedule, std::function<bool()> enough,
                     std::function<void()> on_enough);

}  // namespace car
