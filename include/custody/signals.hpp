#pragma once
// SignalStop: turns SIGINT/SIGTERM into std::stop_source::request_stop(), e.g. to shut a
// custody::TaskGroup down cleanly on Ctrl-C:
//
//   custody::TaskGroup group;
//   auto on_signal = custody::stop_on_signals(group.stop_source());
//   group.spawn("server", [](std::stop_token st) { ... });
//   group.wait();
//
// The signal handler does only async-signal-safe work: it writes the signal number to a
// non-blocking self-pipe. A watcher thread blocked in read(2) on that pipe (no polling) records
// the signal and calls request_stop(), so stop callbacks run on that thread, never inside the
// handler.
//
// Escalation: once stop has been requested — by an earlier watched signal or by anything else —
// the next watched signal restores the default disposition (SIG_DFL) and re-raises itself, so a
// program stuck during shutdown can still be killed with a second Ctrl-C.
//
// POSIX only.

#if defined(__unix__) || defined(__APPLE__)

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "detail/signal_pipe.hpp"

namespace custody {

namespace detail::signal_stop {

// Only lock-free atomics may be touched from a signal handler.
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

// Process-wide because a signal handler has no other way to find its state.
inline std::atomic<bool> active{false};    // a SignalStop exists
inline std::atomic<bool> escalate{false};  // the next signal should kill the process

struct tag {};  // its self-pipe's (signal_pipe.hpp)

inline void handler(int sig) noexcept {
  const int saved_errno = errno;
  if (escalate.exchange(true)) {
    // Stop was already requested: fall back to the default action. The signal is blocked while
    // its handler runs, so the re-raised one is delivered (with SIG_DFL) as the handler returns.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    ::raise(sig);
  } else {
    signal_pipe_end<tag>::forward(sig);
  }
  errno = saved_errno;
}

// Registered on the stop token: a stop from any source arms escalation.
struct ArmEscalation {
  void operator()() const noexcept { escalate.store(true); }
};

}  // namespace detail::signal_stop

/// RAII guard: while alive, the given signals request stop on the given stop source.
///
/// Only one SignalStop may exist in the process at a time. Signals that every thread blocks
/// (pthread_sigmask) never reach the handler and so have no effect.
class SignalStop {
 public:
  /// Installs handlers (with sigaction, SA_RESTART) for `signals`, remembering the previous
  /// dispositions, and starts the watcher thread. `source` is copied, so it shares its stop
  /// state with the caller's (e.g. TaskGroup::stop_source()).
  ///
  /// Throws std::logic_error if another SignalStop is alive; std::invalid_argument if `signals`
  /// is empty, holds SIGKILL/SIGSTOP or a number outside 1..255, or `source` has no stop state;
  /// std::system_error if a pipe, thread or handler cannot be set up (anything already installed
  /// is undone first).
  explicit SignalStop(std::stop_source source,
                      std::initializer_list<int> signals = {SIGINT, SIGTERM})
      : SignalStop(std::move(source), std::span<const int>(signals.begin(), signals.size())) {}

  /// As above, with the signals given as a span.
  SignalStop(std::stop_source source, std::span<const int> signals) : source_(std::move(source)) {
    namespace state = detail::signal_stop;
    if (!source_.stop_possible()) {
      throw std::invalid_argument("custody::SignalStop: the stop_source has no stop state");
    }
    if (signals.empty()) throw std::invalid_argument("custody::SignalStop: no signals given");
    for (const int sig : signals) {
      // The number travels through the pipe as a single byte.
      if (sig <= 0 || sig > 255 || sig == SIGKILL || sig == SIGSTOP) {
        throw std::invalid_argument("custody::SignalStop: cannot handle signal " +
                                    std::to_string(sig));
      }
      if (std::find(signals_.begin(), signals_.end(), sig) == signals_.end()) {
        signals_.push_back(sig);
      }
    }
    bool expected = false;
    if (!state::active.compare_exchange_strong(expected, true)) {
      throw std::logic_error(
          "custody::SignalStop: another SignalStop is already active in this process");
    }
    try {
      // Reset before registering: the callback fires at once if stop was already requested.
      state::escalate.store(false);
      escalation_.emplace(source_.get_token(), state::ArmEscalation{});
      // The watcher records the signal, then requests stop.
      pipe_.emplace("custody::SignalStop", [this](int sig) {
        last_signal_.store(sig);
        source_.request_stop();
      });
      install_handlers();
    } catch (...) {
      teardown();
      throw;
    }
  }

  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;
  SignalStop(SignalStop&&) = delete;
  SignalStop& operator=(SignalStop&&) = delete;

  /// Restores the previous handlers, then stops and joins the watcher. Blocks only until a signal
  /// handler in flight on another thread returns and the watcher finishes any request_stop() it
  /// is running (including stop callbacks). Never throws.
  ~SignalStop() { teardown(); }

  /// The most recent watched signal the watcher has processed, or nullopt if none. Set before the
  /// corresponding request_stop(), so it is visible to anyone who observed that stop.
  /// Thread-safe, non-blocking.
  [[nodiscard]] std::optional<int> last_signal() const noexcept {
    const int sig = last_signal_.load();
    if (sig == 0) return std::nullopt;
    return sig;
  }

 private:
  struct Previous {
    int signal;
    struct sigaction action;
  };

  static void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
  }

  void install_handlers() {
    struct sigaction action {};
    action.sa_handler = &detail::signal_stop::handler;
    sigemptyset(&action.sa_mask);
    // Block all watched signals while one is handled so handlers never nest.
    for (const int sig : signals_) sigaddset(&action.sa_mask, sig);
    action.sa_flags = SA_RESTART;
    previous_.reserve(signals_.size());
    for (const int sig : signals_) {
      Previous previous{sig, {}};
      if (::sigaction(sig, &action, &previous.action) != 0) {
        throw_errno("custody::SignalStop: sigaction");
      }
      previous_.push_back(previous);
    }
  }

  // Undoes whatever the constructor completed, in reverse order.
  void teardown() noexcept {
    namespace state = detail::signal_stop;
    for (auto it = previous_.rbegin(); it != previous_.rend(); ++it) {
      ::sigaction(it->signal, &it->action, nullptr);
    }
    previous_.clear();
    pipe_.reset();
    // Deregistered before releasing `active`, so it cannot arm escalation for a successor.
    escalation_.reset();
    state::active.store(false);
  }

  std::stop_source source_;
  std::vector<int> signals_;
  std::vector<Previous> previous_;
  std::atomic<int> last_signal_{0};
  std::optional<std::stop_callback<detail::signal_stop::ArmEscalation>> escalation_;
  std::optional<detail::signal_pipe<detail::signal_stop::tag>> pipe_;
};

/// Convenience: `auto guard = custody::stop_on_signals(group.stop_source());`
[[nodiscard]] inline SignalStop stop_on_signals(std::stop_source source,
                                                std::initializer_list<int> signals = {SIGINT,
                                                                                      SIGTERM}) {
  return SignalStop(std::move(source), signals);
}

}  // namespace custody

#endif  // defined(__unix__) || defined(__APPLE__)
