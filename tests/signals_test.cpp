// SignalStop is POSIX-only; elsewhere this file compiles to nothing.
#if defined(__unix__) || defined(__APPLE__)

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include <gtest/gtest.h>

#include <custody/signals.hpp>
#include <custody/task_group.hpp>

#include "support/stop_signal.hpp"

namespace {
namespace signals_test {

using namespace std::chrono_literals;

// Generous bound for "this should have happened by now"; only reached when a test fails.
constexpr auto kTimeout = 30s;

using custody_test::StopSignal;

using Handler = void (*)(int);

Handler current_handler(int sig) {
  struct sigaction current {};
  EXPECT_EQ(::sigaction(sig, nullptr, &current), 0);
  return current.sa_handler;
}

// Installs `handler` for `sig` for the lifetime of the object, restoring what was there before.
class ScopedHandler {
 public:
  ScopedHandler(int sig, Handler handler) : sig_(sig) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    EXPECT_EQ(::sigaction(sig_, &action, &previous_), 0);
  }
  ~ScopedHandler() { ::sigaction(sig_, &previous_, nullptr); }
  ScopedHandler(const ScopedHandler&) = delete;
  ScopedHandler& operator=(const ScopedHandler&) = delete;

 private:
  int sig_;
  struct sigaction previous_ {};
};

std::atomic<int> test_handler_calls{0};
void test_handler(int) { test_handler_calls.fetch_add(1); }

TEST(SignalStop, RaiseSigtermRequestsStop) {
  std::stop_source source;
  StopSignal stopped(source.get_token());
  custody::SignalStop guard(source);
  EXPECT_FALSE(guard.last_signal().has_value());
  EXPECT_FALSE(source.stop_requested());

  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_TRUE(stopped.wait());
  EXPECT_EQ(guard.last_signal(), SIGTERM);
}

TEST(SignalStop, ProcessDirectedSigintRequestsStop) {
  std::stop_source source;
  StopSignal stopped(source.get_token());
  custody::SignalStop guard(source);

  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  ASSERT_TRUE(stopped.wait());
  EXPECT_EQ(guard.last_signal(), SIGINT);
}

TEST(SignalStop, StopsATaskGroup) {
  custody::TaskGroup group;
  auto guard = custody::stop_on_signals(group.stop_source());
  std::promise<void> started;
  std::atomic<bool> saw_stop{false};
  group.spawn("server", [&](std::stop_token st) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    started.set_value();
    cv.wait_for(lock, st, kTimeout, [] { return false; });
    saw_stop = st.stop_requested();
  });
  started.get_future().wait();
  ASSERT_EQ(::raise(SIGINT), 0);
  group.wait();
  EXPECT_TRUE(saw_stop.load());
  EXPECT_EQ(guard.last_signal(), SIGINT);
}

TEST(SignalStop, CustomSignalListOnlyTouchesThoseSignals) {
  const Handler term_before = current_handler(SIGTERM);
  std::stop_source source;
  StopSignal stopped(source.get_token());
  {
    custody::SignalStop guard(source, {SIGUSR1});
    EXPECT_EQ(current_handler(SIGTERM), term_before);
    EXPECT_NE(current_handler(SIGUSR1), SIG_DFL);
    ASSERT_EQ(::raise(SIGUSR1), 0);
    ASSERT_TRUE(stopped.wait());
    EXPECT_EQ(guard.last_signal(), SIGUSR1);
  }
  EXPECT_EQ(current_handler(SIGUSR1), SIG_DFL);
}

TEST(SignalStop, DestructorRestoresPreviousHandlers) {
  ScopedHandler term(SIGTERM, &test_handler);
  ScopedHandler intr(SIGINT, &test_handler);
  {
    custody::SignalStop guard(std::stop_source{});
    EXPECT_NE(current_handler(SIGTERM), &test_handler);
    EXPECT_NE(current_handler(SIGINT), &test_handler);
  }
  EXPECT_EQ(current_handler(SIGTERM), &test_handler);
  EXPECT_EQ(current_handler(SIGINT), &test_handler);

  // And the restored handler is the one that now runs.
  const int before = test_handler_calls.load();
  ASSERT_EQ(::raise(SIGTERM), 0);  // handled synchronously on this thread
  EXPECT_EQ(test_handler_calls.load(), before + 1);
}

TEST(SignalStop, DestructorRestoresHandlersAfterASignal) {
  ScopedHandler term(SIGTERM, &test_handler);
  {
    std::stop_source source;
    StopSignal stopped(source.get_token());
    custody::SignalStop guard(source);
    ASSERT_EQ(::raise(SIGTERM), 0);
    ASSERT_TRUE(stopped.wait());
  }
  EXPECT_EQ(current_handler(SIGTERM), &test_handler);
}

TEST(SignalStop, OnlyOneMayBeActive) {
  std::stop_source source;
  {
    custody::SignalStop first(source);
    EXPECT_THROW(custody::SignalStop second(source), std::logic_error);
    EXPECT_THROW(custody::SignalStop other_signals(std::stop_source{}, {SIGUSR2}),
                 std::logic_error);
    // The failed attempt must not have disturbed the active one.
    StopSignal stopped(source.get_token());
    ASSERT_EQ(::raise(SIGTERM), 0);
    ASSERT_TRUE(stopped.wait());
    EXPECT_EQ(first.last_signal(), SIGTERM);
  }
  // Once the first is gone, a new one can be created and starts unarmed: its first signal only
  // requests stop.
  std::stop_source fresh;
  StopSignal stopped(fresh.get_token());
  custody::SignalStop again(fresh);
  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_TRUE(stopped.wait());
  EXPECT_EQ(again.last_signal(), SIGTERM);
}

TEST(SignalStop, RejectsInvalidArguments) {
  EXPECT_THROW(custody::SignalStop(std::stop_source{}, std::span<const int>{}),
               std::invalid_argument);
  EXPECT_THROW(custody::SignalStop(std::stop_source{}, {SIGKILL}), std::invalid_argument);
  EXPECT_THROW(custody::SignalStop(std::stop_source{}, {SIGTERM, SIGSTOP}), std::invalid_argument);
  EXPECT_THROW(custody::SignalStop(std::stop_source{}, {0}), std::invalid_argument);
  EXPECT_THROW(custody::SignalStop(std::stop_source(std::nostopstate)), std::invalid_argument);
  // None of the failures left the process-wide slot taken.
  custody::SignalStop ok(std::stop_source{});
}

TEST(SignalStop, DuplicateSignalsAreHandledOnce) {
  ScopedHandler term(SIGTERM, &test_handler);
  {
    const std::vector<int> signals{SIGTERM, SIGTERM, SIGINT};
    custody::SignalStop guard(std::stop_source{}, signals);
  }
  EXPECT_EQ(current_handler(SIGTERM), &test_handler);
}

// The test main runs death tests in "threadsafe" style (re-executing the binary), which the
// watcher thread requires.
TEST(SignalStopDeathTest, SecondSignalKillsTheProcess) {
  EXPECT_EXIT(
      {
        std::stop_source source;
        StopSignal stopped(source.get_token());
        custody::SignalStop guard(source);
        ::raise(SIGTERM);
        if (!stopped.wait()) std::_Exit(2);
        ::raise(SIGTERM);  // default action: terminate
        std::_Exit(3);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

TEST(SignalStopDeathTest, SignalAfterAnyStopKillsTheProcess) {
  EXPECT_EXIT(
      {
        std::stop_source source;
        custody::SignalStop guard(source);
        source.request_stop();  // e.g. a failed task; shutdown is under way
        ::raise(SIGINT);
        std::_Exit(3);
      },
      ::testing::KilledBySignal(SIGINT), "");
}

#endif  // defined(__unix__) || defined(__APPLE__)

}  // namespace signals_test
}  // namespace
