#pragma once
// SetRequest<T>: one consumer's request to change a store, as the owner receives it.

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "set_result.hpp"
#include "store_reply.hpp"

namespace custody {

namespace detail {
struct request_access;
}

/// A set() request, received by the owner from Owner::requests(). Move-only; answered exactly
/// once, to the caller that sent it alone:
/// - Owner::accept(std::move(r)) or Owner::accept(std::move(r), adjusted) stores the value,
///   notifies subscribers and then answers "accepted" with what was stored;
/// - std::move(r).accept(stored) only answers (for owners that stored the value themselves,
///   e.g. in a joint change);
/// - std::move(r).reject(code, message) answers "rejected" with the owner's reason;
/// - a conditional request (set_if) whose expected_version() is no longer the store's is
///   answered "conflict" by Owner::accept without storing anything; code that answers with
///   accept(stored) itself checks expected_version() first;
/// - a request destroyed unanswered answers "dropped".
/// Answering never blocks. If the caller has stopped waiting (timeout or stop), the answer is
/// discarded and the answering call returns false; abandoned() tells beforehand.
template <class T>
class SetRequest {
 public:
  /// An empty request (answered, moved from, or default-constructed).
  SetRequest() noexcept = default;
  /// Takes over `other`'s request; `other` becomes empty.
  SetRequest(SetRequest&& other) noexcept : cell_(std::exchange(other.cell_, nullptr)) {}
  /// Answers this request "dropped" if it is still unanswered, then takes over `other`'s.
  SetRequest& operator=(SetRequest&& other) noexcept {
    if (this != &other) {
      finish(set_status::dropped);
      cell_ = std::exchange(other.cell_, nullptr);
    }
    return *this;
  }
  SetRequest(const SetRequest&) = delete;
  SetRequest& operator=(const SetRequest&) = delete;
  /// Answers "dropped" if still unanswered.
  ~SetRequest() { finish(set_status::dropped); }

  /// True while the request holds an unanswered request.
  explicit operator bool() const noexcept { return cell_ != nullptr; }

  /// The value the caller asked for. Throws std::logic_error on an empty request.
  const T& value() const { return cell().requested(); }

  /// For a conditional request (set_if): the store's version the caller's value is based on;
  /// nothing for a plain set(). Throws std::logic_error on an empty request.
  std::optional<std::uint64_t> expected_version() const { return cell().expected(); }

  /// True once the caller has stopped waiting; an answer would be discarded.
  bool abandoned() const noexcept { return cell_ && cell_->is_abandoned(); }

  /// Answers "accepted, and `stored` is what I stored". Does not change the store: publish
  /// first (Owner::accept does both). Returns false if the caller had stopped waiting.
  bool accept(T stored) && {
    detail::reply_cell<T>& c = cell();
    const bool delivered = c.answer_accepted(std::move(stored));
    release();
    return delivered;
  }

  /// Answers "rejected" with the owner's reason. Returns false if the caller had stopped
  /// waiting.
  bool reject(std::error_code code, std::string message) && {
    detail::reply_cell<T>& c = cell();
    const bool delivered = c.answer_rejected(code, std::move(message));
    release();
    return delivered;
  }
  /// Answers with a status that carries no value: dropped, owner_gone, timeout, stopped,
  /// disconnected or conflict, for code that stands between callers and an owner elsewhere (see
  /// Owner::forward_requests). Returns false if the caller had stopped waiting. Throws
  /// std::invalid_argument for accepted or rejected (use accept() or reject()), and
  /// std::logic_error on an empty request.
  bool answer(set_status s) && {
    if (s == set_status::accepted || s == set_status::rejected) {
      throw std::invalid_argument("custody: SetRequest::answer takes a status without a value");
    }
    detail::reply_cell<T>& c = cell();
    const bool delivered = c.answer(s);
    release();
    return delivered;
  }

  /// As reject(std::error_code, std::string), with a std::errc.
  bool reject(std::errc code, std::string message) && {
    return std::move(*this).reject(std::make_error_code(code), std::move(message));
  }

 private:
  friend struct detail::request_access;
  explicit SetRequest(detail::reply_cell<T>* cell) noexcept : cell_(cell) {}

  detail::reply_cell<T>& cell() const {
    if (!cell_) throw std::logic_error("custody: SetRequest is empty (answered or moved from)");
    return *cell_;
  }

  void release() noexcept { std::exchange(cell_, nullptr)->release(); }

  void finish(set_status s) noexcept {
    if (cell_) {
      cell_->answer(s);
      release();
    }
  }

  detail::reply_cell<T>* cell_ = nullptr;
};

namespace detail {

struct request_access {
  template <class T>
  static SetRequest<T> make(reply_cell<T>* cell) noexcept {
    return SetRequest<T>(cell);
  }
  /// Answers "accepted" with the store's version holding `stored` (see result_access).
  template <class T>
  static bool accept(SetRequest<T>& r, T stored, std::uint64_t version) {
    const bool delivered = r.cell().answer_accepted(std::move(stored), version);
    r.release();
    return delivered;
  }
  template <class T>
  static void answer(SetRequest<T>& r, set_status s) noexcept {
    r.finish(s);
  }
  /// Lets go of an unsent request without answering it: its caller has given up.
  template <class T>
  static void discard(SetRequest<T>& r) noexcept {
    if (r.cell_) {
      r.cell_->abandon();
      r.release();
    }
  }
  template <class T>
  static reply_cell<T>& cell(SetRequest<T>& r) {
    return r.cell();
  }
};

}  // namespace detail

}  // namespace custody
