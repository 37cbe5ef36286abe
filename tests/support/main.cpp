// GoogleTest main for all custody tests, with a per-test watchdog.
//
// Every test gets a deadline when it starts (60 s by default; set the
// environment variable CUSTODY_TEST_TIMEOUT to a number of seconds to change
// it, 0 disables the watchdog). If a test is still running when its deadline
// passes, the watchdog prints
//   WATCHDOG: test <suite>.<name> exceeded N s
// to stderr and calls std::abort(), so a deadlocked test fails fast with its
// name instead of stalling the whole run until the CTest timeout.

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

namespace {

constexpr long kDefaultTimeoutSeconds = 60;

// Reads CUSTODY_TEST_TIMEOUT; returns the default when unset or invalid.
long timeout_seconds_from_env() {
  const char* raw = std::getenv("CUSTODY_TEST_TIMEOUT");
  if (raw == nullptr || *raw == '\0') {
    return kDefaultTimeoutSeconds;
  }
  char* end = nullptr;
  const long value = std::strtol(raw, &end, 10);
  if (end == raw || *end != '\0' || value < 0) {
    std::fprintf(stderr, "WATCHDOG: ignoring invalid CUSTODY_TEST_TIMEOUT='%s', using %ld s\n", raw,
                 kDefaultTimeoutSeconds);
    return kDefaultTimeoutSeconds;
  }
  return value;
}

class Watchdog {
 public:
  explicit Watchdog(long timeout_seconds)
      : timeout_seconds_(timeout_seconds), thread_([this] { run(); }) {}

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void arm(std::string test_name) {
    {
      std::lock_guard lock(mutex_);
      test_name_ = std::move(test_name);
      deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds_);
    }
    cv_.notify_all();
  }

  void disarm() {
    {
      std::lock_guard lock(mutex_);
      deadline_.reset();
    }
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!shutdown_) {
      if (!deadline_) {
        cv_.wait(lock, [this] { return shutdown_ || deadline_.has_value(); });
        continue;
      }
      const auto deadline = *deadline_;
      if (std::chrono::steady_clock::now() < deadline) {
        // Wakes up early when the test ends (disarm) or the next one starts.
        cv_.wait_until(lock, deadline);
        continue;
      }
      std::fprintf(stderr, "\nWATCHDOG: test %s exceeded %ld s\n", test_name_.c_str(),
                   timeout_seconds_);
      std::fflush(stderr);
      std::fflush(stdout);
      std::abort();
    }
  }

  const long timeout_seconds_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::string test_name_;
  bool shutdown_ = false;
  std::thread thread_;  // last: started after every other member exists
};

class WatchdogListener : public testing::EmptyTestEventListener {
 public:
  explicit WatchdogListener(Watchdog& watchdog) : watchdog_(watchdog) {}

  void OnTestStart(const testing::TestInfo& info) override {
    watchdog_.arm(std::string(info.test_suite_name()) + "." + info.name());
  }

  void OnTestEnd(const testing::TestInfo& /*info*/) override { watchdog_.disarm(); }

 private:
  Watchdog& watchdog_;
};

}  // namespace

int main(int argc, char** argv) {
  // The watchdog runs a thread, so death tests must re-execute the binary
  // rather than fork it. Set before parsing so --gtest_death_test_style wins.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  testing::InitGoogleTest(&argc, argv);

  const long timeout_seconds = timeout_seconds_from_env();
  std::optional<Watchdog> watchdog;
  if (timeout_seconds > 0) {
    watchdog.emplace(timeout_seconds);
    // The listener list takes ownership of the listener; the watchdog
    // outlives RUN_ALL_TESTS().
    testing::UnitTest::GetInstance()->listeners().Append(new WatchdogListener(*watchdog));
  }
  return RUN_ALL_TESTS();
}
