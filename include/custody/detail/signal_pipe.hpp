#pragma once
// The self-pipe behind SignalStop and DumpOnSignal: a signal handler may only do async-signal-
// safe things, so it writes the signal's number as one byte to a non-blocking pipe, and a
// watcher thread blocked in read(2) on the other end (no polling) does the real work.
//
// POSIX only.

#if defined(__unix__) || defined(__APPLE__)

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace custody::detail {

/// Where the handlers of one kind of watcher find its pipe: process-wide, because a handler has
/// no other way to find its state. `Tag` keeps the kinds apart (a SignalStop and a DumpOnSignal
/// may live at once).
template <class Tag>
struct signal_pipe_end {
  // Only lock-free atomics may be touched from a signal handler.
  static_assert(std::atomic<int>::is_always_lock_free);

  static inline std::atomic<int> write_fd{-1};         // -1 while no pipe is open
  static inline std::atomic<int> handlers_running{0};  // in forward(), drained before close()

  /// From a signal handler: writes `sig` as one byte. Never blocks: if the pipe is full, a byte
  /// is already pending, which is enough.
  static void forward(int sig) noexcept {
    handlers_running.fetch_add(1);
    if (const int fd = write_fd.load(); fd >= 0) {
      const auto byte = static_cast<unsigned char>(sig);
      [[maybe_unused]] const auto written = ::write(fd, &byte, 1);
    }
    handlers_running.fetch_sub(1);
  }
};

/// The pipe and its watcher thread, which calls `on_signal(number)` for each byte forwarded.
template <class Tag>
class signal_pipe {
  using end = signal_pipe_end<Tag>;

 public:
  /// Opens the pipe (close-on-exec; only the write end non-blocking: the handler must never
  /// block, the watcher should) and starts the watcher. Throws std::system_error, its message
  /// starting with `who`; nothing is left open then.
  signal_pipe(const std::string& who, std::function<void(int)> on_signal)
      : on_signal_(std::move(on_signal)) {
    int fds[2];
#if defined(__linux__)
    // Close-on-exec from the start: no window in which a fork and exec elsewhere inherit it.
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(who + ": pipe2");
    const bool cloexec = true;
#else
    if (::pipe(fds) != 0) throw_errno(who + ": pipe");
    const bool cloexec = false;
#endif
    read_end_ = fds[0];
    write_end_ = fds[1];
    const int flags = ::fcntl(write_end_, F_GETFL);
    if ((!cloexec && (::fcntl(read_end_, F_SETFD, FD_CLOEXEC) != 0 ||
                      ::fcntl(write_end_, F_SETFD, FD_CLOEXEC) != 0)) ||
        flags < 0 || ::fcntl(write_end_, F_SETFL, flags | O_NONBLOCK) != 0) {
      const int error = errno;
      close();
      throw std::system_error(error, std::generic_category(), who + ": fcntl");
    }
    try {
      watcher_ = std::thread([this] { watch(); });
    } catch (...) {
      close();
      throw;
    }
    end::write_fd.store(write_end_);
  }

  signal_pipe(const signal_pipe&) = delete;
  signal_pipe& operator=(const signal_pipe&) = delete;

  /// Stops the handlers' writes, waits out any in flight (so the descriptor's number cannot be
  /// reused under a late write), then ends the watcher after the bytes already written and
  /// joins it. Call it once the handlers are uninstalled. Never throws.
  ~signal_pipe() { close(); }

 private:
  [[noreturn]] static void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
  }

  // One byte per signal; EOF means close() closed the write end.
  void watch() noexcept {
    for (;;) {
      unsigned char byte = 0;
      const auto n = ::read(read_end_, &byte, 1);
      if (n == 1) {
        on_signal_(byte);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return;
      }
    }
  }

  void close() noexcept {
    end::write_fd.store(-1);
    while (end::handlers_running.load() != 0) std::this_thread::yield();
    if (write_end_ >= 0) ::close(write_end_);
    write_end_ = -1;
    if (watcher_.joinable()) watcher_.join();
    if (read_end_ >= 0) ::close(read_end_);
    read_end_ = -1;
  }

  std::function<void(int)> on_signal_;
  int read_end_ = -1;
  int write_end_ = -1;
  std::thread watcher_;
};

}  // namespace custody::detail

#endif  // defined(__unix__) || defined(__APPLE__)
