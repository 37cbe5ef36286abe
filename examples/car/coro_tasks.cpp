#include "coro_tasks.hpp"

#include <asio/cancellation_type.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <utility>

#include <custody/asio/channel.hpp>
#include <custody/asio/select.hpp>
#include <custody/asio/store.hpp>

#include "task_steps.hpp"
#include "thread_name.hpp"

namespace car {

namespace {

using asio::use_awaitable;

// Every task starts with this. The group stops a task twice over: its stop token, and a
// cancellation of its pending operation. Both complete the operation with status::stopped, which
// the task handles; the coroutine must not, besides, throw at its next co_await.
asio::awaitable<void> stopped_operations_do_not_throw() {
  co_await asio::this_coro::throw_if_cancelled(false);
}

// From a stop request on, a task that drains what the owner still publishes waits with a
// deadline of its own (kDrainGrace); the group's cancellation, which may reach its next operation
// after the stop token did, must not cut the drain short.
asio::awaitable<void> drain_without_cancellation() {
  co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
}

asio::awaitable<void> communicate(std::stop_token stop, std::unique_ptr<Communication> c) {
  co_await stopped_operations_do_not_throw();
  c->begin(stop);
  const auto requests = c->requests();
  // The go-ahead: CarStores::start() closes the channel (a value sent on it counts too).
  bool running = false;
  co_await custody::async_select(
      custody::on_recv(
          c->go(), [&](CarStores::Go) { running = true; }, [&] { running = true; }),
      custody::on_stop(stop), use_awaitable);
  // At once, not at the first tick: the first reading is on screen without waiting a period.
  if (running) c->connect_first();
  while (running && !stop.stop_requested()) {
    co_await custody::async_select(
        custody::on_recv(
            c->poll_ticks(), [&](SteadyTime) { c->on_poll(); }, [&] { running = false; }),
        custody::on_recv(requests,
                         [&](custody::SetRequest<CarData> r) { c->answer(std::move(r)); }),
        custody::on_stop(stop, [&] { running = false; }), use_awaitable);
  }
  // Closing tells every subscriber (they drain, then end) and answers queued requests.
  c->end();
}

asio::awaitable<void> increase_speed(std::stop_token stop, custody::GetSetter<CarData> data,
                                     Ticks ticks, IncreaseSettings settings, LineSink out,
                                     RunStats& stats, WallClock now, TickDone tick_done) {
  co_await stopped_operations_do_not_throw();
  for (bool running = true; running;) {
    bool ticked = false;
    co_await custody::async_select(
        custody::on_recv(
            ticks, [&](SteadyTime) { ticked = true; }, [&] { running = false; }),
        custody::on_stop(stop, [&] { running = false; }), use_awaitable);
    if (!ticked) continue;
    const CarData wanted = next_speed(data, settings.step).first;
    const auto result =
        co_await custody::async_set_for(data, wanted, settings.set_timeout, stop, use_awaitable);
    running = report_answer(result, wanted.speed, settings, out, stats, now);
    if (tick_done) tick_done();
  }
}

asio::awaitable<void> print_out_data(std::stop_token stop, custody::Subscription<CarData> readings,
                                     custody::Subscription<CarStatus> changes, LineSink out,
                                     RunStats& stats, bool quiet) {
  co_await stopped_operations_do_not_throw();
  ScreenLoop screen(readings, changes, out, stats, quiet);
  while (screen.running()) {
    co_await screen.wait(stop, [](auto&&... cases) {
      return custody::async_select(std::forward<decltype(cases)>(cases)..., use_awaitable);
    });
    if (screen.stopping()) co_await drain_without_cancellation();
    screen.show_due();
  }
  screen.show_rest();
}

asio::awaitable<void> write_data_into_file(std::stop_token stop,
                                           custody::Subscription<CarData> readings,
                                           std::unique_ptr<LineWriter> file, LineSink err,
                                           RunStats& stats) {
  co_await stopped_operations_do_not_throw();
  LogWriting log(readings, *file, err, stats);
  // Until the owner closes the store (and what it holds is written)...
  auto r = co_await custody::async_recv(readings, stop, use_awaitable);
  for (; r; r = co_await custody::async_recv(readings, stop, use_awaitable)) log.write(*r);
  if (r.status() != custody::status::stopped) co_return;
  // ... or, once stop is requested, until it does so or the grace period is over.
  co_await drain_without_cancellation();
  const SteadyTime give_up_at = std::chrono::steady_clock::now() + kDrainGrace;
  for (r = co_await custody::async_recv_until(readings, give_up_at, use_awaitable); r;
       r = co_await custody::async_recv_until(readings, give_up_at, use_awaitable)) {
    log.write(*r);
  }
}

asio::awaitable<void> run_schedule(std::stop_token stop, Schedule& schedule,
                                   std::function<bool()> enough, std::function<void()> on_enough) {
  co_await stopped_operations_do_not_throw();
  // Both tasks end when their ticks end.
  struct CloseTicks {
    Schedule& s;
    ~CloseTicks() { s.close_ticks(); }
  } close_ticks{schedule};
  const auto done = schedule.acted_on();
  // The first connect attempt.
  if (!(co_await custody::async_recv(done, stop, use_awaitable)).has_value()) co_return;
  for (;;) {
    const custody::selected waited = co_await custody::async_select(
        custody::on_deadline(schedule.next_tick_at()), custody::on_stop(stop), use_awaitable);
    if (waited.status == custody::status::stopped || !schedule.send_tick()) co_return;
    if (!(co_await custody::async_recv(done, stop, use_awaitable)).has_value()) co_return;
    if (enough()) {
      on_enough();
      co_return;
    }
  }
}

}  // namespace

CarStores fireup_car_communication(Coroutines tasks, std::unique_ptr<CarDevice> device, Ticks poll,
                                   RunStats& stats, WallClock now, TickDone polled) {
  auto [task, stores] = Communication::make(std::move(device), std::move(poll), stats,
                                            std::move(now), std::move(polled));
  tasks.group.spawn(tasks.io, "car communication",
                    communicate(tasks.group.stop_token(), std::move(task)));
  return std::move(stores);
}

void fireup_increase_speed(Coroutines tasks, custody::GetSetter<CarData> data, Ticks ticks,
                           IncreaseSettings settings, LineSink out, RunStats& stats, WallClock now,
                           TickDone tick_done) {
  if (settings.conditional) {
    throw std::invalid_argument("car: the coroutine increase task has no conditional set");
  }
  tasks.group.spawn(
      tasks.io, "increase speed",
      increase_speed(tasks.group.stop_token(), std::move(data), std::move(ticks), settings,
                     std::move(out), stats, std::move(now), std::move(tick_done)));
}

void fireup_print_out_data(Coroutines tasks, custody::Subscriber<CarData> data,
                           custody::GetSubscriber<CarStatus> status, LineSink out, RunStats& stats,
                           bool quiet) {
  // Subscribed here, not in the task, so no update published after this returns is missed.
  auto readings =
      data.subscribe(custody::policy::buffer(kScreenBacklog).with_current(), "screen readings");
  auto changes =
      status.subscribe(custody::policy::buffer(kLinkBacklog).with_current(), "screen link");
  tasks.group.spawn(tasks.io, "print out data",
                    print_out_data(tasks.group.stop_token(), std::move(readings),
                                   std::move(changes), std::move(out), stats, quiet));
}

void fireup_write_data_into_file(Coroutines tasks, custody::Subscriber<CarData> data,
                                 std::unique_ptr<LineWriter> file, LineSink err, RunStats& stats) {
  auto readings = data.subscribe(custody::policy::buffer(kLogBacklog).with_current(), "log file");
  tasks.group.spawn(tasks.io, "write data into file",
                    write_data_into_file(tasks.group.stop_token(), std::move(readings),
                                         std::move(file), std::move(err), stats));
}

void fireup_schedule(Coroutines tasks, Schedule& schedule, std::function<bool()> enough,
                     std::function<void()> on_enough) {
  tasks.group.spawn(
      tasks.io, "schedule",
      run_schedule(tasks.group.stop_token(), schedule, std::move(enough), std::move(on_enough)));
}

void CoroutineRuntime::start() {
  runner_ = std::thread([this] {
    name_this_thread("coroutines");
    io_.run();
  });
}

void CoroutineRuntime::join() {
  if (runner_.joinable()) runner_.join();
}

}  // namespace car
