#pragma once
// custody::nats::error: every failure of the NATS client, as one exception type that keeps the
// client's status code and says what custody was doing when it happened.

#include <nats/nats.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace custody::nats {

/// A failed NATS operation. what() reads "custody::nats: <doing>: <client's text> (<detail>)".
class error : public std::runtime_error {
 public:
  /// The failure `code` of the client while `doing` (e.g. "connecting to nats://...").
  error(natsStatus code, std::string_view doing)
      : std::runtime_error(describe(code, doing)), code_(code) {}

  /// The client's status code (NATS_TIMEOUT, NATS_NO_SERVER, ...).
  natsStatus code() const noexcept { return code_; }

 protected:
  /// An error whose whole text (after "custody::nats: ") is `text`.
  error(const std::string& text, natsStatus code)
      : std::runtime_error("custody::nats: " + text), code_(code) {}

 private:
  static std::string describe(natsStatus code, std::string_view doing) {
    std::string text = "custody::nats: " + std::string(doing) + ": " + natsStatus_GetText(code);
    // The thread's last error often names the cause more precisely (an authorization
    // violation, a missing certificate file, ...).
    natsStatus last = NATS_OK;
    const char* raw = nats_GetLastError(&last);
    if (raw == nullptr || last != code) return text;
    std::string_view detail(raw);
    // The client prefixes "(file.c:line): ", which says nothing to a user.
    if (detail.starts_with('(')) {
      if (const auto end = detail.find("): "); end != std::string_view::npos) {
        detail.remove_prefix(end + 3);
      }
    }
    if (!detail.empty() && detail != natsStatus_GetText(code)) {
      text += " (" + std::string(detail) + ")";
    }
    return text;
  }

  natsStatus code_;
};

/// Another owner holds the lease on a key (lease.hpp): what() names the bucket, the key and
/// the holder.
class lease_held : public error {
 public:
  /// The lease on `key` in `bucket` is `holder`'s (its description of itself).
  lease_held(const std::string& bucket, const std::string& key, const std::string& holder)
      : error("bucket " + bucket + ": key " + key + " is owned by " + holder +
                  ", whose lease is being renewed; only one owner may publish it",
              NATS_ILLEGAL_STATE),
        holder_(holder) {}

  /// Who holds the lease, as it describes itself.
  const std::string& holder() const noexcept { return holder_; }

 private:
  std::string holder_;
};

/// Waiting for a lease another owner holds (lease.hpp) ended before the lease could be taken:
/// the wait was stopped (stopped(), code() NATS_ERR) or its deadline passed (code()
/// NATS_TIMEOUT). what() names the bucket and the key.
class lease_wait_ended : public error {
 public:
  /// The wait for the lease on `key` in `bucket` ended: stopped, or at its deadline.
  lease_wait_ended(const std::string& bucket, const std::string& key, bool stopped)
      : error("bucket " + bucket + ": key " + key + " is owned by another holder; " +
                  (stopped ? "stopped" : "gave up at the deadline") +
                  " while waiting for its lease to end",
              stopped ? NATS_ERR : NATS_TIMEOUT),
        stopped_(stopped) {}

  /// True when a stop ended the wait, false when its deadline did.
  bool stopped() const noexcept { return stopped_; }

 private:
  bool stopped_;
};

namespace detail {
/// Throws error(s, doing) unless s is NATS_OK.
inline void check(natsStatus s, std::string_view doing) {
  if (s != NATS_OK) throw error(s, doing);
}
}  // namespace detail

}  // namespace custody::nats
