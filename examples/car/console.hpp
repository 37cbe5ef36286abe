#pragma once
// Standard output and error for several tasks at once, without ever waiting for the terminal.
//
// A terminal paused with Ctrl-S, a `less` nobody scrolls or a pipe nobody reads blocks write(2)
// for as long as it likes. So no task writes to a stream itself: each stream has a writer
// thread of its own and a bounded queue in front of it. Putting a line in the queue never
// blocks; when the queue is full the line is dropped and counted. The writer thread may block
// in write(2) for ever, and nobody waits for it: at the end the program gives it a short grace
// period to write what is queued and then exits without it.
//
// The file descriptions stay as they are (blocking): O_NONBLOCK would be shared with every other
// process writing to the same terminal, e.g. the shell after we exit.
//
// A stream whose reader has gone (a pipe into `head -1` that has exited) fails with EPIPE when
// SIGPIPE is ignored; the writer then tells closed() and counts the lines as lost.

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <custody/channel.hpp>

#include "tasks.hpp"
#include "thread_name.hpp"

namespace car {

/// Lines a stream may fall behind by before new ones are dropped.
inline constexpr std::size_t kConsoleBacklog = 256;
/// At the end, how long a writer may be stuck in one write(2) before the program gives up on
/// what it still holds. A writer that keeps writing (or has not been scheduled yet, on a busy
/// machine) is waited for, up to kConsoleLongestWait.
inline constexpr std::chrono::milliseconds kConsoleGrace{30};
inline constexpr std::chrono::milliseconds kConsoleLongestWait{2000};

/// One output stream (a file descriptor) with its own writer thread. put() never blocks.
class ConsoleStream {
 public:
  ConsoleStream(int fd, const char* thread_name, std::size_t backlog = kConsoleBacklog)
      : shared_(std::make_shared<Shared>(fd, backlog)) {
    // Detached: a writer stuck in write(2) must never hold up the end of the program. It owns
    // a reference to what it uses, so it can outlive this object.
    std::thread([shared = shared_, thread_name] {
      name_this_thread(thread_name);
      shared->write_all();
    }).detach();
  }
  ~ConsoleStream() { shared_->queue.close(); }
  ConsoleStream(const ConsoleStream&) = delete;
  ConsoleStream& operator=(const ConsoleStream&) = delete;

  /// Queues `line` (a newline is added). Never blocks: drops and counts it if the queue is full
  /// or finish() has been called. Thread-safe.
  void put(std::string_view line) {
    if (shared_->queue.try_send(std::string(line)) == custody::status::ok) {
      shared_->queued.fetch_add(1);
    } else {
      shared_->dropped.fetch_add(1);
    }
  }

  /// Lines dropped so far because the queue was full. Thread-safe.
  std::uint64_t dropped() const { return shared_->dropped.load(); }

  /// Closed (never sent on) once a write failed because the stream's reader has gone (EPIPE).
  custody::Receiver<int> closed() const { return shared_->closed.receiver(); }

  /// Takes no more lines and waits for the writer to write the queued ones, giving up once it
  /// has been in one write for `grace` (at once if it has been so already), or after
  /// kConsoleLongestWait. Returns how many
  /// lines did not reach the stream: dropped, still queued, or failed to write. Call once,
  /// from one thread.
  std::uint64_t finish(std::chrono::milliseconds grace) {
    using Clock = std::chrono::steady_clock;
    Shared& s = *shared_;
    s.queue.close();
    const auto give_up_at = Clock::now() + kConsoleLongestWait;
    for (;;) {
      const auto now = Clock::now();
      // How long the write under way, if any, has taken so far.
      const auto in_write_for = s.in_write.load()
                                    ? now - Clock::time_point(Clock::duration(s.write_began.load()))
                                    : Clock::duration::zero();
      if (in_write_for >= grace || now >= give_up_at) break;
      // The writer closes `done` once it has written everything.
      const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(grace - in_write_for);
      if (s.done.recv_for(wait).status() == custody::status::closed) break;
    }
    return s.dropped.load() + s.queued.load() - s.written.load();
  }

 private:
  struct Shared {
    Shared(int fd_, std::size_t backlog) : fd(fd_), queue(backlog) {}

    // The writer thread: one line after another until the queue is closed and empty.
    void write_all() {
      auto lines = queue.receiver();
      for (auto line = lines.recv(); line; line = lines.recv()) {
        line->push_back('\n');
        if (write_line(*line)) written.fetch_add(1);
      }
      done.close();
    }

    bool write_line(std::string_view rest) {
      while (!rest.empty()) {
        write_began.store(std::chrono::steady_clock::now().time_since_epoch().count());
        in_write.store(true);
        const ssize_t n = ::write(fd, rest.data(), rest.size());
        in_write.store(false);
        if (n >= 0) {
          rest.remove_prefix(static_cast<std::size_t>(n));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // Someone else made the description non-blocking: wait until it takes more.
          pollfd p{fd, POLLOUT, 0};
          (void)::poll(&p, 1, -1);
        } else if (errno != EINTR) {
          if (errno == EPIPE) closed.close();
          return false;
        }
      }
      return true;
    }

    const int fd;
    custody::Channel<std::string> queue;
    custody::Channel<int> done;             // never sent on: closed when the writer is done
    custody::Channel<int> closed;           // never sent on: closed when the reader has gone
    std::atomic<std::uint64_t> queued{0};   // lines put in the queue
    std::atomic<std::uint64_t> written{0};  // lines written whole
    std::atomic<std::uint64_t> dropped{0};  // lines refused because the queue was full
    std::atomic<bool> in_write{false};      // the writer is in write(2), since write_began
    std::atomic<std::chrono::steady_clock::rep> write_began{0};
  };

  std::shared_ptr<Shared> shared_;
};

/// Standard output and error, one ConsoleStream each.
class Console {
 public:
  void out(std::string_view line) { out_.put(line); }
  void err(std::string_view line) { err_.put(line); }

  LineSink out_sink() {
    return [this](std::string_view line) { out(line); };
  }
  LineSink err_sink() {
    return [this](std::string_view line) { err(line); };
  }

  /// Lines dropped so far, on both streams, because they did not keep up.
  std::uint64_t dropped() const { return out_.dropped() + err_.dropped(); }

  /// Closed once standard output's reader has gone (see ConsoleStream::closed()).
  custody::Receiver<int> out_closed() const { return out_.closed(); }

  /// ConsoleStream::finish() for both streams. Returns the lines that did not reach either.
  std::uint64_t finish(std::chrono::milliseconds grace = kConsoleGrace) {
    return out_.finish(grace) + err_.finish(grace);
  }

 private:
  ConsoleStream out_{STDOUT_FILENO, "stdout writer"};
  ConsoleStream err_{STDERR_FILENO, "stderr writer"};
};

}  // namespace car
