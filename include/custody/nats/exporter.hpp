#pragma once
// The owner's side of a store over NATS: custody::nats::Exporter writes every value the owner
// publishes into a key-value bucket and hands set requests arriving over NATS to the owner,
// through the store's own request channel, so the owner's code does not change at all.

#include <nats/nats.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "../channel.hpp"
#include "../select.hpp"
#include "../store.hpp"
#include "codec.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "handles.hpp"
#include "key_value.hpp"
#include "lease.hpp"
#include "wire.hpp"

namespace custody::nats {

/// Where and how a store is published.
struct export_options {
  bucket_options bucket;  ///< the bucket (created if missing)
  std::string key;        ///< the key under which the value is written
  /// The subject set requests arrive on; empty: wire::request_subject(bucket, key).
  std::string request_subject;
  /// The longest a request waits for the owner's answer before the requester is told timeout.
  std::chrono::milliseconds set_timeout{5000};
  /// Larger request payloads are answered "invalid" without decoding them.
  std::size_t max_payload = 1 << 20;
  /// While a write fails (the server is back but JetStream not yet ready, say), how often it
  /// is retried.
  std::chrono::milliseconds retry_interval{250};
  /// Destroying the exporter writes the newest value, waiting at most this long for the
  /// server; a write still in flight then is cut short (the value may or may not be stored).
  std::chrono::milliseconds final_write_timeout{50};
  /// The owner's lease on the key (lease.hpp): not renewed for this long (the owner's process
  /// stopped or died), another owner may take it over. Renewed every third of it.
  std::chrono::milliseconds lease_ttl{3000};
  /// Who the owner is, for the message a second owner is refused with (say, a program, its
  /// process id and host); empty: this exporter's random owner token.
  std::string holder;
};

/// What an exporter has done so far.
struct export_stats {
  std::uint64_t writes = 0;            ///< values written to the bucket
  std::uint64_t write_failures = 0;    ///< writes that failed (retried with the latest value)
  std::uint64_t requests = 0;          ///< set requests handed to the owner
  std::uint64_t invalid_requests = 0;  ///< requests answered "invalid" (or without reply subject)
  std::uint64_t buckets_made = 0;      ///< times the bucket was gone and made again
  std::uint64_t lease_renewals = 0;    ///< times the lease was renewed
  bool lease_lost = false;  ///< another owner took the lease over: nothing is written since
};

/// Whether an exporter still holds its key's lease.
enum class lease_status {
  held,     ///< this exporter holds the lease: it writes the key's values
  deposed,  ///< another owner took the lease over: nothing more is written, requests are
            ///< answered "owner gone"
};

/// Publishes a store over NATS while it lives.
///
/// - One owner: the exporter holds the key's lease (lease.hpp, wire.hpp) while it lives,
///   renews it every third of export_options::lease_ttl and deletes it when destroyed. A
///   second exporter of the same key is refused with lease_held. Every entry it writes carries
///   the lease's fencing token. Each value is written on the key's last revision the exporter
///   knows (a conditional write): refused because another write came in between, the exporter
///   renews the lease, and while it is still its own writes again on the new revision. Should
///   another owner have taken the lease over (this process was stopped for longer than the
///   lease_ttl, or the lease was deleted or overwritten), the exporter is deposed: found at
///   its next write or renewal, it writes nothing more and answers requests "owner gone"
///   (lease() says deposed, stats().lease_lost).
///
/// - Values: every value the owner publishes is written to the bucket under the key, in order,
///   each with its revision. Writes never hold the owner back: should the owner publish faster
///   than the server stores, intermediate values are skipped and the newest is written. While
///   disconnected nothing is written; on reconnection the newest value is, unless the bucket
///   holds it already. A write nobody answers for (the server lost the bucket) makes the bucket
///   again, and the next attempt writes the value there.
/// - Requests (only when exporting a view with the set capability): each request arriving on
///   the request subject is decoded and set() on the store, so it reaches the owner's
///   requests() like a local one; the owner's answer goes back to that requester alone (see
///   wire.hpp). Undecodable payloads are answered "invalid" and counted, never reach the
///   owner. Requests are handed over one at a time, in arrival order.
/// - When the owner is gone the final value is written, and requests are answered "owner
///   gone" until the exporter is destroyed (after which the server answers "no responders").
///   Destroying the exporter writes the newest value first, if it is not written yet.
///
/// Connections: requests and answers use the connection given; writes use a second connection
/// to the same servers with the same options, which the exporter opens (Connection::another),
/// so that an answer never waits behind a write.
///
/// Thread-safety: a background thread writes; requests are handed over on the client's delivery
/// thread for the request subject, so that a slow write never delays an answer. stats() may
/// be called from any thread. The destructor stops both and unsubscribes: it returns within
/// about twice export_options::final_write_timeout plus the connection's drain_timeout, even
/// against a frozen server (a write in flight is cut short by closing the writes' connection).
template <class T, class Codec = json_codec<T>>
requires codec_for<Codec, T>
class Exporter {
 public:
  /// Starts publishing the store behind `view` (which needs get and subscribe; set too, to
  /// serve requests); requests are served from the moment it returns, and the bucket holds the
  /// current value by then (if connected and the write succeeds; else it is retried in the
  /// background like any failed write). A key whose lease another owner holds is waited for
  /// (Lease): refused with lease_held at the holder's next renewal, taken over once it was not
  /// renewed for its ttl (so this may block that long), and given up at once when `stop` is
  /// requested, from any thread (lease_wait_ended). Throws those, or error if the connection
  /// for writes cannot be made, the bucket cannot be opened or created, or the request subject
  /// cannot be subscribed.
  template <unsigned Caps>
  Exporter(const Connection& connection, const StoreView<T, Caps>& view, export_options options,
           std::stop_token stop = {})
      : connection_(connection),
        write_connection_(connection.another()),
        kv_(write_connection_, options.bucket),
        options_(std::move(options)),
        lease_(kv_,
               lease_options{wire::lease_key(options_.key),
                             options_.holder.empty() ? "owner " + owner_tag_ : options_.holder,
                             options_.lease_ttl},
               std::move(stop)),
        fence_text_(std::to_string(lease_.fence())),
        view_(view) {
    static_assert((Caps & capability::get) != 0 && (Caps & capability::subscribe) != 0,
                  "custody::nats::Exporter needs a view with get and subscribe (and set, to "
                  "serve set requests)");
    if constexpr ((Caps & capability::set) != 0) {
      setter_ = view;
      const std::string subject = options_.request_subject.empty()
                                      ? wire::request_subject(options_.bucket.name, options_.key)
                                      : options_.request_subject;
      subscription_ = MessageSubscription(
          connection, subject, [this](message m) { serve(std::move(m), stopping_.get_token()); });
      // Once constructed, requests are served: the server has the subscription.
      connection.flush(options_.bucket.timeout);
    }
    // Subscribed before the threads start, so that nothing published from now on is missed.
    updates_ = view_.subscribe(policy::latest().with_current());
    // The first write follows the key's last entry, whoever wrote it; unknown (the server did
    // not answer), it is refused and learnt then (write_fenced).
    try {
      known_revision_ = key_revision();
    } catch (const error&) {
    }
    // The current value is in the bucket before this returns, so that a consumer started
    // afterwards reads the owner's value, never its own default.
    write_newest();
    writer_ = std::jthread([this](std::stop_token stop) { write_updates(stop); });
  }

  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  ~Exporter() {
    stopping_.request_stop();     // a request being handed over gives up...
    subscription_.unsubscribe();  // ...so this returns soon
    writer_.request_stop();
    // The final write waits final_write_timeout at most; a write in flight against a frozen
    // server would wait the bucket's timeout, so after that long the writes' connection, the
    // exporter's own, is closed, which ends it at once.
    if (writer_.joinable() && !writer_done_.recv_for(2 * options_.final_write_timeout)) {
      write_connection_.close();
    }
    if (writer_.joinable()) writer_.join();
    // The next owner need not wait for the lease to expire.
    if (!lease_lost_.load(std::memory_order_relaxed)) lease_.release(options_.final_write_timeout);
  }

  /// What has been done so far.
  export_stats stats() const {
    return export_stats{writes_.load(std::memory_order_relaxed),
                        write_failures_.load(std::memory_order_relaxed),
                        requests_served_.load(std::memory_order_relaxed),
                        invalid_.load(std::memory_order_relaxed),
                        buckets_made_.load(std::memory_order_relaxed),
                        lease_renewals_.load(std::memory_order_relaxed),
                        lease_lost_.load(std::memory_order_relaxed)};
  }

  /// Whether this exporter still holds its lease: a store a task can read or subscribe to, to
  /// learn that another owner took the lease over (lease_status::deposed, final: an exporter
  /// never takes its lease back). Deposition is found at the next write of a value (its
  /// conditional write is refused, and the lease is another's) or the next renewal, so within
  /// a third of lease_ttl even while the owner publishes nothing.
  GetSubscriber<lease_status> lease() const { return lease_view_; }

  /// The fencing token its entries carry (wire.hpp); it changes when the bucket is made again.
  std::uint64_t fence() const { return fence_.load(std::memory_order_acquire); }

  /// The revision of the last successful write (0 before the first).
  std::uint64_t revision() const { return last_revision_.load(std::memory_order_acquire); }

 private:
  // --- the writer thread ------------------------------------------------------------------

  void write_updates(std::stop_token stop) {
    auto link = write_connection_.state().subscribe(policy::latest());
    bool store_open = true;
    bool linked = true;  // until the connection closes for good
    std::chrono::steady_clock::time_point renew_at =
        std::chrono::steady_clock::now() + lease_.renew_interval();
    while (store_open && !stop.stop_requested() && !lease_lost_.load(std::memory_order_relaxed)) {
      // The subscription only says "there is something new": the newest value is read from
      // the store together with its version.
      select(on_recv(
                 updates_, [&](T&&) { write_newest(); }, [&] { store_open = false; }),
             on_recv(
                 link,
                 [&](connection_state&& s) {
                   // Written again when the bucket lacks the last write: the server may have
                   // lost its state, and this write makes the bucket again (write_newest).
                   if (s.connected && (dirty_ || !bucket_has_last_write())) {
                     dirty_ = true;
                     write_newest();
                   }
                 },
                 [&] { linked = false; })
                 .when(linked),
             // One timer for two jobs: a failed write is retried after retry_interval; the
             // lease is renewed at its time, which values published faster than the renewal
             // interval must not put off.
             on_deadline(std::min(renew_at, dirty_ ? std::chrono::steady_clock::now() +
                                                         options_.retry_interval
                                                   : renew_at),
                         [&] {
                           if (std::chrono::steady_clock::now() >= renew_at) {
                             renew_at = renew_lease();
                           }
                           if (dirty_) write_newest();
                         }),
             on_stop(stop));
    }
    // Going away: the bucket keeps the newest value, even one published just before.
    if (!lease_lost_.load(std::memory_order_relaxed)) write_newest(options_.final_write_timeout);
    (void)writer_done_.try_send(true);
  }

  // Renews the lease; returns when to renew it next. Lost: nothing is written any more.
  std::chrono::steady_clock::time_point renew_lease() {
    const auto now = std::chrono::steady_clock::now();
    if (!write_connection_.connected()) return now + options_.retry_interval;
    switch (lease_.renew()) {
      case Lease::renewal::renewed:
        lease_renewals_.fetch_add(1, std::memory_order_relaxed);
        set_fence();  // a new one when the bucket was made again
        return now + lease_.renew_interval();
      case Lease::renewal::lost:
        depose();
        return now;
      case Lease::renewal::failed:
        break;
    }
    return now + options_.retry_interval;
  }

  // Another owner holds the lease: nothing more is written (the writer thread ends), requests
  // are answered "owner gone", and whoever follows lease() learns it.
  void depose() {
    if (lease_lost_.exchange(true, std::memory_order_relaxed)) return;
    (void)lease_owner_.publish(lease_status::deposed);
  }

  void set_fence() {
    if (lease_.fence() == fence_.load(std::memory_order_relaxed)) return;
    fence_text_ = std::to_string(lease_.fence());
    fence_.store(lease_.fence(), std::memory_order_release);
  }

  // Writes the newest value unless written already, waiting for the server at most `timeout`
  // (zero: the bucket's timeout).
  void write_newest(std::chrono::milliseconds timeout = {}) {
    auto [value, version] = view_.get_versioned();
    // A notification for a value already written (read by an earlier write): nothing to do.
    if (!dirty_ && written_version_ == version) return;
    try {
      const std::string bytes = Codec::encode(value);
      dirty_ = true;
      if (write_connection_.connected()) {  // else written on reconnection
        const auto written = write_fenced(bytes, version, timeout);
        if (!written) return;  // deposed
        const std::uint64_t revision = *written;
        writes_.fetch_add(1, std::memory_order_relaxed);
        dirty_ = false;
        written_version_ = version;
        last_revision_.store(revision, std::memory_order_release);
        std::uint64_t none = 0;
        first_revision_.compare_exchange_strong(none, revision, std::memory_order_acq_rel);
      }
    } catch (const error& e) {
      write_failures_.fetch_add(1, std::memory_order_relaxed);
      // Nobody answers for the bucket's subjects: its stream is gone (the server lost its
      // state). Made again here, written at the next attempt, with revisions from 1 again.
      if (e.code() == NATS_NO_RESPONDERS) remake_bucket();
    } catch (const std::exception&) {  // encoding failed: nothing to retry with
      write_failures_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Writes `bytes` on the key's last revision this exporter knows, so that a deposed owner's
  // write is refused once the new owner has written. Refused (another write came in between,
  // or the bucket was made again): the lease is renewed, and while it is still this
  // exporter's, that write was its own (stored, though its answer did not come), its
  // process's or a forged one, and the value is written again on the revision there now; once
  // another owner holds the lease (or it was deleted), this exporter is deposed and nothing is
  // written. A lease taken over between that renewal and the write again lets one more entry
  // through, which consumers that read the new lease ignore (its token is old).
  // Throws error as KeyValue::put does.
  std::optional<std::uint64_t> write_fenced(const std::string& bytes, std::uint64_t version,
                                            std::chrono::milliseconds timeout) {
    const std::string version_text = std::to_string(version);
    for (int attempt = 1;; ++attempt) {
      // Tagged, so that readers can tell older entries from a value an answer brought.
      const auto revision = kv_.put_if(options_.key, bytes, known_revision_,
                                       {{wire::owner_header, owner_tag_},
                                        {wire::version_header, version_text},
                                        {wire::fence_header, fence_text_}},
                                       timeout);
      if (revision) {
        known_revision_ = *revision;
        return revision;
      }
      // Renewed: still this exporter's (or taken anew in a bucket made again, whose revisions
      // start again at 1: its fence changes).
      switch (lease_.renew(timeout)) {
        case Lease::renewal::renewed:
          lease_renewals_.fetch_add(1, std::memory_order_relaxed);
          set_fence();
          break;
        case Lease::renewal::lost:
          depose();
          return std::nullopt;
        case Lease::renewal::failed:
          throw error(NATS_ERR, "writing " + options_.bucket.name + "/" + options_.key +
                                    ": the lease could not be renewed");
      }
      known_revision_ = key_revision();
      // Another writer keeps moving the key on: a failed write, tried again later.
      if (attempt == max_write_attempts) {
        throw error(NATS_ERR, "writing " + options_.bucket.name + "/" + options_.key +
                                  ": another writer moved the key on each time");
      }
    }
  }

  // The revision of the key's last entry (0: none). Throws error.
  std::uint64_t key_revision() const {
    const auto last = kv_.last(options_.key);
    return last ? last->revision : 0;
  }

  // The bucket holds the last value written, at its revision.
  bool bucket_has_last_write() const {
    try {
      const auto entry = kv_.get(options_.key);
      return entry && entry->revision == last_revision_.load(std::memory_order_acquire);
    } catch (const error&) {
      return false;
    }
  }

  void remake_bucket() {
    try {
      kv_ = KeyValue(write_connection_, options_.bucket);
      first_revision_.store(0, std::memory_order_release);
      known_revision_ = 0;  // revisions start again at 1
      buckets_made_.fetch_add(1, std::memory_order_relaxed);
      // The lease went with the bucket: taken anew, before the value is written again.
      if (lease_.renew() == Lease::renewal::lost) depose();
      set_fence();
    } catch (const error&) {  // not now: tried again at the next failed write
    }
  }

  // A token no other run of an exporter uses, for the entries it writes.
  static std::string make_owner_tag() {
    // Only unique, not secret: the clocks and a stack address (randomised per run) serve when
    // std::random_device throws for want of an entropy source.
    std::uint64_t bits =
        static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
            0x9E3779B97F4A7C15ull;
    bits ^= static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&bits)) << 17;
    try {
      std::random_device entropy;
      bits ^= (std::uint64_t{entropy()} << 32) ^ entropy();
    } catch (const std::exception&) {  // no entropy source: the bits above stand
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
    return text;
  }

  // --- requests, on the client's delivery thread for the request subject ----------------

  void serve(message m, const std::stop_token& stop) {
    const char* reply = natsMsg_GetReply(m.get());
    if (reply == nullptr || *reply == '\0') {  // nobody to answer
      invalid_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const int size = natsMsg_GetDataLength(m.get());
    if (size < 0 || static_cast<std::size_t>(size) > options_.max_payload) {
      invalid_.fetch_add(1, std::memory_order_relaxed);
      answer(reply, wire::invalid, {}, {{wire::message_header, "payload too large"}});
      return;
    }
    std::optional<T> value;
    try {
      value.emplace(Codec::decode(
          std::string_view(natsMsg_GetData(m.get()), static_cast<std::size_t>(size))));
    } catch (const std::exception& e) {
      invalid_.fetch_add(1, std::memory_order_relaxed);
      answer(reply, wire::invalid, {}, {{wire::message_header, e.what()}});
      return;
    }
    if (lease_lost_.load(std::memory_order_relaxed)) {  // another owner serves the key now
      answer(reply, wire::owner_gone, {}, {});
      return;
    }
    // A conditional set names the entry it was based on: another run's entry has moved on.
    const char* expected_owner = nullptr;
    const char* expected_text = nullptr;
    std::optional<std::uint64_t> expected;
    if (natsMsgHeader_Get(m.get(), wire::expected_version_header, &expected_text) == NATS_OK) {
      (void)natsMsgHeader_Get(m.get(), wire::expected_owner_header, &expected_owner);
      std::uint64_t v = 0;
      const std::string_view t = expected_text != nullptr ? expected_text : "";
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (expected_owner == nullptr || owner_tag_ != expected_owner || ec != std::errc() ||
          end != t.data() + t.size() || t.empty()) {
        answer(reply, wire::conflict, {}, {});
        return;
      }
      expected = v;
    }
    requests_served_.fetch_add(1, std::memory_order_relaxed);
    auto result = expected
                      ? setter_.set_if_for(*expected, std::move(*value), options_.set_timeout, stop)
                      : setter_.set_for(std::move(*value), options_.set_timeout, stop);
    switch (result.status()) {
      case set_status::accepted: {
        // The owner stored the value before answering, and the writer writes it (or a newer
        // value) soon. The requester is answered at once, told how to recognise the entries
        // that hold older values, so that it never shows one of those after this one.
        std::string body;
        try {
          body = Codec::encode(result.value());
        } catch (const std::exception&) {
        }
        const std::uint64_t version = result.version();
        if (version == 0) {  // the owner cannot tell which value it stored
          answer(reply, wire::accepted, body, {});
          return;
        }
        const std::string version_text = std::to_string(version);
        const std::uint64_t since = first_revision_.load(std::memory_order_acquire);
        if (since == 0) {  // nothing written yet: only this owner's later entries are known
          answer(reply, wire::accepted, body,
                 {{wire::owner_header, owner_tag_.c_str()},
                  {wire::version_header, version_text.c_str()}});
          return;
        }
        const std::string since_text = std::to_string(since);
        answer(reply, wire::accepted, body,
               {{wire::owner_header, owner_tag_.c_str()},
                {wire::version_header, version_text.c_str()},
                {wire::since_revision_header, since_text.c_str()}});
        return;
      }
      case set_status::rejected: {
        const std::string code = std::to_string(result.error().value());
        answer(reply, wire::rejected, {},
               {{wire::error_header, code.c_str()},
                {wire::category_header, result.error().category().name()},
                {wire::message_header, result.message().c_str()}});
        return;
      }
      case set_status::dropped:
        answer(reply, wire::dropped, {}, {});
        return;
      case set_status::timeout:
        answer(reply, wire::timeout, {}, {});
        return;
      case set_status::conflict:
        answer(reply, wire::conflict, {}, {});
        return;
      case set_status::owner_gone:
      case set_status::stopped:  // this exporter is going away with the request
      case set_status::disconnected:
        answer(reply, wire::owner_gone, {}, {});
        return;
    }
  }

  struct header {
    const char* name;
    const char* value;
  };

  // Best effort: if the reply cannot be sent the requester's own timeout answers it.
  void answer(const char* reply, std::string_view status, std::string_view body,
              std::initializer_list<header> headers) {
    natsMsg* raw = nullptr;
    if (natsMsg_Create(&raw, reply, nullptr, body.data(), static_cast<int>(body.size())) !=
        NATS_OK) {
      return;
    }
    message m(raw);
    const std::string s(status);
    natsMsgHeader_Set(raw, wire::status_header, s.c_str());
    for (const header& h : headers) {
      // Header values are single lines.
      std::string v(h.value);
      for (char& c : v) {
        if (c == '\r' || c == '\n') c = ' ';
      }
      natsMsgHeader_Set(raw, h.name, v.c_str());
    }
    natsConnection_PublishMsg(connection_.native(), raw);
  }

  Connection connection_;  // requests and answers
  // Writes go through a connection of their own: on a shared one an answer waited for the
  // client's and the server's handling of the bucket write sent just before it (measured: a
  // bare set request was answered about 40 us sooner with two).
  Connection write_connection_;
  KeyValue kv_;
  export_options options_;
  const std::string owner_tag_ = make_owner_tag();
  Lease lease_;             // writer thread only, once constructed
  std::string fence_text_;  // writer thread only: the fence header's value
  std::atomic<std::uint64_t> fence_{lease_.fence()};
  std::atomic<bool> lease_lost_{false};
  // What lease() shows; its owner is used by the constructor, then by the writer thread.
  store_pair<lease_status> lease_store_ = make_store<lease_status>(lease_status::held);
  Owner<lease_status> lease_owner_ = std::move(lease_store_.owner);
  GetSubscriber<lease_status> lease_view_ = lease_store_.store;
  std::atomic<std::uint64_t> lease_renewals_{0};
  GetSubscriber<T> view_;
  Setter<T> setter_;
  std::stop_source stopping_;  // the exporter is going away
  MessageSubscription subscription_;
  Subscription<T> updates_;
  // Writer thread only:
  bool dirty_ = false;                 // the bucket lacks the latest value
  std::uint64_t written_version_ = 0;  // the store version of the last write
  std::uint64_t known_revision_ = 0;   // the key's last revision known (0: none)
  // Conditional writes refused while the lease is still this exporter's before a write counts
  // as failed (and is tried again after retry_interval).
  static constexpr int max_write_attempts = 3;
  std::atomic<std::uint64_t> first_revision_{0};  // of this exporter's first write (0: none yet)
  std::atomic<std::uint64_t> last_revision_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> write_failures_{0};
  std::atomic<std::uint64_t> requests_served_{0};
  std::atomic<std::uint64_t> invalid_{0};
  std::atomic<std::uint64_t> buckets_made_{0};
  Channel<bool> writer_done_{1};  // the writer thread has made its final write
  std::jthread writer_;           // last: starts after, and stops before, everything it uses
};

}  // namespace custody::nats
