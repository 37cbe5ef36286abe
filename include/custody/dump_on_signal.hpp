#pragma once
// DumpOnSignal: writes custody::inspect()'s text when a signal arrives, as Go prints its
// goroutines on SIGQUIT, and the program goes on:
//
//   custody::DumpOnSignal dump(SIGUSR1);   // then: kill -USR1 <pid>
//
// The handler only write(2)s the signal's number to a non-blocking self-pipe. A watcher thread
// blocked in read(2) on that pipe (no polling) takes the snapshot and writes it, so the
// snapshot's locks and allocations never run inside the handler. The handler is installed
// with SA_RESTART, and custody's own blocking calls go back to sleep after it, so the
// program's threads carry on as if nothing happened.
//
// POSIX only.

#if defined(__unix__) || defined(__APPLE__)

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "detail/signal_pipe.hpp"
#include "inspect.hpp"
#include "wait_for.hpp"

namespace custody {

namespace detail::dump_on_signal {

inline std::atomic<bool> active{false};  // a DumpOnSignal exists

struct tag {};  // its self-pipe's (signal_pipe.hpp)

inline void handler(int sig) noexcept {
  const int saved_errno = errno;
  signal_pipe_end<tag>::forward(sig);  // a full pipe already holds a request for a dump
  errno = saved_errno;
}

// Writes all of `text` to `fd`, going on after a signal interrupts it.
inline void write_all(int fd, const std::string& text) noexcept {
  for (std::size_t done = 0; done < text.size();) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // nowhere to write: the dump is lost, the program goes on
    }
  }
}

}  // namespace detail::dump_on_signal

/// RAII guard: while alive, `signal` makes a watcher thread write custody::inspect().to_text()
/// to `fd` (stderr by default), framed by a first line "custody: inspection on signal <n>" and
/// a last line "custody: end of inspection". Signals arriving while a dump is written are
/// merged into the next one. Given a `dot_path`, each dump also writes the wait-for graph of
/// the same snapshot (wait_for_graph::to_dot()) to that file, replacing what it held, and says
/// so in a line before the last ("custody: wait-for graph written to <path>", or "custody:
/// cannot write the wait-for graph to <path>").
///
/// Only one DumpOnSignal may exist in the process at a time; it may live beside a
/// custody::SignalStop watching other signals. Signals that every thread blocks never reach
/// it.
class DumpOnSignal {
 public:
  /// Installs the handler (sigaction, SA_RESTART), remembering the previous disposition, and
  /// starts the watcher. Throws std::logic_error if another DumpOnSignal is alive;
  /// std::invalid_argument if `signal` is SIGKILL, SIGSTOP or outside 1..255;
  /// std::system_error if the pipe, thread or handler cannot be set up (anything already done
  /// is undone first).
  explicit DumpOnSignal(int signal = SIGUSR1, int fd = STDERR_FILENO, std::string dot_path = {})
      : signal_(signal), fd_(fd), dot_path_(std::move(dot_path)) {
    namespace state = detail::dump_on_signal;
    // The number travels through the pipe as one byte.
    if (signal <= 0 || signal > 255 || signal == SIGKILL || signal == SIGSTOP) {
      throw std::invalid_argument("custody::DumpOnSignal: cannot handle signal " +
                                  std::to_string(signal));
    }
    bool expected = false;
    if (!state::active.compare_exchange_strong(expected, true)) {
      throw std::logic_error("custody::DumpOnSignal: another DumpOnSignal is already active");
    }
    try {
      pipe_.emplace("custody::DumpOnSignal", [this](int sig) { dump(sig); });
      install_handler();
    } catch (...) {
      teardown();
      throw;
    }
  }

  DumpOnSignal(const DumpOnSignal&) = delete;
  DumpOnSignal& operator=(const DumpOnSignal&) = delete;
  DumpOnSignal(DumpOnSignal&&) = delete;
  DumpOnSignal& operator=(DumpOnSignal&&) = delete;

  /// Restores the previous handler, then stops and joins the watcher. Blocks until a handler
  /// running on another thread returns and a dump being written is finished. Never throws.
  ~DumpOnSignal() { teardown(); }

  /// Dumps written so far. Thread-safe, non-blocking.
  [[nodiscard]] unsigned long dumps() const noexcept { return dumps_.load(); }

 private:
  static void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
  }

  void install_handler() {
    struct sigaction action {};
    action.sa_handler = &detail::dump_on_signal::handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(signal_, &action, &previous_) != 0) {
      throw_errno("custody::DumpOnSignal: sigaction");
    }
    installed_ = true;
  }

  void dump(int sig) noexcept {
    try {
      const inspection snapshot = inspect();
      std::string text =
          "custody: inspection on signal " + std::to_string(sig) + "\n" + snapshot.to_text();
      if (!dot_path_.empty()) {
        std::ofstream dot(dot_path_, std::ios::trunc);
        dot << wait_for_graph(snapshot).to_dot();
        dot.close();
        text += (dot ? "custody: wait-for graph written to "
                     : "custody: cannot write the "
                       "wait-for graph to ") +
                dot_path_ + "\n";
      }
      detail::dump_on_signal::write_all(fd_, text + "custody: end of inspection\n");
    } catch (...) {
      detail::dump_on_signal::write_all(fd_, "custody: inspection failed (out of memory)\n");
    }
    dumps_.fetch_add(1);
  }

  void teardown() noexcept {
    namespace state = detail::dump_on_signal;
    if (installed_) ::sigaction(signal_, &previous_, nullptr);
    installed_ = false;
    pipe_.reset();
    state::active.store(false);
  }

  const int signal_;
  const int fd_;
  const std::string dot_path_;  // empty: no DOT file
  bool installed_ = false;
  struct sigaction previous_ {};
  std::atomic<unsigned long> dumps_{0};
  std::optional<detail::signal_pipe<detail::dump_on_signal::tag>> pipe_;
};

}  // namespace custody

#endif  // defined(__unix__) || defined(__APPLE__)
