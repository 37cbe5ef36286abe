#pragma once
// The wire format of a store published over NATS, for clients in any language.
//
// - The value lives in the JetStream key-value bucket `bucket` under `key`, encoded by the
//   store's codec (JSON by default). Every write has a revision; a newer write has a higher one.
//   An owner's entries carry two headers:
//     Custody-Owner     this run of the owner's exporter (an opaque token)
//     Custody-Version   the store's version of the value, decimal: higher for newer values of
//                       the same Custody-Owner
//   and, when the owner holds the key's lease (below), a third:
//     Custody-Fence     the fencing token of the lease under which it was written, decimal
// - The lease: the owner's exporter holds the key lease_key(key) of the same bucket, a JSON
//   object {"holder": text, "ttl_ms": n, "renew_ms": n, "fence": n}. It takes it with a write
//   that expects the key to have no entry (or a delete as its last), or, once the holder has
//   not renewed it for ttl_ms, one that expects the last revision it saw; it renews it every
//   renew_ms with a write expecting its own last revision, and deletes it when it stops. The
//   fencing token is the revision of the write that took the lease: "fence" in later
//   renewals, absent in that first write (whose own revision it is). Readers apply only
//   entries whose Custody-Fence is the current lease's token, once a lease exists. The owner
//   writes each value expecting the key's last revision it knows (Nats-Expected-Last-Subject-
//   Sequence), and a new owner writes the key right after taking the lease, so that a deposed
//   owner's writes are refused from then on; a refused owner renews its lease, and stops
//   writing when the lease is another's (or deleted).
// - A set request is a NATS request to request_subject(bucket, key) (by default
//   "custody.<bucket>.<key>.set") whose payload is the encoded value asked for.
// - A conditional set (set_if) also carries Custody-Expected-Owner and
//   Custody-Expected-Version: the Custody-Owner and Custody-Version of the entry whose value
//   the caller's is based on. The owner stores it only while its store is still at that
//   version, and answers "conflict" otherwise (another owner's run included).
// - The reply's headers say how it ended:
//     Custody-Status    accepted | rejected | dropped | owner-gone | timeout | invalid |
//                       conflict
//     Custody-Owner, Custody-Version  (accepted; absent when the owner cannot tell) those of
//                       the stored value: it is written (or a newer value is) under them
//     Custody-Since-Revision  (accepted, with the two above, once the owner has written) the
//                       revision of that owner's first entry. Entries below it, and entries of
//                       that owner with a lower version, hold values older than the stored one
//     Custody-Error     (rejected) the owner's error code, decimal
//     Custody-Category  (rejected) the error code's category ("generic", "system", ...)
//     Custody-Message   (rejected, invalid) the owner's reason, or what was wrong with the
//                       request
//   and an accepted reply's payload is the encoded value the owner stored (maybe adjusted).
// - A request sent while no owner serves the store gets the server's "no responders" reply.

#include <string>
#include <string_view>

namespace custody::nats::wire {

inline constexpr const char* status_header = "Custody-Status";
inline constexpr const char* owner_header = "Custody-Owner";
inline constexpr const char* version_header = "Custody-Version";
inline constexpr const char* since_revision_header = "Custody-Since-Revision";
inline constexpr const char* fence_header = "Custody-Fence";
inline constexpr const char* error_header = "Custody-Error";
inline constexpr const char* category_header = "Custody-Category";
inline constexpr const char* message_header = "Custody-Message";
inline constexpr const char* expected_owner_header = "Custody-Expected-Owner";
inline constexpr const char* expected_version_header = "Custody-Expected-Version";

inline constexpr std::string_view accepted = "accepted";
inline constexpr std::string_view rejected = "rejected";
inline constexpr std::string_view dropped = "dropped";
inline constexpr std::string_view owner_gone = "owner-gone";
inline constexpr std::string_view timeout = "timeout";
/// The request's payload could not be decoded (or was too large); nothing was asked of the
/// owner.
inline constexpr std::string_view invalid = "invalid";
/// A conditional set found the value moved on from the one it expected; nothing was stored.
inline constexpr std::string_view conflict = "conflict";

/// The key of the lease on `key`, in the same bucket.
inline std::string lease_key(std::string_view key) { return std::string(key) + ".lease"; }

/// The subject set requests for `key` in `bucket` go to, unless configured otherwise.
inline std::string request_subject(std::string_view bucket, std::string_view key) {
  return "custody." + std::string(bucket) + "." + std::string(key) + ".set";
}

}  // namespace custody::nats::wire
