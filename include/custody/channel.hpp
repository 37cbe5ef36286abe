#pragma once
// Go-style channels: Channel<T> and its directional handles Sender<T> and Receiver<T>.
//
// Semantics (all operations, all handles):
// - Capacity 0 is unbuffered: a send completes only when a receiver has taken the value.
//   Capacity N buffers exactly N values.
// - A send that does not return status::ok leaves the value with the caller, untouched.
// - After close(), receivers first drain what is buffered, then get status::closed; blocked
//   senders and receivers wake; sends report status::closed.
// - Happens-before: a send happens-before the receive that takes its value returns; close()
//   happens-before every status::closed result it causes.
// - Thread-safety: every operation may be called concurrently from any number of threads on
//   any handles of the same channel. A single handle object is as thread-safe as a
//   std::shared_ptr: share the channel by copying handles, not by sharing one handle object.
// - Blocking operations wake when they complete, when the channel is closed, when their stop
//   token is triggered or when their deadline passes; they never busy-wait (they spin briefly,
//   then sleep). A stop token is checked first: once triggered, send and recv return stopped
//   even when the channel is ready, so a loop of them stops whatever its channel does. They throw
//   only what T's move constructor throws (the channel stays consistent and the value stays with
//   the sender) and std::logic_error on a nil handle.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/chan_core.hpp"
#include "detail/channel_ops.hpp"
#include "detail/select_engine.hpp"
#include "status.hpp"

namespace custody {

template <class T>
class Sender;
template <class T>
class Receiver;
template <class T>
class Channel;

/// Requirements on a channel's element type, checked with readable messages.
template <class T>
constexpr bool check_channel_element() {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "custody: a channel element type must be a non-const, non-volatile object type");
  static_assert(std::is_move_constructible_v<T>,
                "custody: a channel element type must be move-constructible");
  static_assert(std::is_destructible_v<T>, "custody: a channel element type must be destructible");
  return true;
}

namespace detail {
struct received_access;
}

/// The result of a receive: a status, and the value when the status is ok.
template <class T>
class received {
 public:
  /// An empty result (status would_block).
  received() = default;
  /// A result with status `s`; `value` holds the value when `s` is ok.
  received(custody::status s, std::optional<T> value) : value_(std::move(value)), status_(s) {}

  /// ok (a value is held), closed, timeout, stopped or would_block.
  custody::status status() const noexcept { return status_; }
  ///@{
  /// True when a value was received.
  explicit operator bool() const noexcept { return value_.has_value(); }
  bool has_value() const noexcept { return value_.has_value(); }
  ///@}

  ///@{
  /// The received value; throws std::logic_error naming the status when there is none.
  T& value() & { return checked(); }
  const T& value() const& { return const_cast<received*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  ///@}

  ///@{
  /// Unchecked access; only when operator bool is true.
  T& operator*() & noexcept { return *value_; }
  const T& operator*() const& noexcept { return *value_; }
  T&& operator*() && noexcept { return std::move(*value_); }
  T* operator->() noexcept { return &*value_; }
  const T* operator->() const noexcept { return &*value_; }
  ///@}

 private:
  T& checked() {
    if (!value_) {
      throw std::logic_error(
          "custody: no value received (status: " + std::string(to_string(status_)) + ")");
    }
    return *value_;
  }

  friend struct detail::received_access;

  std::optional<T> value_;
  custody::status status_ = custody::status::would_block;
};

namespace detail {

/// Lets a receive fill its result in place: the value is moved once, from the channel into
/// the result the caller gets (a second move could throw after the channel let go of it).
struct received_access {
  template <class T>
  static std::optional<T>& value(received<T>& r) noexcept {
    return r.value_;
  }
  template <class T>
  static void set_status(received<T>& r, status s) noexcept {
    r.status_ = s;
  }
};

template <class T>
received<T> try_receive(chan_core<T>& core) {
  received<T> r;
  received_access::set_status(r, core.try_recv(received_access::value(r)));
  return r;
}

/// Receives into `r` in place (what it held is destroyed first): the value is moved once,
/// from the channel into `r`; a second move could throw after the channel gave the value up.
template <class T>
void receive_into(received<T>& r, chan_core<T>& core, const std::stop_token* stop,
                  std::optional<time_point> deadline) {
  received_access::set_status(r, receive_value(received_access::value(r), core, stop, deadline));
}

template <class T>
received<T> receive(chan_core<T>& core, const std::stop_token* stop,
                    std::optional<time_point> deadline) {
  received<T> r;
  receive_into(r, core, stop, deadline);
  return r;
}

/// Input iterator for range-for over a receiving handle: each step is a blocking receive,
/// straight into the iterator (no value is moved after the channel let go of it).
template <class T>
class receive_iterator {
 public:
  ///@{
  /// Standard iterator member types.
  using iterator_category = std::input_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = T&;
  ///@}

  /// The end position: the channel is closed and drained.
  receive_iterator() = default;
  /// Receives the first value from `core` (blocking).
  explicit receive_iterator(chan_core<T>& core) : core_(&core) { ++*this; }
  ///@{
  /// The value received last.
  T& operator*() const noexcept { return *current_; }
  T* operator->() const noexcept { return &*current_; }
  ///@}
  ///@{
  /// Receives the next value (blocking); becomes end() once the channel is closed and drained.
  receive_iterator& operator++() {
    receive_into(current_, *core_, nullptr, std::nullopt);
    if (!current_) core_ = nullptr;
    return *this;
  }
  void operator++(int) { ++*this; }
  ///@}
  /// Equal when both are end(), or both iterate the same channel.
  friend bool operator==(const receive_iterator& a, const receive_iterator& b) noexcept {
    return a.core_ == b.core_;
  }

 private:
  chan_core<T>* core_ = nullptr;
  mutable received<T> current_;
};

/// What every handle shares: the channel state and its queries.
template <class T>
class handle {
  static_assert(check_channel_element<T>());

 public:
  /// False for a nil handle (default-constructed or moved-from).
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Whether close() has been called. Values may still be buffered.
  bool is_closed() const { return core().is_closed(); }
  /// Values buffered right now (0 for unbuffered channels).
  std::size_t size() const { return core().size(); }
  std::size_t capacity() const { return core().capacity(); }

  /// Two handles are equal when they refer to the same channel.
  friend bool operator==(const handle& a, const handle& b) noexcept { return a.core_ == b.core_; }

  /// The shared state; for select and for other kinds of channel built on the same core.
  const std::shared_ptr<chan_core<T>>& core_ptr() const noexcept { return core_; }

 protected:
  handle() = default;
  explicit handle(std::shared_ptr<chan_core<T>> core) noexcept : core_(std::move(core)) {}

  chan_core<T>& core() const {
    if (!core_) throw std::logic_error("custody: operation on a nil channel handle");
    return *core_;
  }

  std::shared_ptr<chan_core<T>> core_;
};

}  // namespace detail

/// The sending end of a channel (Go's `chan<- T`). Cheap to copy; the channel lives as long as
/// any handle to it.
template <class T>
class Sender : public detail::handle<T> {
 public:
  /// A nil sender: never ready in a select; direct operations throw std::logic_error.
  Sender() = default;
  /// A sender on an existing channel state (see core_ptr()).
  explicit Sender(std::shared_ptr<detail::chan_core<T>> core) noexcept
      : detail::handle<T>(std::move(core)) {}

  ///@{
  /// Blocks until the value is handed over (ok) or the channel is closed (closed).
  [[nodiscard]] status send(T&& value) { return run(value, nullptr, std::nullopt); }
  [[nodiscard]] status send(const T& value) requires std::copy_constructible<T> {
    T copy(value);
    return send(std::move(copy));
  }
  ///@}

  ///@{
  /// As send(), but also returns stopped once `stop` is triggered.
  [[nodiscard]] status send(T&& value, std::stop_token stop) {
    return run(value, &stop, std::nullopt);
  }
  [[nodiscard]] status send(const T& value,
                            std::stop_token stop) requires std::copy_constructible<T> {
    T copy(value);
    return send(std::move(copy), std::move(stop));
  }
  ///@}

  ///@{
  /// As send(), but returns timeout once `deadline` passes (and stopped once `stop` fires).
  [[nodiscard]] status send_until(T&& value, detail::time_point deadline,
                                  std::stop_token stop = {}) {
    return run(value, &stop, deadline);
  }
  [[nodiscard]] status send_until(const T& value, detail::time_point deadline,
                                  std::stop_token stop = {}) requires std::copy_constructible<T> {
    T copy(value);
    return send_until(std::move(copy), deadline, std::move(stop));
  }
  ///@}

  ///@{
  /// As send(), but returns timeout after `timeout` (and stopped once `stop` fires).
  template <class Rep, class Period>
  [[nodiscard]] status send_for(T&& value, std::chrono::duration<Rep, Period> timeout,
                                std::stop_token stop = {}) {
    return send_until(std::move(value), detail::deadline_after(timeout), std::move(stop));
  }
  template <class Rep, class Period>
  [[nodiscard]] status send_for(const T& value, std::chrono::duration<Rep, Period> timeout,
                                std::stop_token stop = {}) requires std::copy_constructible<T> {
    return send_until(value, detail::deadline_after(timeout), std::move(stop));
  }
  ///@}

  ///@{
  /// Never blocks: ok, closed, or would_block (no room, or no receiver waiting). A receive
  /// still making room, one that has not returned yet, has not made it: would_block.
  [[nodiscard]] status try_send(T&& value) { return this->core().try_send(value); }
  [[nodiscard]] status try_send(const T& value) requires std::copy_constructible<T> {
    T copy(value);
    return try_send(std::move(copy));
  }
  ///@}

  /// Closes the channel. Returns true if this call closed it, false if it was already closed
  /// (closing twice is reported, never undefined). Never blocks.
  bool close() { return this->core().close(); }

 private:
  status run(T& value, const std::stop_token* stop, std::optional<detail::time_point> deadline) {
    return detail::send(this->core(), value, stop, deadline);
  }
};

/// The receiving end of a channel (Go's `<-chan T`). Cheap to copy; range-for receives until
/// the channel is closed and drained.
template <class T>
class Receiver : public detail::handle<T> {
 public:
  /// A nil receiver: never ready in a select; direct operations throw std::logic_error.
  Receiver() = default;
  /// A receiver on an existing channel state (see core_ptr()).
  explicit Receiver(std::shared_ptr<detail::chan_core<T>> core) noexcept
      : detail::handle<T>(std::move(core)) {}

  /// Blocks until a value arrives (ok) or the channel is closed and drained (closed).
  [[nodiscard]] received<T> recv() { return run(nullptr, std::nullopt); }
  /// As recv(), but also returns stopped once `stop` is triggered.
  [[nodiscard]] received<T> recv(std::stop_token stop) { return run(&stop, std::nullopt); }
  /// As recv(), but returns timeout once `deadline` passes (and stopped once `stop` fires).
  [[nodiscard]] received<T> recv_until(detail::time_point deadline, std::stop_token stop = {}) {
    return run(&stop, deadline);
  }
  /// As recv(), but returns timeout after `timeout` (and stopped once `stop` fires).
  template <class Rep, class Period>
  [[nodiscard]] received<T> recv_for(std::chrono::duration<Rep, Period> timeout,
                                     std::stop_token stop = {}) {
    return run(&stop, detail::deadline_after(timeout));
  }
  /// Never blocks: ok, closed (closed and drained), or would_block. A send still storing its
  /// value, one that has not returned yet, has not stored it: would_block.
  [[nodiscard]] received<T> try_recv() { return detail::try_receive(this->core()); }

  /// Input iterator for range-for: each step is a blocking recv().
  using iterator = detail::receive_iterator<T>;

  /// Receives the first value (blocking) and returns an iterator to it, or end().
  iterator begin() { return iterator(this->core()); }
  /// The position after the last value: the channel is closed and drained.
  iterator end() noexcept { return iterator(); }

 private:
  received<T> run(const std::stop_token* stop, std::optional<detail::time_point> deadline) {
    return detail::receive(this->core(), stop, deadline);
  }
};

/// A channel with both ends (Go's `chan T`). Cheap to copy: copies share the channel. Converts
/// to Sender<T> and Receiver<T> to hand out one direction only.
template <class T>
class Channel : public Sender<T> {
 public:
  /// An unbuffered channel (capacity 0), or one that buffers exactly `capacity` values.
  /// Throws std::bad_alloc if the buffer cannot be allocated.
  explicit Channel(std::size_t capacity = 0) : Sender<T>(detail::make_core<T>(capacity)) {}
  /// As Channel(capacity), naming the channel for custody::inspect() (an empty name leaves it
  /// unnamed). Throws std::bad_alloc.
  Channel(std::size_t capacity, std::string name) : Sender<T>(detail::make_core<T>(capacity)) {
    this->core_->give_name(std::move(name));
  }

  /// The sending end alone, to hand out.
  Sender<T> sender() const noexcept { return Sender<T>(this->core_); }
  /// The receiving end alone, to hand out.
  Receiver<T> receiver() const noexcept { return Receiver<T>(this->core_); }
  /// The receiving end alone, as receiver().
  operator Receiver<T>() const noexcept { return receiver(); }

  ///@{
  /// Receiving, as with the Receiver<T> member of the same name (without copying a handle).
  [[nodiscard]] received<T> recv() { return detail::receive(this->core(), nullptr, {}); }
  [[nodiscard]] received<T> recv(std::stop_token stop) {
    return detail::receive(this->core(), &stop, {});
  }
  [[nodiscard]] received<T> recv_until(detail::time_point deadline, std::stop_token stop = {}) {
    return detail::receive(this->core(), &stop, deadline);
  }
  template <class Rep, class Period>
  [[nodiscard]] received<T> recv_for(std::chrono::duration<Rep, Period> timeout,
                                     std::stop_token stop = {}) {
    return recv_until(detail::deadline_after(timeout), std::move(stop));
  }
  [[nodiscard]] received<T> try_recv() { return detail::try_receive(this->core()); }
  ///@}

  ///@{
  /// Range-for receives until the channel is closed and drained, as over its Receiver<T>:
  /// `for (auto& v : channel)`.
  typename Receiver<T>::iterator begin() { return typename Receiver<T>::iterator(this->core()); }
  typename Receiver<T>::iterator end() noexcept { return {}; }
  ///@}
};

}  // namespace custody
