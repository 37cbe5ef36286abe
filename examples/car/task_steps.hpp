#pragma once
// The steps of the car's tasks, shared by both runtimes: tasks.cpp runs them on threads and
// coro_tasks.cpp as coroutines on one io_context thread. A step acts on what one wait brought (a
// tick, a set request, an answer, an update) and never waits on a channel or store itself, so
// the runtimes differ only in how they wait, and print, log and count the same things.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stop_token>
#include <string>
#include <utility>

#include <custody/channel.hpp>
#include <custody/select.hpp>
#include <custody/store.hpp>

#include "car_data.hpp"
#include "car_device.hpp"
#include "log_file.hpp"
#include "tasks.hpp"

namespace car {

/// The communication task's state and steps: the only owner of both stores and the only caller
/// of the device (see fireup_car_communication for what it does and answers). Called from one
/// task at a time. Not movable: its Joint refers to the owners inside it.
class Communication {
 public:
  /// Makes both stores, and the task that owns them.
  static std::pair<std::unique_ptr<Communication>, CarStores> make(
      std::unique_ptr<CarDevice> device, Ticks poll, RunStats& stats, WallClock now,
      TickDone polled);

  Communication(const Communication&) = delete;
  Communication& operator=(const Communication&) = delete;

  /// What the task waits on: the go-ahead (CarStores::start closes it), the poll ticks and the
  /// set requests.
  const custody::Receiver<CarStores::Go>& go() const { return go_; }
  const Ticks& poll_ticks() const { return poll_; }
  custody::Receiver<custody::SetRequest<CarData>> requests() const { return data_.requests(); }

  /// First of all: the stop request that ends the task and cuts its answers short.
  void begin(std::stop_token stop);
  /// After the go-ahead: connects and publishes a first reading at once.
  void connect_first();
  /// On each poll tick: reads the car, or retries the link with backoff.
  void on_poll();
  /// Answers one set request.
  void answer(custody::SetRequest<CarData> r);
  /// Last: closes both stores, which ends their subscribers and answers queued requests.
  void end();

 private:
  Communication(std::unique_ptr<CarDevice> device, custody::Owner<CarData> data,
                custody::Owner<CarStatus> status, custody::Receiver<CarStores::Go> go, Ticks poll,
                RunStats& stats, WallClock now, TickDone polled);

  bool connected() const { return status_.value().connected; }
  void tick_done() const {
    if (polled_) polled_();
  }
  // A device call that failed because a stop request cut it short, not because of the link.
  bool cut_short() const { return stop_.stop_requested(); }
  std::optional<CarData> read();
  void poll();
  void try_connect();
  void link_lost(std::string why);
  void attempt_failed(std::string why);
  void mark_lost_and_read_again(std::string why);

  std::unique_ptr<CarDevice> device_;
  custody::Owner<CarData> data_;
  custody::Owner<CarStatus> status_;
  custody::Joint<CarData, CarStatus> both_;  // refers to data_ and status_
  custody::Receiver<CarStores::Go> go_;
  Ticks poll_;
  RunStats& stats_;
  WallClock now_;
  TickDone polled_;
  std::stop_token stop_;
  std::uint32_t backoff_ = 1;   // doubled by each failed attempt: the polls to wait after it
  std::uint32_t retry_in_ = 1;  // polls until the next connect attempt, while disconnected
};

/// The speed the increase task asks for next, and the version it was read at.
std::pair<CarData, std::uint64_t> next_speed(const custody::GetSetter<CarData>& data, double step);

/// The increase task's report of one answer: counts it and prints
/// `<time>  set speed <wanted> km/h: <answer>`. Returns false when the task is to end (the stop
/// came, or the owner is gone), which prints nothing.
bool report_answer(const custody::set_result<CarData>& result, double wanted,
                   const IncreaseSettings& settings, const LineSink& out, RunStats& stats,
                   const WallClock& now);

/// Puts the readings and link changes the print task's two subscriptions deliver back in the
/// order the owner committed them, and shows them: each link change once, each reading with the
/// link status it was read under (CarData::link: the CarStatus::changes of that status).
///
/// The owner fills every subscription as it commits, so once a value has arrived, whatever was
/// committed before it has arrived too, on the other subscription as well. show_due() takes the
/// link changes first and the readings second, so a reading taken after a link change never
/// comes without it; a reading that claims a newer status than any seen waits for it.
class InCommitOrder {
 public:
  InCommitOrder(custody::Subscription<CarData>& readings, custody::Subscription<CarStatus>& changes,
                const LineSink& out, RunStats& stats, bool quiet)
      : readings_(readings), changes_(changes), out_(out), stats_(stats), quiet_(quiet) {}

  void add_reading(CarData d);
  void add_change(CarStatus s) { held_changes_.push_back(std::move(s)); }

  /// Takes what else has arrived (never waits), link changes first, then shows what is due.
  void show_due();
  /// The stores are closed (or the stop's grace is over): nothing more will arrive.
  void show_rest() { show(true); }

 private:
  void show(bool everything);
  void show_change(const CarStatus& s);
  void show_reading(const CarData& d);

  custody::Subscription<CarData>& readings_;
  custody::Subscription<CarStatus>& changes_;
  const LineSink& out_;
  RunStats& stats_;
  const bool quiet_;
  std::deque<CarData> held_readings_;
  std::deque<CarStatus> held_changes_;
  CarStatus shown_;           // the link as last shown
  std::uint64_t missed_ = 0;  // readings dropped before the next one shown
};

/// The print task's loop around InCommitOrder: which subscriptions are still open, and the grace
/// a stop leaves them to drain. Each round waits in the runtime's own select over wait()'s cases.
class ScreenLoop {
 public:
  ScreenLoop(custody::Subscription<CarData>& readings, custody::Subscription<CarStatus>& changes,
             const LineSink& out, RunStats& stats, bool quiet)
      : readings_(readings), changes_(changes), screen_(readings, changes, out, stats, quiet) {}

  /// Until both stores are closed, or the grace after a stop is over.
  bool running() const { return (readings_open_ || changes_open_) && !gave_up_; }
  /// A stop was requested: the rounds go on until the stores close or the grace ends.
  bool stopping() const { return stopping_; }

  /// One round: `select` (the runtime's, blocking or asynchronous) over a reading, a link
  /// change, the stop and, once stopping, the end of the grace. `stop` must outlive the round.
  template <class Select>
  decltype(auto) wait(const std::stop_token& stop, Select&& select) {
    return std::forward<Select>(select)(
        custody::on_recv(
            readings_, [this](CarData d) { screen_.add_reading(d); },
            [this] { readings_open_ = false; })
            .when(readings_open_),
        custody::on_recv(
            changes_, [this](CarStatus s) { screen_.add_change(std::move(s)); },
            [this] { changes_open_ = false; })
            .when(changes_open_),
        custody::on_stop(stop,
                         [this] {
                           stopping_ = true;
                           give_up_at_ = std::chrono::steady_clock::now() + kDrainGrace;
                         })
            .when(!stopping_),
        custody::on_deadline(give_up_at_, [this] { gave_up_ = true; }).when(stopping_));
  }

  /// After each round: shows what is due.
  void show_due() { screen_.show_due(); }
  /// After the last round.
  void show_rest() { screen_.show_rest(); }

 private:
  custody::Subscription<CarData>& readings_;
  custody::Subscription<CarStatus>& changes_;
  InCommitOrder screen_;
  bool readings_open_ = true;
  bool changes_open_ = true;
  bool stopping_ = false;
  bool gave_up_ = false;
  SteadyTime give_up_at_{};
};

/// The file task's step: writes one reading to the log, counting what the subscription missed
/// before it and what fails to write (the first failure is reported to `err`).
class LogWriting {
 public:
  LogWriting(custody::Subscription<CarData>& readings, LineWriter& file, const LineSink& err,
             RunStats& stats)
      : readings_(readings), file_(file), err_(err), stats_(stats) {}

  void write(const CarData& d);

 private:
  custody::Subscription<CarData>& readings_;
  LineWriter& file_;
  const LineSink& err_;
  RunStats& stats_;
  bool reported_ = false;
};

}  // namespace car
