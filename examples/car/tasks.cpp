#include "tasks.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <custody/select.hpp>

#include "format.hpp"
#include "task_steps.hpp"

namespace car {

// --- communication: the owner -----------------------------------------------------------

std::pair<std::unique_ptr<Communication>, CarStores> Communication::make(
    std::unique_ptr<CarDevice> device, Ticks poll, RunStats& stats, WallClock now,
    TickDone polled) {
  auto [data_owner, data] = custody::make_store<CarData>(CarData{}, {.name = "car data"});
  auto [status_owner, status] = custody::make_store<CarStatus>(CarStatus{}, {.name = "car status"});
  custody::Channel<CarStores::Go> go(0, "go");
  // Heap-allocated: the Joint inside refers to the owners next to it, which must not move.
  std::unique_ptr<Communication> task(
      new Communication(std::move(device), std::move(data_owner), std::move(status_owner),
                        go.receiver(), std::move(poll), stats, std::move(now), std::move(polled)));
  return {std::move(task), CarStores{std::move(data), std::move(status), go.sender()}};
}

Communication::Communication(std::unique_ptr<CarDevice> device, custody::Owner<CarData> data,
                             custody::Owner<CarStatus> status, custody::Receiver<CarStores::Go> go,
                             Ticks poll, RunStats& stats, WallClock now, TickDone polled)
    : device_(std::move(device)),
      data_(std::move(data)),
      status_(std::move(status)),
      both_(custody::joint(data_, status_)),
      go_(std::move(go)),
      poll_(std::move(poll)),
      stats_(stats),
      now_(std::move(now)),
      polled_(std::move(polled)) {}

void Communication::begin(std::stop_token stop) {
  stop_ = stop;
  // Only matters for policy::block subscribers; none of ours are, but a new one could be.
  data_.set_stop_token(stop);
  status_.set_stop_token(stop);
  both_.set_stop_token(stop);
}

void Communication::connect_first() {
  try_connect();
  tick_done();
}

void Communication::on_poll() {
  poll();
  tick_done();
}

void Communication::end() {
  data_.close();
  status_.close();
}

std::optional<CarData> Communication::read() {
  const auto speed = device_->get_speed();
  if (!speed) return std::nullopt;
  const auto location = device_->get_location();
  if (!location) return std::nullopt;
  return CarData{*speed, *location, now_(), status_.value().changes};
}

void Communication::poll() {
  if (!connected()) {
    if (--retry_in_ == 0) try_connect();
    return;
  }
  if (!device_->is_connected()) {
    if (!cut_short()) link_lost("the car reports the link down");
    return;
  }
  const auto reading = read();
  if (!reading) {
    if (!cut_short()) link_lost("no answer while reading speed and location");
    return;
  }
  data_.publish(*reading);
  ++stats_.updates;
}

void Communication::try_connect() {
  if (const std::error_code ec = device_->connect()) {
    if (ec != kCutShort) attempt_failed(ec.message());
    return;
  }
  const auto reading = read();
  if (!reading) {
    if (!cut_short()) attempt_failed("the link dropped right after connecting");
    return;
  }
  // One step: nobody sees "connected" next to a reading from before the outage, and the
  // reading records the status it was taken under.
  both_.update([&](CarData& d, CarStatus& s) {
    s.connected = true;
    s.retry_in_polls = 0;
    s.changed = reading->time;
    ++s.changes;
    d = *reading;
    d.link = s.changes;
  });
  ++stats_.updates;
  backoff_ = 1;
}

void Communication::link_lost(std::string why) {
  retry_in_ = backoff_ = 1;
  status_.update([&](CarStatus& s) {
    s.connected = false;
    ++s.disconnects;
    s.failed_attempts = 0;
    s.retry_in_polls = retry_in_;
    s.last_error = std::move(why);
    s.changed = now_();
    ++s.changes;
  });
  ++stats_.disconnects;
}

void Communication::attempt_failed(std::string why) {
  backoff_ = std::min(backoff_ * 2, kMaxBackoffPolls);
  retry_in_ = backoff_;
  status_.update([&](CarStatus& s) {
    ++s.failed_attempts;
    s.retry_in_polls = retry_in_;
    s.last_error = std::move(why);
    s.changed = now_();
    ++s.changes;
  });
}

void Communication::answer(custody::SetRequest<CarData> r) {
  // Taken in the same instant as a stop request (select picks any ready case): the owner
  // takes nothing new after a stop. Closing first makes accept() answer owner_gone and
  // change nothing, as for the requests still queued.
  if (stop_.stop_requested()) {
    data_.close();
    (void)data_.accept(std::move(r));
    return;
  }
  // Its caller stopped waiting: acting on it would surprise them. Dropping it answers
  // "dropped".
  if (r.abandoned()) return;
  // A conditional set (the monitor's) computed from a reading that is not the newest any
  // more: the car is not asked, the caller decides anew.
  if (const auto expected = r.expected_version(); expected && *expected != data_.version()) {
    (void)std::move(r).answer(custody::set_status::conflict);
    return;
  }
  // Also while a set the car may have taken is unconfirmed: the link is down until the
  // reconnect reads the car again.
  if (!connected()) {
    std::move(r).reject(std::errc::not_connected, "car disconnected");
    return;
  }
  // Only the speed is the caller's to choose; the rest is measured.
  const double wanted = r.value().speed;
  if (const std::error_code ec = device_->set_speed(wanted)) {
    if (ec == kCutShort) {
      std::move(r).reject(ec, "cut short by the stop before it reached the car");
    } else if (ec == std::errc::not_connected) {
      link_lost("the link was down at set_speed");
      std::move(r).reject(ec, "car disconnected");
    } else if (ec == kUnconfirmed) {
      mark_lost_and_read_again("the link dropped during set_speed");
      std::move(r).reject(ec, "the link dropped during the call; the car may have taken it");
    } else if (ec == std::errc::result_out_of_range) {
      std::move(r).reject(
          ec, "the car refused: above its top speed of " + format_number(kTopSpeedKmh) + " km/h");
    } else {
      std::move(r).reject(ec, "the car refused: " + ec.message());
    }
    return;
  }
  // The car took it: read it back before answering, so that the store holds what the car
  // does.
  const auto reading = read();
  if (!reading) {
    if (cut_short()) {
      std::move(r).reject(kUnconfirmed, "the car took it, but the stop cut the read-back short");
      return;
    }
    mark_lost_and_read_again("the link dropped before the car confirmed the new speed");
    std::move(r).reject(kUnconfirmed,
                        "the car took it, but the link dropped before it was read back");
    return;
  }
  // Counted first: once answered, the caller may look at the count (a paced schedule does).
  ++stats_.updates;
  data_.accept(std::move(r), *reading);
}

// A set the car may have taken, unconfirmed: the link is marked lost, and the owner
// reconnects and reads the car before it answers anything, so that the store (and what the
// next request asks for) holds what the car does. If that fails, the link stays down and the
// usual backoff applies.
void Communication::mark_lost_and_read_again(std::string why) {
  link_lost(std::move(why));
  try_connect();
}

namespace {

// The thread runtime's communication task.
void communicate(std::stop_token stop, Communication& c) {
  c.begin(stop);
  const auto requests = c.requests();
  // The go-ahead: CarStores::start() closes the channel (a value sent on it counts too).
  bool running = false;
  custody::select(custody::on_recv(
                      c.go(), [&](CarStores::Go) { running = true; }, [&] { running = true; }),
                  custody::on_stop(stop));
  // At once, not at the first tick: the first reading is on screen without waiting a period.
  if (running) c.connect_first();
  while (running && !stop.stop_requested()) {
    custody::select(
        custody::on_recv(
            c.poll_ticks(), [&](SteadyTime) { c.on_poll(); }, [&] { running = false; }),
        custody::on_recv(requests, [&](custody::SetRequest<CarData> r) { c.answer(std::move(r)); }),
        custody::on_stop(stop, [&] { running = false; }));
  }
  // Closing tells every subscriber (they drain, then end) and answers queued requests.
  c.end();
}

}  // namespace

// --- increase speed -------------------------------------------------------------------

std::pair<CarData, std::uint64_t> next_speed(const custody::GetSetter<CarData>& data, double step) {
  auto [wanted, version] = data.get_versioned();
  wanted.speed += step;
  return {wanted, version};
}

bool report_answer(const custody::set_result<CarData>& result, double wanted,
                   const IncreaseSettings& settings, const LineSink& out, RunStats& stats,
                   const WallClock& now) {
  const std::string line = time_of_day(now()) + "  set speed " + fixed2(wanted) + " km/h: ";
  switch (result.status()) {
    case custody::set_status::accepted:
      ++stats.sets_accepted;
      out(line + "accepted");
      return true;
    case custody::set_status::rejected:
      if (result.error() == kUnconfirmed) {
        ++stats.sets_unconfirmed;
        out(line + "unconfirmed (" + result.message() + ")");
      } else if (result.error() == kCutShort) {
        ++stats.sets_rejected;
        out(line + "cut short (" + result.message() + ")");
      } else {
        ++stats.sets_rejected;
        out(line + "rejected (" + result.message() + ")");
      }
      return true;
    case custody::set_status::timeout:
      ++stats.sets_timed_out;
      out(line + "no answer within " + format_duration(settings.set_timeout) +
          " (the car may still take it)");
      return true;
    case custody::set_status::dropped:
      ++stats.sets_rejected;
      out(line + "dropped unanswered");
      return true;
    case custody::set_status::conflict:  // settings.conditional: the speed moved on
      ++stats.sets_rejected;
      out(line + "conflict (the speed changed since it was read; not applied)");
      return true;
    case custody::set_status::disconnected:
      // A remote store: the request may have reached the owner before the link went.
      ++stats.sets_unconfirmed;
      out(line + "unconfirmed (the car's owner is unreachable)");
      return true;
    case custody::set_status::stopped:
      ++stats.sets_unanswered;  // the owner may have been carrying it out
      return false;
    case custody::set_status::owner_gone:
      return false;  // shutting down: nobody is left to answer
  }
  return false;
}

namespace {

void increase_speed(std::stop_token stop, custody::GetSetter<CarData> data, Ticks ticks,
                    IncreaseSettings settings, const LineSink& out, RunStats& stats,
                    const WallClock& now, const TickDone& tick_done) {
  bool running = true;
  auto increase = [&] {
    const auto [wanted, version] = next_speed(data, settings.step);
    const auto result = settings.conditional
                            ? data.set_if_for(version, wanted, settings.set_timeout, stop)
                            : data.set_for(wanted, settings.set_timeout, stop);
    running = report_answer(result, wanted.speed, settings, out, stats, now);
  };
  while (running) {
    custody::select(custody::on_recv(
                        ticks,
                        [&](SteadyTime) {
                          increase();
                          if (tick_done) tick_done();
                        },
                        [&] { running = false; }),
                    custody::on_stop(stop, [&] { running = false; }));
  }
}

// --- print ----------------------------------------------------------------------------

std::string pad_left(std::string s, std::size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

// What changed in the link between two statuses, or nothing worth a line.
std::optional<std::string> link_change(const CarStatus& before, const CarStatus& now) {
  const auto attempts = [](std::uint32_t n) {
    return count(n, "failed attempt", "failed attempts");
  };
  if (now.connected && !before.connected) {
    std::string line = now.disconnects == 0 ? "car connected" : "car reconnected";
    if (now.failed_attempts > 0) line += " after " + attempts(now.failed_attempts);
    return line;
  }
  if (!now.connected && now.disconnects > before.disconnects) {
    return "car disconnected: " + now.last_error +
           "; set requests are rejected until it reconnects";
  }
  if (!now.connected && now.failed_attempts > before.failed_attempts) {
    return "connect attempt " + std::to_string(now.failed_attempts) + " failed: " + now.last_error +
           "; next in " + count(now.retry_in_polls, "poll", "polls");
  }
  return std::nullopt;
}

}  // namespace

void InCommitOrder::add_reading(CarData d) {
  if (const auto missed = readings_.take_missed()) missed_ += missed;
  if (d.measured()) held_readings_.push_back(d);  // not the store's initial value
}

void InCommitOrder::show_due() {
  for (auto s = changes_.try_recv(); s; s = changes_.try_recv()) add_change(std::move(*s));
  for (auto d = readings_.try_recv(); d; d = readings_.try_recv()) add_reading(*d);
  show(false);
}

void InCommitOrder::show(bool everything) {
  for (;;) {
    const bool change_due =
        !held_changes_.empty() &&
        (held_readings_.empty() || held_changes_.front().changes <= held_readings_.front().link);
    if (change_due) {
      show_change(held_changes_.front());
      held_changes_.pop_front();
    } else if (!held_readings_.empty() &&
               (everything || held_readings_.front().link <= shown_.changes)) {
      show_reading(held_readings_.front());
      held_readings_.pop_front();
    } else {
      return;
    }
  }
}

void InCommitOrder::show_change(const CarStatus& s) {
  if (s.changes != 0 && s.changes <= shown_.changes) return;  // shown already
  if (const auto change = link_change(shown_, s)) out_(time_of_day(s.changed) + "  " + *change);
  shown_ = s;
}

void InCommitOrder::show_reading(const CarData& d) {
  if (quiet_) return;
  std::string line = time_of_day(d.time) + "  speed " + pad_left(fixed2(d.speed), 7) +
                     " km/h  location " + pad_left(fixed2(d.location), 10) + " m  " +
                     (shown_.connected ? "connected" : "disconnected");
  if (missed_ > 0) {
    stats_.updates_not_shown += missed_;
    line += "  (" + count(missed_, "earlier update", "earlier updates") + " not shown)";
    missed_ = 0;
  }
  out_(line);
}

namespace {

void print_out_data(std::stop_token stop, custody::Subscription<CarData> readings,
                    custody::Subscription<CarStatus> changes, const LineSink& out, RunStats& stats,
                    bool quiet) {
  ScreenLoop screen(readings, changes, out, stats, quiet);
  while (screen.running()) {
    screen.wait(stop, [](auto&&... cases) {
      return custody::select(std::forward<decltype(cases)>(cases)...);
    });
    screen.show_due();
  }
  screen.show_rest();
}

}  // namespace

// --- write into file ------------------------------------------------------------------

void LogWriting::write(const CarData& d) {
  if (!d.measured()) return;
  if (const auto missed = readings_.take_missed()) {
    stats_.lines_missed += missed;
    err_("custody-car: the log file fell behind; " + count(missed, "update was", "updates were") +
         " not written to " + file_.name());
  }
  if (const std::error_code ec = file_.write_line(log_line(d))) {
    ++stats_.write_errors;
    if (!reported_) {
      reported_ = true;
      err_("custody-car: cannot write to log file " + file_.name() + ": " + ec.message() +
           " (later write errors are only counted)");
    }
  }
}

namespace {

void write_data_into_file(std::stop_token stop, custody::Subscription<CarData> readings,
                          LineWriter& file, const LineSink& err, RunStats& stats) {
  LogWriting log(readings, file, err, stats);
  // Until the owner closes the store (and what it holds is written)...
  auto r = readings.recv(stop);
  for (; r; r = readings.recv(stop)) log.write(*r);
  if (r.status() != custody::status::stopped) return;
  // ... or, once stop is requested, until it does so or the grace period is over.
  const SteadyTime give_up_at = std::chrono::steady_clock::now() + kDrainGrace;
  for (r = readings.recv_until(give_up_at); r; r = readings.recv_until(give_up_at)) log.write(*r);
}

}  // namespace

CarStores fireup_car_communication(custody::TaskGroup& tasks, std::unique_ptr<CarDevice> device,
                                   Ticks poll, RunStats& stats, WallClock now, TickDone polled) {
  auto [task, stores] = Communication::make(std::move(device), std::move(poll), stats,
                                            std::move(now), std::move(polled));
  tasks.spawn("car communication", [task = std::move(task)](std::stop_token stop) {
    communicate(std::move(stop), *task);
  });
  return std::move(stores);
}

void fireup_increase_speed(custody::TaskGroup& tasks, custody::GetSetter<CarData> data, Ticks ticks,
                           IncreaseSettings settings, LineSink out, RunStats& stats, WallClock now,
                           TickDone tick_done) {
  tasks.spawn("increase speed", [=, &stats](std::stop_token stop) {
    increase_speed(std::move(stop), data, ticks, settings, out, stats, now, tick_done);
  });
}

void fireup_print_out_data(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                           custody::GetSubscriber<CarStatus> status, LineSink out, RunStats& stats,
                           bool quiet) {
  // Subscribed here, not in the task, so no update published after this returns is missed.
  auto readings =
      data.subscribe(custody::policy::buffer(kScreenBacklog).with_current(), "screen readings");
  auto changes =
      status.subscribe(custody::policy::buffer(kLinkBacklog).with_current(), "screen link");
  tasks.spawn("print out data", [=, &stats](std::stop_token stop) {
    print_out_data(std::move(stop), readings, changes, out, stats, quiet);
  });
}

void fireup_write_data_into_file(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                                 std::unique_ptr<LineWriter> file, LineSink err, RunStats& stats) {
  auto readings = data.subscribe(custody::policy::buffer(kLogBacklog).with_current(), "log file");
  tasks.spawn("write data into file",
              [readings, file = std::move(file), err, &stats](std::stop_token stop) {
                write_data_into_file(std::move(stop), readings, *file, err, stats);
              });
}

}  // namespace car
