#include "tasks.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <custody/select.hpp>

#include "format.hpp"

namespace car {

namespace {

// --- communication: the owner -----------------------------------------------------------

class Communication {
 public:
  Communication(std::unique_ptr<CarDevice> device, custody::Owner<CarData> data,
                custody::Owner<CarStatus> status, custody::Receiver<CarStores::Go> go, Ticks poll,
                RunStats& stats, WallClock now)
      : device_(std::move(device)),
        data_(std::move(data)),
        status_(std::move(status)),
        both_(custody::joint(data_, status_)),
        go_(std::move(go)),
        poll_(std::move(poll)),
        stats_(stats),
        now_(std::move(now)) {}

  void run(std::stop_token stop) {
    // Only matters for policy::block subscribers; none of ours are, but a new one could be.
    data_.set_stop_token(stop);
    status_.set_stop_token(stop);
    both_.set_stop_token(stop);
    auto requests = data_.requests();
    // The go-ahead: CarStores::start() closes the channel (a value sent on it counts too).
    bool running = false;
    custody::select(custody::on_recv(
                        go_, [&](CarStores::Go) { running = true; }, [&] { running = true; }),
                    custody::on_stop(stop));
    // At once, not at the first tick: the first reading is on screen without waiting a period.
    if (running) try_connect();
    while (running) {
      custody::select(
          custody::on_recv(
              poll_, [&](SteadyTime) { poll(); }, [&] { running = false; }),
          custody::on_recv(requests, [&](custody::SetRequest<CarData> r) { answer(std::move(r)); }),
          custody::on_stop(stop, [&] { running = false; }));
    }
    // Closing tells every subscriber (they drain, then end) and answers queued requests.
    data_.close();
    status_.close();
  }

 private:
  bool connected() const { return status_.value().connected; }

  std::optional<CarData> read() {
    const auto speed = device_->get_speed();
    if (!speed) return std::nullopt;
    const auto location = device_->get_location();
    if (!location) return std::nullopt;
    return CarData{*speed, *location, now_()};
  }

  void poll() {
    if (!connected()) {
      if (--retry_in_ == 0) try_connect();
      return;
    }
    if (!device_->is_connected()) return link_lost("the car reports the link down");
    const auto reading = read();
    if (!reading) return link_lost("no answer while reading speed and location");
    data_.publish(*reading);
    ++stats_.updates;
  }

  void try_connect() {
    if (const std::error_code ec = device_->connect()) return attempt_failed(ec.message());
    const auto reading = read();
    if (!reading) return attempt_failed("the link dropped right after connecting");
    // One step: nobody sees "connected" next to a reading from before the outage.
    both_.update([&](CarData& d, CarStatus& s) {
      d = *reading;
      s.connected = true;
      s.retry_in_polls = 0;
      s.changed = reading->time;
      ++s.changes;
    });
    ++stats_.updates;
    backoff_ = 1;
  }

  void link_lost(std::string why) {
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

  void attempt_failed(std::string why) {
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

  void answer(custody::SetRequest<CarData> r) {
    // Its caller stopped waiting: acting on it would surprise them. Dropping it answers
    // "dropped".
    if (r.abandoned()) return;
    if (!connected()) {
      std::move(r).reject(std::errc::not_connected, "car disconnected");
      return;
    }
    // Only the speed is the caller's to choose; the rest is measured.
    const double wanted = r.value().speed;
    if (const std::error_code ec = device_->set_speed(wanted)) {
      if (ec == std::errc::not_connected) {
        link_lost("the link dropped during set_speed");
        std::move(r).reject(ec, "car disconnected");
      } else {
        std::move(r).reject(ec, "the car refused: " + ec.message());
      }
      return;
    }
    const auto reading = read();
    if (!reading) {
      link_lost("the link dropped before the car confirmed the new speed");
      std::move(r).reject(std::errc::not_connected,
                          "car disconnected before confirming the new speed");
      return;
    }
    data_.accept(std::move(r), *reading);
    ++stats_.updates;
  }

  std::unique_ptr<CarDevice> device_;
  custody::Owner<CarData> data_;
  custody::Owner<CarStatus> status_;
  custody::Joint<CarData, CarStatus> both_;  // refers to data_ and status_
  custody::Receiver<CarStores::Go> go_;
  Ticks poll_;
  RunStats& stats_;
  WallClock now_;
  std::uint32_t backoff_ = 1;   // doubled by each failed attempt: the polls to wait after it
  std::uint32_t retry_in_ = 1;  // polls until the next connect attempt, while disconnected
};

// --- increase speed -------------------------------------------------------------------

void increase_speed(std::stop_token stop, custody::GetSetter<CarData> data, Ticks ticks,
                    IncreaseSettings settings, const LineSink& out, RunStats& stats,
                    const WallClock& now) {
  bool running = true;
  auto increase = [&] {
    CarData wanted = data.get();
    wanted.speed += settings.step;
    const auto result = data.set_for(wanted, settings.set_timeout, stop);
    std::string line = time_of_day(now()) + "  set speed " + fixed2(wanted.speed) + " km/h: ";
    switch (result.status()) {
      case custody::set_status::accepted:
        ++stats.sets_accepted;
        out(line + "accepted");
        return;
      case custody::set_status::rejected:
        ++stats.sets_rejected;
        out(line + "rejected (" + result.message() + ")");
        return;
      case custody::set_status::timeout:
        ++stats.sets_rejected;
        out(line + "no answer within " + format_duration(settings.set_timeout));
        return;
      case custody::set_status::dropped:
        ++stats.sets_rejected;
        out(line + "dropped unanswered");
        return;
      case custody::set_status::disconnected:
        ++stats.sets_rejected;
        out(line + "not sent: the car's owner is unreachable");
        return;
      case custody::set_status::owner_gone:
      case custody::set_status::stopped:
        running = false;  // shutting down: nobody is left to answer
        return;
    }
  };
  while (running) {
    custody::select(custody::on_recv(
                        ticks, [&](SteadyTime) { increase(); }, [&] { running = false; }),
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

void print_out_data(std::stop_token stop, custody::Subscription<CarData> readings,
                    custody::Subscription<CarStatus> changes, custody::Getter<CarStatus> status,
                    const LineSink& out, RunStats& stats) {
  CarStatus shown;  // the link as last reported on screen
  const auto show_status = [&](const CarStatus& s) {
    if (s.changes <= shown.changes) return;  // shown already (see show_reading)
    if (const auto change = link_change(shown, s)) out(time_of_day(s.changed) + "  " + *change);
    shown = s;
  };
  const auto show_reading = [&](const CarData& d) {
    if (!d.measured()) return;  // the store's initial value: nothing read yet
    // The status was committed with (or before) this reading, but its own update may not have
    // arrived yet: show a change of the link before the reading that follows it.
    show_status(status.get());
    std::string line = time_of_day(d.time) + "  speed " + pad_left(fixed2(d.speed), 7) +
                       " km/h  location " + pad_left(fixed2(d.location), 10) + " m  " +
                       (shown.connected ? "connected" : "disconnected");
    if (const auto missed = readings.take_missed()) {
      stats.updates_not_shown += missed;
      line += "  (" + count(missed, "earlier update", "earlier updates") + " not shown)";
    }
    out(line);
  };
  bool readings_open = true, changes_open = true, stopping = false, gave_up = false;
  SteadyTime give_up_at{};
  while ((readings_open || changes_open) && !gave_up) {
    custody::select(
        custody::on_recv(readings, show_reading, [&] { readings_open = false; })
            .when(readings_open),
        custody::on_recv(changes, show_status, [&] { changes_open = false; }).when(changes_open),
        custody::on_stop(stop,
                         [&] {
                           stopping = true;
                           give_up_at = std::chrono::steady_clock::now() + kDrainGrace;
                         })
            .when(!stopping),
        custody::on_deadline(give_up_at, [&] { gave_up = true; }).when(stopping));
  }
}

// --- write into file ------------------------------------------------------------------

void write_data_into_file(std::stop_token stop, custody::Subscription<CarData> readings,
                          LineWriter& file, const LineSink& err, RunStats& stats) {
  bool reported = false;
  const auto write = [&](const CarData& d) {
    if (!d.measured()) return;
    if (const auto missed = readings.take_missed()) {
      stats.lines_missed += missed;
      err("custody-car: the log file fell behind; " + count(missed, "update was", "updates were") +
          " not written to " + file.name());
    }
    if (const std::error_code ec = file.write_line(log_line(d))) {
      ++stats.write_errors;
      if (!reported) {
        reported = true;
        err("custody-car: cannot write to log file " + file.name() + ": " + ec.message() +
            " (later write errors are only counted)");
      }
    }
  };
  // Until the owner closes the store (and what it holds is written)...
  auto r = readings.recv(stop);
  for (; r; r = readings.recv(stop)) write(*r);
  if (r.status() != custody::status::stopped) return;
  // ... or, once stop is requested, until it does so or the grace period is over.
  const SteadyTime give_up_at = std::chrono::steady_clock::now() + kDrainGrace;
  for (r = readings.recv_until(give_up_at); r; r = readings.recv_until(give_up_at)) write(*r);
}

}  // namespace

CarStores fireup_car_communication(custody::TaskGroup& tasks, std::unique_ptr<CarDevice> device,
                                   Ticks poll, RunStats& stats, WallClock now) {
  auto [data_owner, data] = custody::make_store<CarData>(CarData{});
  auto [status_owner, status] = custody::make_store<CarStatus>(CarStatus{});
  custody::Channel<CarStores::Go> go;
  // Heap-allocated: the Joint inside refers to the owners next to it, which must not move.
  auto task = std::make_unique<Communication>(std::move(device), std::move(data_owner),
                                              std::move(status_owner), go.receiver(),
                                              std::move(poll), stats, std::move(now));
  tasks.spawn("car communication",
              [task = std::move(task)](std::stop_token stop) { task->run(std::move(stop)); });
  return CarStores{std::move(data), std::move(status), go.sender()};
}

void fireup_increase_speed(custody::TaskGroup& tasks, custody::GetSetter<CarData> data, Ticks ticks,
                           IncreaseSettings settings, LineSink out, RunStats& stats,
                           WallClock now) {
  tasks.spawn("increase speed", [=, &stats](std::stop_token stop) {
    increase_speed(std::move(stop), data, ticks, settings, out, stats, now);
  });
}

void fireup_print_out_data(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                           custody::GetSubscriber<CarStatus> status, LineSink out,
                           RunStats& stats) {
  // Subscribed here, not in the task, so no update published after this returns is missed.
  auto readings = data.subscribe(custody::policy::buffer(kScreenBacklog).with_current());
  auto changes = status.subscribe(custody::policy::buffer(kScreenBacklog).with_current());
  tasks.spawn("print out data", [=, &stats](std::stop_token stop) {
    print_out_data(std::move(stop), readings, changes, status, out, stats);
  });
}

void fireup_write_data_into_file(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                                 std::unique_ptr<LineWriter> file, LineSink err, RunStats& stats) {
  auto readings = data.subscribe(custody::policy::buffer(kLogBacklog).with_current());
  tasks.spawn("write data into file",
              [readings, file = std::move(file), err, &stats](std::stop_token stop) {
                write_data_into_file(std::move(stop), readings, *file, err, stats);
              });
}

}  // namespace car
