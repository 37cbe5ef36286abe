#pragma once
// Test helper: child processes of the example programs, their output read as it comes, in a
// temporary directory of their own.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;  // NOLINT: POSIX leaves declaring it to the program

namespace custody_test {

using Clock = std::chrono::steady_clock;

// Only reached when something is broken: a bound on waiting, never a synchronisation. Below
// the test watchdog's 60 s, so a failure names what was awaited.
inline constexpr Clock::duration kChildTimeout = std::chrono::seconds(20);

// Whether this build runs under a sanitizer, which slows everything down: wall-clock bounds
// are only checked without one.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

// How a child process is started, beyond its arguments.
struct ProcessOptions {
  Clock::duration timeout = kChildTimeout;  // see kChildTimeout
  int stdout_pipe_size = 0;                 // bytes its standard output pipe holds; 0: default
  std::vector<int> blocked_signals;         // signals it starts with blocked
};

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/custody-test-XXXXXX";
    if (mkdtemp(pattern.data())) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A child process: standard output on a pipe, read line by line as it comes; standard error in
// a file. Killed (SIGKILL) if still running when destroyed.
class Process {
  static long seconds(Clock::duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  }

 public:
  Process(std::string name, const std::string& program, const std::vector<std::string>& args,
          const std::string& dir, Clock::duration timeout = kChildTimeout)
      : Process(std::move(name), program, args, dir, ProcessOptions{timeout, 0, {}}) {}

  Process(std::string name, const std::string& program, const std::vector<std::string>& args,
          const std::string& dir, const ProcessOptions& options)
      : name_(std::move(name)),
        err_path_(dir + "/" + name_ + ".stderr"),
        timeout_(options.timeout) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
    if (options.stdout_pipe_size > 0 &&
        ::fcntl(fds[1], F_SETPIPE_SZ, options.stdout_pipe_size) < 0) {
      throw std::system_error(errno, std::generic_category(), "F_SETPIPE_SZ");
    }
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    if (!options.blocked_signals.empty()) {
      sigset_t blocked;
      sigemptyset(&blocked);
      for (const int sig : options.blocked_signals) sigaddset(&blocked, sig);
      posix_spawnattr_setsigmask(&attributes, &blocked);
      posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_store{program};
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    started_ = Clock::now();
    const int rc =
        posix_spawnp(&pid_, program.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(fds[1]);
    out_fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      ::close(out_fd_);
      throw std::system_error(rc, std::generic_category(), "posix_spawn " + program);
    }
  }

  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    ::close(out_fd_);
  }

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The next line of standard output; nullopt at its end, or (failing the test) when nothing
  // comes for the timeout.
  std::optional<std::string> read_line() {
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        out_.push_back(line);
        return line;
      }
      if (eof_) {
        if (buffer_.empty()) return std::nullopt;
        out_.push_back(std::exchange(buffer_, {}));
        return out_.back();
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        ADD_FAILURE() << name_ << " wrote nothing for " << seconds(timeout_) << " s";
        return std::nullopt;
      }
      char chunk[4096];
      const ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
      } else {
        buffer_.append(chunk, static_cast<std::size_t>(n));
      }
    }
  }

  // Reads until a line matching `pattern` and returns it; nullopt at the end of the output, or
  // (failing the test) once the timeout has passed without such a line.
  std::optional<std::string> read_until(const std::regex& pattern) {
    const auto deadline = Clock::now() + timeout_;
    while (Clock::now() < deadline) {
      const auto line = read_line();
      if (!line) return std::nullopt;
      if (std::regex_search(*line, pattern)) return line;
    }
    ADD_FAILURE() << name_ << ": no matching line within " << seconds(timeout_) << " s";
    return std::nullopt;
  }

  void signal(int sig) { ASSERT_EQ(::kill(pid_, sig), 0) << name_; }

  // The running process's id (-1 once it was waited for).
  pid_t pid() const { return pid_; }

  // Reads the rest of the output, then waits for the exit. Returns the exit code, 128 + the
  // signal that killed it, or -1 if it did not end within the timeout (it is killed then).
  int finish() {
    while (read_line()) {
    }
    return wait_exit();
  }

  // Waits for the exit without reading any output (a child blocked writing to it stays
  // blocked). Returns as finish() does; the output can be read afterwards.
  int wait_exit() {
    auto exited = std::async(std::launch::async, [pid = pid_] {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return status;
    });
    if (exited.wait_for(timeout_) != std::future_status::ready) {
      ::kill(pid_, SIGKILL);
      exited.wait();
      pid_ = -1;
      ADD_FAILURE() << name_ << " did not exit within " << seconds(timeout_) << " s";
      return -1;
    }
    const int status = exited.get();
    pid_ = -1;
    ended_ = Clock::now();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

  const std::vector<std::string>& out() const { return out_; }
  std::string err() const { return read_file(err_path_); }
  const std::string& name() const { return name_; }
  // When it was started, and when finish() saw it exit.
  Clock::time_point started() const { return started_; }
  Clock::time_point ended() const { return ended_; }

 private:
  std::string name_;
  std::string err_path_;
  Clock::duration timeout_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
  std::vector<std::string> out_;
  Clock::time_point started_, ended_;
};

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace custody_test
