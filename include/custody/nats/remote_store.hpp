#pragma once
// The consumers' side of a store over NATS: custody::nats::RemoteStore gives the same views as
// a local store (Getter, Setter, Subscriber, ...), so a task written against Getter<T> runs
// unchanged against a store owned by another process or machine.
//
// How: a local mirror store. A watch thread publishes into the mirror every value a key-value
// watch delivers (revisions only go forward); the mirror's set requests are published as NATS
// requests from the setter's own thread, and each is answered with the remote owner's answer.
// So get() is local and never waits for the network, and subscribers get the local policies.

#include <nats/nats.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "../channel.hpp"
#include "../detail/mutex.hpp"
#include "../detail/thread_annotations.hpp"
#include "../select.hpp"
#include "../store.hpp"
#include "codec.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "handles.hpp"
#include "key_value.hpp"
#include "key_watch.hpp"
#include "lease.hpp"
#include "wire.hpp"

namespace custody::nats {

/// Which store to follow, and how.
struct remote_options {
  bucket_options bucket;  ///< the bucket the owner's exporter writes (created if missing)
  std::string key;        ///< the key it writes
  /// The subject of set requests; empty: wire::request_subject(bucket, key).
  std::string request_subject;
  /// A set() gets its answer within this long, whatever its own deadline: after it, timeout.
  std::chrono::milliseconds request_timeout{5000};
  /// Larger values in the bucket are skipped and counted.
  std::size_t max_payload = 1 << 20;
  /// The watch's heartbeat (at least 100 ms): when neither a heartbeat nor a value came for
  /// two of these (the server lost the watch's consumer, the server the watch was on died, or
  /// the link is dead), the watch is made again, starting with the newest value.
  std::chrono::milliseconds heartbeat{1000};
  /// While a watch cannot be made (disconnected, JetStream or the bucket not ready), how often
  /// it is tried again.
  std::chrono::milliseconds retry_interval{250};
};

/// What a remote store has seen.
struct remote_stats {
  std::uint64_t revision = 0;         ///< the bucket revision get() currently returns (0: none yet)
  std::uint64_t updates = 0;          ///< values received from the bucket
  std::uint64_t skipped = 0;          ///< entries that could not be decoded (or were too large)
  std::uint64_t replies_ignored = 0;  ///< replies no request waited for, or malformed
  std::uint64_t watches_ended = 0;    ///< watches lost or interrupted, and made again
  /// Times the bucket was found made again (its revisions started over: the server lost its
  /// state), so the mirror started over with its newest value.
  std::uint64_t buckets_made_again = 0;
  /// Entries ignored for want of the current lease's fencing token (written by anyone but
  /// the owner holding the key's lease).
  std::uint64_t unfenced = 0;
};

/// What a remote store knows of the owner, from the key's lease (wire.hpp).
enum class owner_status {
  unknown,     ///< no lease seen: no owner took one, or it has not been read yet
  alive,       ///< the lease was renewed within its ttl
  owner_lost,  ///< the lease was released, or not renewed within its ttl: no owner writes
};

/// A store owned elsewhere, followed over NATS. Non-movable (its threads refer to it); hand out
/// its views, which stay valid after it is gone (the store then reads as closed, owner gone).
///
/// Views behave as a local store's, with these differences:
/// - get() returns the newest value received; while disconnected it may be stale by up to
///   stale_for(). It never waits for the network.
/// - set() is a request to the remote owner, answered to that caller alone. accepted: get()
///   already returns the stored value or a newer one (the answer tells which bucket entries
///   hold older values, see wire.hpp; those are never shown after it) — when the owner stored it
///   with Owner::accept; after a bare SetRequest::accept (a joint change, say) get() catches up
///   once the bucket delivers the value. owner_gone: no owner serves the store ("no
///   responders", and no live lease on the key).
///   disconnected: the connection was down when the request was sent, or went down before the
///   answer came; or nothing answered while the owner's lease is live (the owner's own link is
///   down, as while it fails over to another server of a cluster): ask again. Every set() is
///   answered within remote_options::request_timeout.
/// - set_if(version, value), with version from this store's get_versioned(): the request
///   names the bucket entry the mirror's value at that version came from (wire.hpp); the
///   owner stores the value only while its store is still at that entry's version. conflict:
///   the owner's value moved on, the entry is not the owner's (or the value came from no
///   exporter's entry), or the mirror had already moved on (answered at once, nothing sent).
/// - One owner: once the key has a lease (an Exporter holds one, wire.hpp), only entries that
///   carry the current lease's fencing token are applied; any other (a forged one, one of an
///   owner whose lease was taken over) is ignored, and counted in stats().unfenced when the
///   watch delivers it (a watch made again starts at the key's newest entry, so the entries
///   before it are never seen). While no lease was ever seen, every entry is applied.
/// - subscribe(policy) sees every value the watch delivers, under the chosen policy. Values
///   the remote owner published while this side was disconnected, or faster than the bucket
///   stored them, arrive as the newest one only.
///
/// Thread-safety: the views are used from any threads; stats() and stale_for() too.
template <class T, class Codec = json_codec<T>>
requires codec_for<Codec, T>
class RemoteStore {
 public:
  /// Opens the bucket (creating it if missing), reads the current value (or starts from
  /// `initial` when the key has none yet) and starts following the key. Throws error.
  RemoteStore(const Connection& connection, remote_options options, T initial)
      : RemoteStore(connection, std::move(options), make_store<T>(std::move(initial))) {}
  /// As above, starting from T{} when the key has no value yet.
  RemoteStore(const Connection& connection,
              remote_options options) requires std::default_initializable<T>
      : RemoteStore(connection, std::move(options), T{}) {}

  RemoteStore(const RemoteStore&) = delete;
  RemoteStore& operator=(const RemoteStore&) = delete;

  /// Stops following: waiting set() callers get owner_gone, subscribers drain and then see
  /// closed, get() keeps the last value. Returns at once even while a full policy::block
  /// subscriber holds a value back or a set() is in flight.
  ~RemoteStore() {
    // First the stop, which ends a publish that a full policy::block subscriber holds back;
    // then the gate, which waits only for forward() calls (none of them waits for a publish).
    stopping_.request_stop();
    bridge_thread_.request_stop();
    watch_thread_.request_stop();
    lease_thread_.request_stop();
    interrupt_watch();
    {
      std::unique_lock lock(gate_->mutex);  // no setter is forwarding a request any more
      gate_->store = nullptr;
    }
    if (bridge_thread_.joinable()) bridge_thread_.join();
    if (watch_thread_.joinable()) watch_thread_.join();
    if (lease_thread_.joinable()) lease_thread_.join();
    inbox_subscription_.unsubscribe();  // no answer comes in any more
    answer_all(set_status::owner_gone);
    std::lock_guard lock(mirror_mutex_);
    mirror_owner_.close();
  }

  /// A view with every consumer capability; narrow it as for a local store.
  Store<T> store() const { return mirror_view_; }
  /// Any view of the store, as store() narrowed.
  template <unsigned Caps>
  operator StoreView<T, Caps>() const {
    return mirror_view_;
  }

  /// How long get() may have been stale: zero while connected and the watch has caught up
  /// with the bucket; while disconnected, the time since the connection was lost; after a
  /// reconnection, from then until the new watch has delivered the key's newest value (or
  /// found it has none); and while a lost watch is being made again, since it was lost. Not
  /// counted: the two heartbeats before a silently lost watch shows (remote_options). Once the
  /// key has a lease, also while the owner's heartbeat (the lease's renewal) is missing: when
  /// no renewal came for two renewal intervals, or the lease was released, the time since the
  /// last one, if that is longer.
  std::chrono::steady_clock::duration stale_for() const {
    return std::max(link_stale_for(), owner_silent_for());
  }

  /// What is known of the owner: a store whose value changes as its lease is renewed, expires
  /// or is released, so a task can wait for a change (subscribe) or read it (get). The change
  /// to owner_lost comes within a few milliseconds of the lease's ttl without renewal; a lease
  /// that was already stale when this store started counts as renewed then.
  GetSubscriber<owner_status> owner() const { return owner_view_; }

  /// Counters and the current revision.
  remote_stats stats() const {
    return remote_stats{revision_.load(std::memory_order_acquire),
                        updates_.load(std::memory_order_relaxed),
                        skipped_.load(std::memory_order_relaxed),
                        ignored_.load(std::memory_order_relaxed),
                        watches_.load(std::memory_order_relaxed),
                        buckets_made_again_.load(std::memory_order_relaxed),
                        unfenced_.load(std::memory_order_relaxed)};
  }

 private:
  // How long the link or the watch have been out of step (see stale_for()).
  std::chrono::steady_clock::duration link_stale_for() const {
    const auto now = std::chrono::steady_clock::now();
    const connection_state s = connection_.state().get();
    if (!s.connected) return now - s.since;
    if (synced_after_.load(std::memory_order_acquire) != s.reconnects) {
      return s.reconnects == 0 ? now - created_ : now - s.since;
    }
    const std::int64_t since = unsynced_since_.load(std::memory_order_acquire);
    if (since == 0) return {};
    return now - at(since);
  }

  // How long the owner's heartbeat has been missing, when it is late or the lease released.
  std::chrono::steady_clock::duration owner_silent_for() const {
    const std::int64_t heard = lease_heard_.load(std::memory_order_acquire);
    if (heard == 0) return {};
    const auto silent = std::chrono::steady_clock::now() - at(heard);
    const auto renew = std::chrono::milliseconds(lease_renew_ms_.load(std::memory_order_relaxed));
    if (lease_released_.load(std::memory_order_acquire) || silent > 2 * renew) return silent;
    return {};
  }

  static std::chrono::steady_clock::time_point at(std::int64_t ticks) {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(ticks));
  }
  static std::int64_t ticks(std::chrono::steady_clock::time_point t) {
    return static_cast<std::int64_t>(t.time_since_epoch().count());
  }

  // Which value of which owner an entry or an answer holds (wire.hpp).
  struct owner_version {
    std::string owner;
    std::uint64_t version;
  };
  struct entry {
    std::uint64_t revision;
    std::optional<owner_version> tag;    // nothing: not written by an exporter
    std::optional<std::uint64_t> fence;  // nothing: written without a lease
    T value;
  };
  struct pending {
    SetRequest<T> request;
    std::chrono::steady_clock::time_point deadline;
  };

  RemoteStore(const Connection& connection, remote_options options, store_pair<T> mirror)
      : connection_(connection),
        kv_(connection, options.bucket),
        options_(std::move(options)),
        subject_(options_.request_subject.empty()
                     ? wire::request_subject(options_.bucket.name, options_.key)
                     : options_.request_subject),
        mirror_owner_(std::move(mirror.owner)),
        mirror_view_(std::move(mirror.store)) {
    // The value now. The first watch, started on its own thread, begins right after this
    // revision, so no entry written since is skipped; a watch made again later begins with the
    // newest value then (revisions tell the overlap apart).
    refresh_fence();
    {
      std::lock_guard lock(mirror_mutex_);
      mirror_version_ = mirror_view_.get_versioned().second;
      {
        std::lock_guard basis_lock(basis_mutex_);
        basis_version_ = mirror_version_;  // the starting value: from no entry
      }
      if (auto current = kv_.last(options_.key)) {
        first_watch_after_ = current->revision;
        natsMsg* m = current->entry.get();
        const char* operation = nullptr;
        const bool put = natsMsgHeader_Get(m, "KV-Operation", &operation) != NATS_OK;
        const int size = natsMsg_GetDataLength(m);
        std::optional<T> v;
        if (put && fenced(fence_of(m))) {
          v = decode(size > 0 ? std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(size))
                              : std::string_view());
        }
        if (v) {
          show(std::move(*v), tag_of(m));
          revision_.store(current->revision, std::memory_order_release);
        }
      }
      // A full policy::block subscriber holds publishing back until the store goes away.
      mirror_owner_.set_stop_token(stopping_.get_token());
    }
    natsInbox* inbox = nullptr;
    detail::check(natsInbox_Create(&inbox), "creating a reply inbox");
    inbox_ = inbox;
    natsInbox_Destroy(inbox);
    inbox_subscription_ = MessageSubscription(connection_, inbox_ + ".*",
                                              [this](message m) { settle(std::move(m)); });
    // Set requests go out from the setters' threads while this store lives.
    gate_->store = this;
    {
      std::lock_guard lock(mirror_mutex_);
      mirror_owner_.forward_requests([gate = gate_](SetRequest<T>&& r) {
        std::shared_lock lock(gate->mutex);
        if (gate->store != nullptr) return gate->store->forward(std::move(r));
        (void)std::move(r).answer(set_status::owner_gone);
      });
    }
    show_owner();
    watch_thread_ = std::jthread([this](std::stop_token stop) { watch(stop); });
    lease_thread_ = std::jthread([this](std::stop_token stop) { follow_lease(stop); });
    bridge_thread_ = std::jthread([this](std::stop_token stop) { bridge(stop); });
  }

  std::optional<T> decode(std::string_view bytes) {
    if (bytes.size() > options_.max_payload) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    try {
      return std::optional<T>(Codec::decode(bytes));
    } catch (const std::exception&) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
  }

  // --- the watch thread: bucket entries into the mirror ---------------------------------

  // The value of a put; nothing for deletes and purges (they leave the last value) and for
  // entries that do not decode (counted).
  std::optional<entry> to_entry(natsMsg* m) {
    const char* operation = nullptr;
    if (natsMsgHeader_Get(m, "KV-Operation", &operation) == NATS_OK) return std::nullopt;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    const std::uint64_t revision = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    const int size = natsMsg_GetDataLength(m);
    auto v = decode(size > 0 ? std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(size))
                             : std::string_view());
    if (!v) return std::nullopt;
    return entry{revision, tag_of(m), fence_of(m), std::move(*v)};
  }

  static std::optional<std::uint64_t> fence_of(natsMsg* m) {
    return parse<std::uint64_t>(header(m, wire::fence_header));
  }

  // The fencing token of the key's lease, read again (a deleted lease leaves the last one).
  void refresh_fence() {
    try {
      if (auto l = kv_.get(lease_key_)) {
        if (auto r = lease_record::parse(l->bytes, l->revision)) heard_from(*r);
      }
    } catch (const error&) {  // not now: the next entry that needs it asks again
    }
  }

  // The owner renewed (or took) its lease `r` just now.
  void heard_from(const lease_record& r) {
    fence_.store(r.fence, std::memory_order_release);
    lease_ttl_ms_.store(r.ttl.count(), std::memory_order_relaxed);
    lease_renew_ms_.store(r.renew.count(), std::memory_order_relaxed);
    lease_heard_.store(ticks(std::chrono::steady_clock::now()), std::memory_order_release);
    lease_released_.store(false, std::memory_order_release);
  }

  // An entry with the fence `f` may be applied: it carries the current lease's token, or no
  // lease has been seen. Another token is checked against the lease as it is now (an owner
  // took it over, or took it anew in a bucket made again).
  bool fenced(std::optional<std::uint64_t> f) {
    // Read again also while the owner's heartbeat is missing: an entry of its token then
    // may come from a new lease with the same token, in a bucket made again, and a fresh
    // lease says the owner is back before the lease's watch does.
    if (f && *f == fence_.load(std::memory_order_acquire) &&
        owner_silent_for() == std::chrono::steady_clock::duration::zero()) {
      return true;
    }
    refresh_fence();
    const std::uint64_t current = fence_.load(std::memory_order_acquire);
    if (current == 0) return true;
    if (f && *f == current) return true;
    unfenced_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  static std::optional<owner_version> tag_of(natsMsg* m) {
    const std::string_view owner = header(m, wire::owner_header);
    const auto version = parse<std::uint64_t>(header(m, wire::version_header));
    if (owner.empty() || !version) return std::nullopt;
    return owner_version{std::string(owner), *version};
  }

  // Not reachable now: waits until the connection changes, or a little longer should
  // JetStream or the bucket not be ready yet, or a stop. False once the connection closed for
  // good.
  bool wait_to_retry(Subscription<connection_state>& link, const std::stop_token& stop) {
    bool linked = true;
    select(on_recv(
               link, [](connection_state&&) {}, [&] { linked = false; }),
           on_timeout(options_.retry_interval), on_stop(stop));
    return linked;
  }

  // Watches the key until stopped: a watch that is lost (the server lost its consumer, the
  // link died) or interrupted (the bridge saw a reconnection) is made again, starting with
  // the newest value.
  void watch(std::stop_token stop) {
    auto link = connection_.state().subscribe(policy::latest());
    bool linked = true;  // until the connection closes for good
    bool pause = false;  // the last watch could not be made, or failed at once
    while (!stop.stop_requested() && linked) {
      if (pause || !connection_.connected()) {
        linked = wait_to_retry(link, stop);
        pause = false;
        continue;
      }
      const std::uint64_t reconnects = connection_.state().get().reconnects;
      std::optional<KeyWatch> w;
      key_watch_options watching{options_.bucket.name, options_.key, options_.heartbeat,
                                 options_.bucket.timeout};
      watching.after_revision = first_watch_after_;
      try {
        w.emplace(connection_, watching);
      } catch (const error&) {
        pause = true;
        continue;
      }
      first_watch_after_ = 0;
      {
        std::lock_guard lock(watcher_mutex_);
        watcher_ = &*w;
      }
      // A stop (or reconnection) that came before watcher_ was set.
      if (stop.stop_requested()) w->interrupt();
      pause = !follow(*w, reconnects);
      out_of_sync();
      watches_.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(watcher_mutex_);
      watcher_ = nullptr;
    }
  }

  // Applies the watch's entries until it is lost (false if no entry came) or interrupted.
  // `reconnects`: the connection's count when the watch was made.
  bool follow(KeyWatch& w, std::uint64_t reconnects) {
    bool delivered = false;
    for (;;) {
      message m;
      const KeyWatch::outcome o = w.next(m);
      if (o == KeyWatch::outcome::interrupted) return true;
      if (o == KeyWatch::outcome::lost) return delivered;
      if (o == KeyWatch::outcome::created) {
        if (w.pending() == 0) in_sync(reconnects);  // the key has no value: nothing to wait for
        continue;
      }
      // Before the value reaches the mirror: once get() shows it, stale_for() says 0.
      if (!delivered) in_sync(reconnects);
      if (auto e = to_entry(m.get()); e && fenced(e->fence)) apply(std::move(*e), !delivered);
      delivered = true;
    }
  }

  // The watch made after the connection's `reconnects`-th reconnection has caught up.
  void in_sync(std::uint64_t reconnects) {
    synced_after_.store(reconnects, std::memory_order_release);
    unsynced_since_.store(0, std::memory_order_release);
  }

  // The watch ended: values may be missed from now until a new one has caught up.
  void out_of_sync() {
    std::int64_t none = 0;
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    unsynced_since_.compare_exchange_strong(none, static_cast<std::int64_t>(now),
                                            std::memory_order_acq_rel);
  }

  void interrupt_watch() {
    std::lock_guard lock(watcher_mutex_);
    if (watcher_ != nullptr) watcher_->interrupt();
    if (lease_watcher_ != nullptr) lease_watcher_->interrupt();
  }

  // --- the lease thread: the owner's heartbeat ------------------------------------------

  // Follows the key's lease until stopped, made again as the value's watch is: each renewal
  // is the owner's heartbeat; a release, or no renewal within the lease's ttl, is the owner
  // lost.
  void follow_lease(std::stop_token stop) {
    auto link = connection_.state().subscribe(policy::latest());
    bool linked = true;
    bool pause = false;
    while (!stop.stop_requested() && linked) {
      if (pause || !connection_.connected()) {
        linked = wait_to_retry(link, stop);
        pause = false;
        continue;
      }
      std::optional<KeyWatch> w;
      try {
        w.emplace(connection_, key_watch_options{options_.bucket.name, lease_key_,
                                                 options_.heartbeat, options_.bucket.timeout});
      } catch (const error&) {
        pause = true;
        continue;
      }
      {
        std::lock_guard lock(watcher_mutex_);
        lease_watcher_ = &*w;
      }
      if (stop.stop_requested()) w->interrupt();
      for (;;) {
        message m;
        // A deadline only while the owner shows alive: once lost, only a renewal changes it.
        const KeyWatch::outcome o = w->next(m, shown_owner_ == owner_status::alive
                                                   ? lease_expiry()
                                                   : std::chrono::steady_clock::time_point::max());
        if (o == KeyWatch::outcome::interrupted) break;
        if (o == KeyWatch::outcome::lost) {
          pause = true;
          break;
        }
        if (o == KeyWatch::outcome::entry) note_lease(m.get());
        show_owner();
      }
      std::lock_guard lock(watcher_mutex_);
      lease_watcher_ = nullptr;
    }
  }

  // The owner's lease was heard of, not released, and not expired.
  bool lease_live() const {
    return lease_heard_.load(std::memory_order_acquire) != 0 &&
           !lease_released_.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < lease_expiry();
  }

  // When the lease expires unless renewed (never, while none is known or it is released).
  std::chrono::steady_clock::time_point lease_expiry() const {
    const std::int64_t heard = lease_heard_.load(std::memory_order_acquire);
    if (heard == 0 || lease_released_.load(std::memory_order_acquire)) {
      return std::chrono::steady_clock::time_point::max();
    }
    return at(heard) + std::chrono::milliseconds(lease_ttl_ms_.load(std::memory_order_relaxed));
  }

  void note_lease(natsMsg* m) {
    const char* operation = nullptr;
    if (natsMsgHeader_Get(m, "KV-Operation", &operation) == NATS_OK) {  // released
      lease_released_.store(true, std::memory_order_release);
      return;
    }
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) return;
    const std::uint64_t revision = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    const int size = natsMsg_GetDataLength(m);
    const auto r = lease_record::parse(
        size > 0 ? std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(size))
                 : std::string_view(),
        revision);
    if (r) heard_from(*r);
  }

  // Publishes what is known of the owner, when it changed (lease thread only).
  void show_owner() {
    owner_status now = owner_status::unknown;
    if (lease_heard_.load(std::memory_order_acquire) != 0) {
      now = lease_released_.load(std::memory_order_acquire) ||
                    std::chrono::steady_clock::now() >= lease_expiry()
                ? owner_status::owner_lost
                : owner_status::alive;
    }
    if (now == shown_owner_) return;
    shown_owner_ = now;
    (void)owner_owner_.publish(now);
  }

  // --- requests, answers and the bridge thread: the mirror's owner ------------------------
  //
  // Setters' threads forward their requests; the watch thread applies the bucket's entries;
  // answers are settled on the client's delivery thread for the inbox; the bridge thread
  // follows the connection and expires requests nobody answered. Each without a further
  // thread hand-over. Two locks, never held together:
  // - pending_mutex_ guards the pending requests: held only to find, add or remove one, and
  //   to answer (which never blocks), so a setter's forward() never waits long;
  // - mirror_mutex_ serialises the mirror's owner, which one thread at a time may use: the
  //   watch thread and the inbox's thread hold it while they publish, which a full
  //   policy::block subscriber may hold back until the store goes away. No setter takes it.

  void bridge(std::stop_token stop) {
    auto link = connection_.state().subscribe(policy::latest());
    std::uint64_t reconnects = connection_.state().get().reconnects;
    bool running = true;
    bool linked = true;  // until the connection closes for good
    while (running) {
      const auto next_deadline = plan_expiry();
      select(on_recv(replan_, [](bool) {}),
             on_recv(
                 link,
                 [&](connection_state&& s) {
                   if (!s.connected) fail_pending();
                   if (s.reconnects != reconnects) {
                     reconnects = s.reconnects;
                     interrupt_watch();
                   }
                 },
                 [&] {
                   fail_pending();
                   linked = false;
                 })
                 .when(linked),
             on_deadline(next_deadline, [&] { expire(); })
                 .when(next_deadline != std::chrono::steady_clock::time_point::max()),
             on_stop(stop, [&] { running = false; }));
    }
  }

  void answer_all(set_status s) CUSTODY_EXCLUDES(pending_mutex_) {
    std::lock_guard lock(pending_mutex_);
    for (auto& [id, p] : pending_) (void)std::move(p.request).answer(s);
    pending_.clear();
  }

  // On the setter's thread (see forward_requests).
  void forward(SetRequest<T>&& r) {
    if (r.abandoned()) return;
    // A conditional set names the entry its value was based on; the owner compares versions
    // (and answers conflict for an entry that is not its own, or none: no owner says
    // "no responders").
    const auto expected = r.expected_version();
    basis based;
    if (expected) {
      based = basis_of(*expected);
      if (!based.current) {  // the mirror moved on already
        (void)std::move(r).answer(set_status::conflict);
        return;
      }
    }
    if (!connection_.connected()) {
      (void)std::move(r).answer(set_status::disconnected);
      return;
    }
    std::string bytes;
    try {
      bytes = Codec::encode(r.value());
    } catch (const std::exception& e) {
      std::move(r).reject(std::errc::invalid_argument, e.what());
      return;
    }
    const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed) + 1;
    const std::string reply = inbox_ + "." + std::to_string(id);
    natsMsg* raw = nullptr;
    if (natsMsg_Create(&raw, subject_.c_str(), reply.c_str(), bytes.data(),
                       static_cast<int>(bytes.size())) != NATS_OK) {
      (void)std::move(r).answer(set_status::disconnected);
      return;
    }
    message m(raw);
    if (expected) {
      const std::string version = std::to_string(based.tag ? based.tag->version : 0);
      const std::string owner = based.tag ? based.tag->owner : std::string();
      if (natsMsgHeader_Set(raw, wire::expected_owner_header, owner.c_str()) != NATS_OK ||
          natsMsgHeader_Set(raw, wire::expected_version_header, version.c_str()) != NATS_OK) {
        (void)std::move(r).answer(set_status::disconnected);
        return;
      }
    }
    {
      // Pending before it is sent: the answer may come back at once.
      std::lock_guard lock(pending_mutex_);
      const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
      pending_.emplace(id, pending{std::move(r), deadline});
      // The bridge sleeps until planned_: wake it only if this request expires earlier (so,
      // under a steady flow of requests, hardly ever).
      if (deadline < planned_) (void)replan_.try_send(true);
    }
    if (natsConnection_PublishMsg(connection_.native(), raw) != NATS_OK) {
      std::lock_guard lock(pending_mutex_);
      if (auto it = pending_.find(id); it != pending_.end()) {
        (void)std::move(it->second.request).answer(set_status::disconnected);
        pending_.erase(it);
      }
    }
  }

  // `newest`: the first entry of a watch, the key's newest then. Within one bucket that
  // revision is at least any revision seen of the key before, and the same revision is the
  // same entry; a lower one, or the same one written by another owner's run or at another
  // version, comes from a bucket made again (the server lost its state), whose revisions start
  // again at 1: compared with the old ones, its entries would be ignored, so the mirror starts
  // over with this one.
  bool from_new_bucket(const entry& e) const CUSTODY_REQUIRES(mirror_mutex_) {
    const std::uint64_t seen = revision_.load(std::memory_order_relaxed);
    if (e.revision < seen) return true;
    return e.revision == seen && e.tag && last_tag_ &&
           (e.tag->owner != last_tag_->owner || e.tag->version != last_tag_->version);
  }

  void apply(entry&& e, bool newest) CUSTODY_EXCLUDES(mirror_mutex_) {
    std::lock_guard lock(mirror_mutex_);
    if (newest && from_new_bucket(e)) {
      revision_.store(0, std::memory_order_release);
      older_below_ = 0;
      buckets_made_again_.fetch_add(1, std::memory_order_relaxed);
    }
    // Seen already, or older than a value an accepted answer brought.
    if (e.revision <= revision_.load(std::memory_order_relaxed) || e.revision < older_below_) {
      return;
    }
    if (e.tag && shown_ && e.tag->owner == shown_->owner && e.tag->version <= shown_->version) {
      if (e.tag->version < shown_->version) return;  // older than the value shown
      // The value shown, which an answer brought: subscribers must not get it twice.
      last_tag_ = e.tag;
      revision_.store(e.revision, std::memory_order_release);
      updates_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    last_tag_ = e.tag;
    revision_.store(e.revision, std::memory_order_release);
    updates_.fetch_add(1, std::memory_order_relaxed);
    shown_ = std::move(e.tag);
    show(std::move(e.value), shown_);
  }

  // Publishes `value` into the mirror (a stop, when shutting down, ends a held publish),
  // noting first which entry it comes from, so that a conditional set based on it can name
  // that entry (forward()).
  void show(T&& value, const std::optional<owner_version>& tag) CUSTODY_REQUIRES(mirror_mutex_) {
    {
      std::lock_guard lock(basis_mutex_);
      basis_version_ = mirror_version_ + 1;
      basis_tag_ = tag;
    }
    (void)mirror_owner_.publish(std::move(value));
    ++mirror_version_;
  }

  // What a conditional set based on the mirror's value at `version` names.
  struct basis {
    bool current = false;              // the mirror still shows that value
    std::optional<owner_version> tag;  // its entry's; nothing: from no exporter's entry
  };
  basis basis_of(std::uint64_t version) CUSTODY_EXCLUDES(basis_mutex_) {
    std::lock_guard lock(basis_mutex_);
    if (version != basis_version_) return {};
    return basis{true, basis_tag_};
  }

  static std::string_view header(natsMsg* m, const char* name) {
    const char* v = nullptr;
    if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return {};
    return v;
  }

  template <class Int>
  static std::optional<Int> parse(std::string_view s) {
    Int v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
  }

  // The request waiting for the answer `m`, taken out of the pending ones; nothing for a late
  // or duplicate answer (counted).
  std::optional<SetRequest<T>> claim(natsMsg* m) CUSTODY_EXCLUDES(pending_mutex_) {
    const std::string_view subject = natsMsg_GetSubject(m);
    const auto dot = subject.rfind('.');
    const auto id =
        parse<std::uint64_t>(subject.substr(dot == std::string_view::npos ? 0 : dot + 1));
    std::lock_guard lock(pending_mutex_);
    auto it = id ? pending_.find(*id) : pending_.end();
    if (it == pending_.end()) {
      ignored_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    std::optional<SetRequest<T>> r(std::move(it->second.request));
    pending_.erase(it);
    return r;
  }

  // An accepted answer's value: unless the mirror shows it or a newer one already, shown now,
  // and from here on the entries that hold older values are ignored (wire.hpp).
  void show_accepted(natsMsg* raw, const T& stored) CUSTODY_EXCLUDES(mirror_mutex_) {
    auto tag = tag_of(raw);
    if (!tag) return;
    std::lock_guard lock(mirror_mutex_);
    if (shown_ && shown_->owner == tag->owner && shown_->version >= tag->version) return;
    show(T(stored), tag);
    shown_ = std::move(tag);
    older_below_ = std::max(
        older_below_, parse<std::uint64_t>(header(raw, wire::since_revision_header)).value_or(0));
  }

  void settle(message m) {
    natsMsg* raw = m.get();
    std::optional<SetRequest<T>> claimed = claim(raw);
    if (!claimed) return;
    SetRequest<T>& r = *claimed;
    if (natsMsg_IsNoResponders(raw)) {
      // Nobody listens on the request subject. An owner whose lease is live is only cut off
      // (reconnecting, or failing over to another server): it has not gone.
      (void)std::move(r).answer(lease_live() ? set_status::disconnected : set_status::owner_gone);
      return;
    }
    const std::string_view status = header(raw, wire::status_header);
    if (status == wire::accepted) {
      const std::string_view body(natsMsg_GetData(raw),
                                  static_cast<std::size_t>(natsMsg_GetDataLength(raw)));
      std::optional<T> stored = decode(body);
      if (stored) show_accepted(raw, *stored);
      if (!stored) stored.emplace(r.value());  // the owner said what it stored; trust that
      (void)std::move(r).accept(std::move(*stored));
    } else if (status == wire::rejected) {
      const int code = parse<int>(header(raw, wire::error_header)).value_or(0);
      const std::string_view category = header(raw, wire::category_header);
      const std::error_category& cat = category == std::system_category().name()
                                           ? std::system_category()
                                           : std::generic_category();
      (void)std::move(r).reject(std::error_code(code, cat),
                                std::string(header(raw, wire::message_header)));
    } else if (status == wire::dropped) {
      (void)std::move(r).answer(set_status::dropped);
    } else if (status == wire::owner_gone) {
      (void)std::move(r).answer(set_status::owner_gone);
    } else if (status == wire::timeout) {
      (void)std::move(r).answer(set_status::timeout);
    } else if (status == wire::conflict) {
      (void)std::move(r).answer(set_status::conflict);
    } else if (status == wire::invalid) {
      (void)std::move(r).reject(std::errc::invalid_argument,
                                "the owner could not decode the request: " +
                                    std::string(header(raw, wire::message_header)));
    } else {
      ignored_.fetch_add(1, std::memory_order_relaxed);
      (void)std::move(r).reject(
          std::errc::protocol_error,
          "unrecognised reply from the owner (Custody-Status: \"" + std::string(status) + "\")");
    }
  }

  // The connection is down: no answer can come back any more.
  void fail_pending() { answer_all(set_status::disconnected); }

  // When the bridge next looks for expired requests: the earliest deadline, if any.
  std::chrono::steady_clock::time_point plan_expiry() CUSTODY_EXCLUDES(pending_mutex_) {
    std::lock_guard lock(pending_mutex_);
    planned_ = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, p] : pending_) planned_ = std::min(planned_, p.deadline);
    return planned_;
  }

  void expire() CUSTODY_EXCLUDES(pending_mutex_) {
    std::lock_guard lock(pending_mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      (void)std::move(it->second.request).answer(set_status::timeout);
      it = pending_.erase(it);
    }
  }

  Connection connection_;
  KeyValue kv_;
  remote_options options_;
  std::string subject_;
  std::string lease_key_ = wire::lease_key(options_.key);
  // The lease as last heard of: its fencing token (0: none seen), ttl, renewal interval, when
  // (steady_clock ticks; 0: never), and whether it was released since.
  std::atomic<std::uint64_t> fence_{0};
  std::atomic<std::int64_t> lease_ttl_ms_{0};
  std::atomic<std::int64_t> lease_renew_ms_{0};
  std::atomic<std::int64_t> lease_heard_{0};
  std::atomic<bool> lease_released_{false};
  // What is known of the owner, for owner(); its owner is the lease thread's.
  store_pair<owner_status> owner_store_ = make_store<owner_status>(owner_status::unknown);
  Owner<owner_status> owner_owner_ = std::move(owner_store_.owner);
  GetSubscriber<owner_status> owner_view_ = owner_store_.store;
  owner_status shown_owner_ = owner_status::unknown;
  // The mirror: a local store the views read; its owner is used under mirror_mutex_.
  custody::detail::mutex mirror_mutex_;
  Owner<T> mirror_owner_ CUSTODY_GUARDED_BY(mirror_mutex_);
  Store<T> mirror_view_;
  std::string inbox_;
  MessageSubscription inbox_subscription_;
  std::stop_source stopping_;  // the store is going away
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
  // The setters' way in: forward() while the store lives, owner_gone afterwards.
  struct forward_gate {
    std::shared_mutex mutex;
    RemoteStore* store = nullptr;
  };
  std::shared_ptr<forward_gate> gate_ = std::make_shared<forward_gate>();
  // The requests sent and not answered yet, and when the bridge next looks for expired ones.
  custody::detail::mutex pending_mutex_;
  std::map<std::uint64_t, pending> pending_ CUSTODY_GUARDED_BY(pending_mutex_);
  std::chrono::steady_clock::time_point planned_ CUSTODY_GUARDED_BY(pending_mutex_) =
      std::chrono::steady_clock::time_point::max();
  // The owner and version of the value the mirror shows, when known; entries below
  // older_below_ hold older values than one an accepted answer brought.
  std::optional<owner_version> shown_ CUSTODY_GUARDED_BY(mirror_mutex_);
  std::uint64_t older_below_ CUSTODY_GUARDED_BY(mirror_mutex_) = 0;
  // The tag of the last entry the watch delivered (at revision_).
  std::optional<owner_version> last_tag_ CUSTODY_GUARDED_BY(mirror_mutex_);
  // The mirror's version (it grows by one with each publish).
  std::uint64_t mirror_version_ CUSTODY_GUARDED_BY(mirror_mutex_) = 0;
  // The mirror's value for conditional sets: its version and the tag of its entry, written
  // just before it is published. A lock of its own, which setters take: never the mirror's.
  custody::detail::mutex basis_mutex_;
  std::uint64_t basis_version_ CUSTODY_GUARDED_BY(basis_mutex_) = 0;
  std::optional<owner_version> basis_tag_ CUSTODY_GUARDED_BY(basis_mutex_);
  std::atomic<std::uint64_t> next_id_{0};
  Channel<bool> replan_{1};  // a request expires before the bridge planned to look
  custody::detail::mutex watcher_mutex_;
  KeyWatch* watcher_ CUSTODY_GUARDED_BY(watcher_mutex_) = nullptr;  // to interrupt it
  KeyWatch* lease_watcher_ CUSTODY_GUARDED_BY(watcher_mutex_) = nullptr;
  std::atomic<std::uint64_t> watches_{0};  // watches ended (lost or interrupted)
  std::atomic<std::uint64_t> buckets_made_again_{0};
  std::atomic<std::uint64_t> unfenced_{0};
  // For stale_for(): the reconnection count whose watch caught up (none yet: the maximum), and
  // since when no watch has been caught up (steady_clock ticks; 0: one is).
  std::atomic<std::uint64_t> synced_after_{~std::uint64_t{0}};
  std::atomic<std::int64_t> unsynced_since_{0};
  std::atomic<std::uint64_t> revision_{0};
  // The revision the constructor read, where the first watch starts (0: none, or made already).
  // Written before the watch thread starts; only that thread uses it afterwards.
  std::uint64_t first_watch_after_ = 0;
  std::atomic<std::uint64_t> updates_{0};
  std::atomic<std::uint64_t> skipped_{0};
  std::atomic<std::uint64_t> ignored_{0};
  std::jthread watch_thread_;  // last: they start after, and stop before, what they use
  std::jthread lease_thread_;
  std::jthread bridge_thread_;
};

}  // namespace custody::nats
