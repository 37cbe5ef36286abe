#pragma once
// Test helper: learn, without polling, that stop was requested.

#include <chrono>
#include <functional>
#include <future>
#include <stop_token>

namespace custody_test {

/// A future that becomes ready when stop is requested on the token. wait() is bounded, so a
/// stop that never comes fails the test instead of hanging it.
class StopSignal {
 public:
  explicit StopSignal(std::stop_token st)
      : future_(promise_.get_future()),
        callback_(std::move(st), [this] { promise_.set_value(); }) {}
  bool wait() { return future_.wait_for(std::chrono::seconds(30)) == std::future_status::ready; }

 private:
  std::promise<void> promise_;
  std::future<void> future_;
  std::stop_callback<std::function<void()>> callback_;
};

}  // namespace custody_test
