#pragma once
// custody::nats::Lease: one owner per key. The owner holds a lease, an entry of the bucket that
// it renews; a second owner finds it renewed and is refused; once the holder stops renewing it
// for its time to live, another may take it over. Every write of the holder carries the
// lease's fencing token, so readers can tell its entries from anyone else's (wire.hpp).

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "error.hpp"
#include "handles.hpp"
#include "key_value.hpp"
#include "key_watch.hpp"
#include "wire.hpp"

namespace custody::nats {

/// What a lease entry says (wire.hpp).
struct lease_record {
  std::string holder;                  ///< who holds it, as it describes itself
  std::chrono::milliseconds ttl{0};    ///< not renewed for this long, it may be taken over
  std::chrono::milliseconds renew{0};  ///< how often the holder renews it
  std::uint64_t fence = 0;             ///< the fencing token of the holder's entries

  /// The lease in an entry's bytes, written at `revision`; nothing for bytes that are not a
  /// lease (a lease without "fence" was just taken: its fence is its own revision).
  static std::optional<lease_record> parse(std::string_view bytes, std::uint64_t revision) {
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (!j.is_object()) return std::nullopt;
    const auto number = [&](const char* name) -> std::optional<std::uint64_t> {
      const auto it = j.find(name);
      if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
      return it->get<std::uint64_t>();
    };
    const auto holder = j.find("holder");
    const auto ttl = number("ttl_ms");
    const auto renew = number("renew_ms");
    if (holder == j.end() || !holder->is_string() || !ttl || !renew) return std::nullopt;
    lease_record r;
    r.holder = holder->get<std::string>();
    r.ttl = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::min<std::uint64_t>(*ttl, 1u << 30)));
    r.renew = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::min<std::uint64_t>(*renew, 1u << 30)));
    r.fence = number("fence").value_or(revision);
    return r;
  }
};

/// How to hold a lease.
struct lease_options {
  std::string key;     ///< the lease's key (wire::lease_key of the key it guards)
  std::string holder;  ///< who holds it, for a refused contender's message
  /// Not renewed for this long, the lease may be taken over by another owner.
  std::chrono::milliseconds ttl{3000};
};

/// A held lease. Not thread-safe: one thread renews it (the exporter's writer).
class Lease {
 public:
  /// Takes the lease on `options.key` of `bucket` (which must outlive it).
  /// - Free, or released: taken at once.
  /// - Held: waits on a watch of the lease key, woken by the holder's renewal (refused with
  ///   lease_held), its release (taken), the end of its ttl without a renewal (taken over),
  ///   `stop` or `deadline` (lease_wait_ended, whose stopped() tells which). The wait never
  ///   polls: a stop wakes it at once, so it returns within a few milliseconds of the stop.
  /// Besides that wait, each step waits at most the bucket's timeout for the server. Throws
  /// lease_held, lease_wait_ended, or error when the server cannot be asked. Thread-safety:
  /// `stop` may be requested from any thread while this runs.
  Lease(
      const KeyValue& bucket, lease_options options, std::stop_token stop = {},
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max())
      : bucket_(&bucket), options_(std::move(options)) {
    std::optional<std::uint64_t> seen;  // the holder's revision when first seen
    auto seen_at = std::chrono::steady_clock::now();
    for (;;) {
      if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) {
        throw lease_wait_ended(bucket_->name(), options_.key, stop.stop_requested());
      }
      const auto last = bucket_->last(options_.key);
      if (!last || deleted(*last)) {  // free: taken unless another contender was first
        if (take(last ? last->revision : 0, 0)) return;
        continue;
      }
      const auto held = lease_record::parse(data_of(*last), last->revision);
      const std::string holder = held ? held->holder : "an unknown holder";
      const auto ttl = held ? held->ttl : options_.ttl;
      const auto now = std::chrono::steady_clock::now();
      if (!seen) {
        seen = last->revision;
        seen_at = now;
      } else if (*seen != last->revision) {  // renewed while watched: the holder is alive
        throw lease_held(bucket_->name(), options_.key, holder);
      } else if (now - seen_at >= ttl) {  // not renewed in time: taken over
        if (take(last->revision, 0)) return;
        continue;
      }
      // Whatever woke the wait, the lease is read again: a renewal then shows as a new
      // revision, a release as a delete, the end of the ttl as the same revision.
      wait_after(last->revision, seen_at + ttl, stop, deadline);
    }
  }

  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// The fencing token of this holder's entries (it changes only when the bucket was made
  /// again and the lease taken anew by renew()).
  std::uint64_t fence() const noexcept { return fence_; }
  /// How often renew() should be called: a third of the time to live.
  std::chrono::milliseconds renew_interval() const noexcept { return options_.ttl / 3; }

  /// How a renewal went.
  enum class renewal {
    renewed,  ///< renewed (or, the bucket having been made again, taken anew)
    lost,     ///< another owner holds it now: this one must stop writing
    failed,   ///< the server could not be asked (try again)
  };

  /// Renews the lease, waiting at most `timeout` (zero: the bucket's timeout).
  renewal renew(std::chrono::milliseconds timeout = {}) {
    try {
      if (write(revision_, fence_, timeout)) return renewal::renewed;
      // Another revision is there: another owner's, or none at all when the server lost the
      // bucket and it was made again (a fresh lease then, with a new fence).
      const auto last = bucket_->last(options_.key);
      if (!last) return take(0, 0) ? renewal::renewed : renewal::lost;
      // Or this owner's own renewal, stored although its answer did not come in time.
      const auto held =
          deleted(*last) ? std::nullopt : lease_record::parse(data_of(*last), last->revision);
      if (held && held->fence == fence_ && held->holder == options_.holder) {
        revision_ = last->revision;
        return write(revision_, fence_, timeout) ? renewal::renewed : renewal::failed;
      }
      return renewal::lost;
    } catch (const error&) {
      return renewal::failed;
    }
  }

  /// Deletes the lease unless another owner holds it by now, so that the next owner need not
  /// wait for its time to live; waits at most `timeout`. Errors are ignored (the lease then
  /// expires by itself).
  void release(std::chrono::milliseconds timeout) noexcept {
    try {
      (void)bucket_->put_if(options_.key, {}, revision_, {{"KV-Operation", "DEL"}}, timeout);
    } catch (const std::exception&) {
    }
  }

 private:
  // Waits on a watch of the lease key until an entry after `revision` comes, `expires` or
  // `deadline` passes, or `stop` is requested (which throws lease_wait_ended, as does the
  // deadline). A watch the server lost returns too (the caller reads the lease again); one it
  // refused throws error.
  void wait_after(std::uint64_t revision, std::chrono::steady_clock::time_point expires,
                  const std::stop_token& stop, std::chrono::steady_clock::time_point deadline) {
    key_watch_options watching;
    watching.bucket = bucket_->name();
    watching.key = options_.key;
    watching.after_revision = revision;
    KeyWatch w(bucket_->connection(), std::move(watching));
    const std::stop_callback interrupt(stop, [&w]() noexcept { w.interrupt(); });
    bool created = false;
    for (;;) {
      message m;
      switch (w.next(m, std::min(expires, deadline))) {
        case KeyWatch::outcome::created:
          created = true;
          continue;
        case KeyWatch::outcome::entry:
          return;
        case KeyWatch::outcome::idle:
          if (std::chrono::steady_clock::now() >= deadline) {
            throw lease_wait_ended(bucket_->name(), options_.key, false);
          }
          return;  // the ttl is over
        case KeyWatch::outcome::interrupted:
          if (stop.stop_requested()) throw lease_wait_ended(bucket_->name(), options_.key, true);
          throw error(NATS_CONNECTION_CLOSED, "watching the lease " + options_.key);
        case KeyWatch::outcome::lost:
          if (!created) throw error(NATS_ERR, "watching the lease " + options_.key);
          return;
      }
    }
  }

  static std::string_view data_of(const kv_message& m) {
    const int size = natsMsg_GetDataLength(m.entry.get());
    return size > 0
               ? std::string_view(natsMsg_GetData(m.entry.get()), static_cast<std::size_t>(size))
               : std::string_view();
  }

  static bool deleted(const kv_message& m) {
    const char* operation = nullptr;
    return natsMsgHeader_Get(m.entry.get(), "KV-Operation", &operation) == NATS_OK;
  }

  // Takes the lease over the entry at `expected` (0: none); false if another was first.
  bool take(std::uint64_t expected, std::uint64_t fence) {
    if (!write(expected, fence, {})) return false;
    fence_ = revision_;  // the revision of the write that took it
    return true;
  }

  // Writes the lease expecting `expected` as the key's last revision (fence 0: none yet).
  bool write(std::uint64_t expected, std::uint64_t fence, std::chrono::milliseconds timeout) {
    nlohmann::json body = {{"holder", options_.holder},
                           {"ttl_ms", options_.ttl.count()},
                           {"renew_ms", renew_interval().count()}};
    if (fence != 0) body["fence"] = fence;
    const auto revision = bucket_->put_if(options_.key, body.dump(), expected, {}, timeout);
    if (!revision) return false;
    revision_ = *revision;
    return true;
  }

  const KeyValue* bucket_;
  lease_options options_;
  std::uint64_t revision_ = 0;  // of the last write of the lease
  std::uint64_t fence_ = 0;
};

}  // namespace custody::nats
