#pragma once
// The channel of a store's set requests, as the owner receives them: a buffered channel whose
// receives skip the requests whose callers gave up (timeout or stop) while the request still
// waited in it. Such a request never reaches the owner: it could not be answered anyway, and
// carrying it out would change the store for a caller who was told it did not happen.
//
// Only buffered channels need it: a receiver of a buffered channel always takes values with
// try_recv (a sender never hands one straight to a waiting receiver), so filtering there
// covers recv, range-for and select alike. On an unbuffered channel a caller who gives up
// withdraws its send, so nothing abandoned is ever queued.

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include "chan_core.hpp"
#include "waiter.hpp"

namespace custody::detail {

/// `Request` needs `bool abandoned() const`: true once its caller stopped waiting.
template <class Request>
class request_core final : public chan_core<Request> {
 public:
  explicit request_core(std::shared_ptr<chan_core<Request>> queue) noexcept
      : queue_(std::move(queue)) {}

  status try_recv(std::optional<Request>& out) override {
    for (;;) {
      const status s = queue_->try_recv(out);
      if (s != status::ok || !out->abandoned()) return s;
      out.reset();  // its caller gave up: let go of it unread
    }
  }

  status try_send(Request& value) override { return queue_->try_send(value); }
  status try_send_spinning(Request& value) override { return queue_->try_send_spinning(value); }
  enqueued enqueue_send(waiter& w, Request& value) override {
    return queue_->enqueue_send(w, value);
  }
  enqueued enqueue_recv(waiter& w, std::optional<Request>& out) override {
    return queue_->enqueue_recv(w, out);
  }
  void dequeue_send(waiter& w) noexcept override { queue_->dequeue_send(w); }
  void dequeue_recv(waiter& w) noexcept override { queue_->dequeue_recv(w); }
  bool close() noexcept override { return queue_->close(); }
  bool is_closed() const noexcept override { return queue_->is_closed(); }
  /// Requests waiting, abandoned ones included until a receive skips them.
  std::size_t size() const noexcept override { return queue_->size(); }
  std::size_t capacity() const noexcept override { return queue_->capacity(); }

 private:
  std::shared_ptr<chan_core<Request>> queue_;
};

}  // namespace custody::detail
