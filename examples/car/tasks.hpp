#pragma once
// The four tasks of the car example, one fire-up function each, as in the seed: each starts its
// task in the task group and returns what the other tasks need.
//
// Ticks come in as receivers rather than periods, so the program can hand over a
// custody::Ticker's receiver and a test can send the ticks itself, one at a time.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>

#include <custody/channel.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>

#include "car_data.hpp"
#include "car_device.hpp"
#include "log_file.hpp"

namespace car {

using SteadyTime = std::chrono::steady_clock::time_point;
/// When to act: one value per tick.
using Ticks = custody::Receiver<SteadyTime>;
/// The wall clock that stamps readings and messages.
using WallClock = std::function<WallTime()>;
/// Called by a task once it has acted on a tick, so that a paced schedule (schedule.hpp) sends
/// the next one only then. Empty: nobody waits.
using TickDone = std::function<void()>;
/// Where a task's messages go, one whole line per call. Called from several tasks at once.
using LineSink = std::function<void(std::string_view line)>;

/// Counters for the summary. Each is written by one task and read once they have all ended.
/// The four set counters split the answers the increase task got (README: "The summary"):
/// accepted requests changed the car, rejected ones did not, and timed-out and unconfirmed ones
/// may have; the readings tell.
struct RunStats {
  std::atomic<std::uint64_t> updates{0};           ///< readings published (communication)
  std::atomic<std::uint64_t> disconnects{0};       ///< links lost (communication)
  std::atomic<std::uint64_t> sets_accepted{0};     ///< the car took it and confirmed (increase)
  std::atomic<std::uint64_t> sets_rejected{0};     ///< the car did not take it (increase)
  std::atomic<std::uint64_t> sets_timed_out{0};    ///< no answer in time (increase)
  std::atomic<std::uint64_t> sets_unconfirmed{0};  ///< the car may have taken it (increase)
  /// The owner may still have acted on it: the stop came before the answer (increase).
  std::atomic<std::uint64_t> sets_unanswered{0};
  std::atomic<std::uint64_t> write_errors{0};       ///< log lines that failed to write (file)
  std::atomic<std::uint64_t> lines_missed{0};       ///< updates the log fell too far behind for
  std::atomic<std::uint64_t> updates_not_shown{0};  ///< updates the screen fell behind for
};

/// The error code of a set request the car may have taken without confirming it: the owner
/// answers it `rejected` with this code, and the increase task reports it as unconfirmed. A
/// std::errc, so that it keeps its meaning over NATS.
inline constexpr std::errc kUnconfirmed = std::errc::connection_aborted;
/// The error code of a set request whose device call a stop request cut short before it
/// reached the car.
inline constexpr std::errc kCutShort = std::errc::operation_canceled;

/// What the communication task hands out: consumer views only (its Owners never leave it), and
/// the go-ahead to start talking to the car.
struct CarStores {
  custody::Store<CarData> data;              ///< narrowed further by each consumer
  custody::GetSubscriber<CarStatus> status;  ///< consumers cannot ask to change the status

  /// Lets the task connect and publish. Call it once every consumer has subscribed: a
  /// subscription sees the updates published after it was made (and, with with_current(), the
  /// value current then), so one made later would miss the first readings. Calling it again
  /// does nothing.
  void start() { go.close(); }

  struct Go {};
  custody::Sender<Go> go;  ///< the communication task waits on its other end
};

/// Connect attempts back off in polls: 1 poll after the link is lost, then 2, 4, 8, 8, ...
inline constexpr std::uint32_t kMaxBackoffPolls = 8;

/// The seed's fireupCarCommunication. Starts the only task that talks to the car and the only
/// owner of the car-data and car-status stores. Once given the go-ahead (CarStores::start) it
/// connects and publishes a first reading at once, then on every poll tick reads the car (or,
/// while the link is down, retries with backoff), and answers set requests:
/// - accepted once the car took the speed and the owner read it back (the store holds it);
/// - rejected when the car did not take it: std::errc::not_connected, "car disconnected",
///   while the link is down; the car's own code when it refuses; kCutShort when a stop request
///   cut the call short before it reached the car;
/// - rejected with kUnconfirmed when the car may have taken it but could not confirm (the link
///   dropped). The owner then reconnects and reads the car before it answers: the answer, and
///   every request after it, find the store holding what the car does. Should the reconnect
///   fail, the link stays down and requests are rejected until a later one reads the car.
/// After a stop request it takes no new request: what is queued is answered owner_gone (or
/// stopped, for a caller that shares the stop token). Ends on stop or when `poll` closes, and
/// then closes both stores, which ends their subscribers. Calls `polled` once the first
/// connect attempt is over and after each poll tick.
CarStores fireup_car_communication(custody::TaskGroup& tasks, std::unique_ptr<CarDevice> device,
                                   Ticks poll, RunStats& stats,
                                   WallClock now = std::chrono::system_clock::now,
                                   TickDone polled = {});

/// The increase task waits for an answer for one increase period, but at least this long: an
/// answer that comes a little late is still worth having (ticks meanwhile are dropped, not
/// queued), and a request that times out leaves the caller unsure whether the car took it.
inline constexpr std::chrono::seconds kShortestSetTimeout{1};

/// The set timeout for an increase period (see kShortestSetTimeout).
inline std::chrono::nanoseconds set_timeout_for(std::chrono::nanoseconds increase_every) {
  return std::max<std::chrono::nanoseconds>(increase_every, kShortestSetTimeout);
}

struct IncreaseSettings {
  double step = 1;                                                 ///< km/h more per tick
  std::chrono::nanoseconds set_timeout = std::chrono::seconds(5);  ///< longest wait for an answer
  /// Ask with set_if: applied only if the speed read is still the newest, else "conflict".
  bool conditional = false;
};

/// The seed's fireupIncreaseSpeed (task 3). On every tick reads the speed and asks for
/// speed + step; reports the answer to `out`, then calls `tick_done`. Ends on stop, when `ticks`
/// closes, or when the owner is gone.
void fireup_increase_speed(custody::TaskGroup& tasks, custody::GetSetter<CarData> data, Ticks ticks,
                           IncreaseSettings settings, LineSink out, RunStats& stats,
                           WallClock now = std::chrono::system_clock::now, TickDone tick_done = {});

/// How many unread updates each subscriber may fall behind by before the oldest is dropped
/// (and counted). Neither ever holds back the owner; see the README. Link changes are rare and
/// each one is shown, so their backlog is large.
inline constexpr std::size_t kScreenBacklog = 16;
inline constexpr std::size_t kLinkBacklog = 1024;
inline constexpr std::size_t kLogBacklog = 1024;

/// On stop, the print and file tasks keep taking updates until the owner closes its stores, so
/// that they record everything it published; they give up after this long, should the owner be
/// stuck in a device call.
inline constexpr std::chrono::milliseconds kDrainGrace{50};

/// The seed's fireupPrintOutData (task 1). Prints each change of the link once, and each reading
/// (time, speed, location) with the link status it was read under, in the order the owner
/// committed them; with `quiet`, the link changes only. Subscribes before returning. Ends once
/// both stores are closed, or kDrainGrace after a stop request.
void fireup_print_out_data(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                           custody::GetSubscriber<CarStatus> status, LineSink out, RunStats& stats,
                           bool quiet = false);

/// The seed's fireupWriteDataIntoFile (task 2). Writes `<date>: <speed>, <location>` to `file`
/// for each reading. A failed write is reported to `err` once, and every one is counted; the
/// task keeps going. Subscribes before returning. Ends once the store is closed, or kDrainGrace
/// after a stop request.
void fireup_write_data_into_file(custody::TaskGroup& tasks, custody::Subscriber<CarData> data,
                                 std::unique_ptr<LineWriter> file, LineSink err, RunStats& stats);

}  // namespace car
