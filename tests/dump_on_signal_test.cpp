// DumpOnSignal: a signal makes the watcher write the inspection text, and the program goes on.
#if defined(__unix__) || defined(__APPLE__)

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/dump_on_signal.hpp>
#include <custody/inspect.hpp>
#include <custody/task_group.hpp>

namespace {
namespace dump_on_signal_test {

// A pipe whose read end collects what a DumpOnSignal writes.
class Pipe {
 public:
  Pipe() { EXPECT_EQ(::pipe(fds_), 0); }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int write_end() const { return fds_[1]; }

  /// Reads until `last` has arrived; returns everything read.
  std::string read_until(const std::string& last) {
    std::string text;
    char buffer[4096];
    while (text.find(last) == std::string::npos) {
      const auto n = ::read(fds_[0], buffer, sizeof buffer);
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
  }

 private:
  int fds_[2] = {-1, -1};
};

/// Waits (yielding) until the named task is blocked: the dump then shows it so.
void wait_until_blocked(const std::string& group, const std::string& task) {
  for (;;) {
    for (const custody::task_group_report& g : custody::inspect().task_groups) {
      if (g.name != group) continue;
      for (const custody::task_report& t : g.tasks) {
        if (t.name == task && t.state == custody::task_state::blocked) return;
      }
    }
    std::this_thread::yield();
  }
}

TEST(DumpOnSignal, SignalWritesTheInspectionAndBlockedTasksCarryOn) {
  Pipe out;
  custody::Channel<int> jobs(0, "jobs");
  custody::Channel<custody::status> results(1);
  custody::TaskGroup group("dumped");
  group.spawn("waiting-worker", [jobs, results]() mutable {
    const auto r = jobs.recv();
    (void)results.send(r.status());
  });
  wait_until_blocked("dumped", "waiting-worker");
  custody::DumpOnSignal dump(SIGUSR1, out.write_end());
  // To the process: any thread may take it, the blocked worker's included.
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  const std::string text = out.read_until("custody: end of inspection\n");
  EXPECT_NE(text.find("custody: inspection on signal " + std::to_string(SIGUSR1)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("task group \"dumped\""), std::string::npos) << text;
  EXPECT_NE(text.find("task \"waiting-worker\": blocked in recv on \"jobs\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("channel \"jobs\": capacity 0, length 0, open"), std::string::npos) << text;
  EXPECT_NE(text.find("receiver: plain, task \"waiting-worker\""), std::string::npos) << text;
  // Counted once the text is written: right after our read, or a moment later.
  while (dump.dumps() < 1) std::this_thread::yield();
  EXPECT_EQ(dump.dumps(), 1u);
  // Not disturbed: the worker still receives what is sent.
  ASSERT_EQ(jobs.send(7), custody::status::ok);
  EXPECT_EQ(*results.recv(), custody::status::ok);
  group.wait();
}

TEST(DumpOnSignal, EachSignalWritesOneMoreDump) {
  Pipe out;
  custody::DumpOnSignal dump(SIGUSR2, out.write_end());
  for (unsigned long i = 1; i <= 3; ++i) {
    ASSERT_EQ(::raise(SIGUSR2), 0);
    out.read_until("custody: end of inspection\n");
    // The count is raised after the text is written.
    while (dump.dumps() < i) std::this_thread::yield();
    EXPECT_EQ(dump.dumps(), i);
  }
}

TEST(DumpOnSignal, DestructorRestoresThePreviousHandler) {
  struct sigaction before {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &before), 0);
  {
    custody::DumpOnSignal dump(SIGUSR1);
    struct sigaction during {};
    ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &during), 0);
    EXPECT_NE(during.sa_handler, before.sa_handler);
  }
  struct sigaction after {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(DumpOnSignal, OnlyOneAtATimeAndOnlyCatchableSignals) {
  {
    custody::DumpOnSignal first(SIGUSR1);
    EXPECT_THROW(custody::DumpOnSignal(SIGUSR2), std::logic_error);
  }
  custody::DumpOnSignal again(SIGUSR2);  // the first one's end freed the place
  EXPECT_THROW(custody::DumpOnSignal(SIGKILL), std::invalid_argument);
  EXPECT_THROW(custody::DumpOnSignal(0), std::invalid_argument);
  static_assert(!std::is_copy_constructible_v<custody::DumpOnSignal>);
  static_assert(!std::is_convertible_v<int, custody::DumpOnSignal>);
}

#endif

}  // namespace dump_on_signal_test
}  // namespace
