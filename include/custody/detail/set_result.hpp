#pragma once
// The answer to one set() request.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace custody {

namespace detail {
struct result_access;
}

/// How a set() request ended.
enum class set_status : std::uint8_t {
  accepted,  ///< The owner stored a value; set_result::value() is what it stored (maybe adjusted).
  rejected,  ///< The owner refused; set_result::error() and message() give its reason.
  dropped,   ///< The owner let go of the request without answering it.
  owner_gone,  ///< The owner was gone before it answered (or before the request was sent).
  /// The deadline passed first. A request the owner had already received may still be
  /// carried out; one still waiting in the request channel never reaches the owner.
  timeout,
  /// The stop token fired first; as for timeout.
  stopped,
  /// Remote stores only: the connection to the owner was down when the request was sent, or
  /// went down before the answer came back, or the owner's own link was down (its lease live,
  /// nobody answering). The owner may have acted on it; get() tells.
  disconnected,
  /// Conditional sets only (set_if): the store's value had moved on from the version the
  /// caller expected, so nothing was stored. Read it again and decide anew.
  conflict,
};

/// How many set_status values there are: the size of a table indexed by status (e.g.
/// store_report::set_answers).
inline constexpr std::size_t set_status_count = static_cast<std::size_t>(set_status::conflict) + 1;

/// A short lowercase name for `s`, for messages and logs.
constexpr std::string_view to_string(set_status s) noexcept {
  switch (s) {
    case set_status::accepted:
      return "accepted";
    case set_status::rejected:
      return "rejected";
    case set_status::dropped:
      return "dropped";
    case set_status::owner_gone:
      return "owner gone";
    case set_status::timeout:
      return "timeout";
    case set_status::stopped:
      return "stopped";
    case set_status::disconnected:
      return "disconnected";
    case set_status::conflict:
      return "conflict";
  }
  return "unknown";
}

/// The answer to one set(): delivered to that caller alone.
template <class T>
class set_result {
 public:
  /// A result without a value: dropped, owner_gone, timeout, stopped, disconnected or
  /// conflict.
  explicit set_result(set_status s) : status_(s) {}
  /// An accepted request and the value the owner stored.
  static set_result accepted_with(T stored) {
    set_result r(set_status::accepted);
    r.value_.emplace(std::move(stored));
    return r;
  }
  /// A rejected request and the owner's reason.
  static set_result rejected_with(std::error_code code, std::string message) {
    set_result r(set_status::rejected);
    r.code_ = code;
    if (!message.empty()) r.message_ = std::make_shared<const std::string>(std::move(message));
    return r;
  }

  /// How the request ended.
  set_status status() const noexcept { return status_; }
  ///@{
  /// True when the owner accepted the request.
  explicit operator bool() const noexcept { return status_ == set_status::accepted; }
  bool accepted() const noexcept { return status_ == set_status::accepted; }
  ///@}

  ///@{
  /// The value the owner stored. Throws std::logic_error naming the status unless accepted.
  const T& value() const& { return checked(); }
  T&& value() && { return std::move(checked()); }
  ///@}

  /// The store's version that holds the accepted value (versions grow by one with every
  /// change the owner publishes; StoreView::get_versioned() reports them too), so code can
  /// order this value against others of the same store. 0 when unknown: not accepted, or
  /// answered by code that stored the value itself (SetRequest::accept).
  std::uint64_t version() const noexcept { return version_; }

  /// The owner's reason for a rejection, as an error code (empty otherwise).
  const std::error_code& error() const noexcept { return code_; }
  /// The owner's reason for a rejection, as a message (empty otherwise).
  const std::string& message() const noexcept {
    static const std::string none;
    return message_ ? *message_ : none;
  }

 private:
  friend struct detail::result_access;
  T& checked() const {
    if (!value_) {
      throw std::logic_error(
          "custody: set() was not accepted (status: " + std::string(to_string(status_)) + ")");
    }
    return const_cast<T&>(*value_);
  }

  std::optional<T> value_;
  std::uint64_t version_ = 0;  // the store's version holding the accepted value; 0: unknown
  std::error_code code_;
  // Shared and null when empty: a result is moved several times on its way to the caller, and
  // a moved std::string costs an out-of-line call each time, for a message only a rejection has.
  std::shared_ptr<const std::string> message_;
  set_status status_;
};

namespace detail {
/// Lets the reply of a request record the version an accepted value was stored at.
struct result_access {
  template <class T>
  static void set_version(set_result<T>& r, std::uint64_t version) noexcept {
    r.version_ = version;
  }
};
}  // namespace detail

}  // namespace custody
