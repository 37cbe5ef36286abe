#pragma once
// custody::nats::KeyWatch: the entries of one key of a bucket, as they are written, starting
// with the newest, over a JetStream consumer that says when it is lost.
//
// Why not the client's own watcher or JetStream subscription: ending those deletes their
// consumer with a request that waits up to the JetStream timeout (2 s) during an outage, and
// the client's key-value watcher recreates its consumer on a thread of its own. Here the
// consumer is asked for with a plain request whose answer, like the entries and heartbeats,
// arrives on plain subscriptions: interrupting them is immediate, and the server removes the
// consumer by itself once nobody listens (an ephemeral consumer's inactivity threshold).

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "connection.hpp"
#include "error.hpp"
#include "handles.hpp"

namespace custody::nats {

/// What a KeyWatch follows, and how it tells it is lost.
struct key_watch_options {
  std::string bucket;  ///< the bucket
  std::string key;     ///< the key
  /// The server sends a heartbeat when it has had nothing to send for this long (at least
  /// 100 ms); two intervals without a heartbeat or an entry and the watch counts as lost.
  std::chrono::milliseconds heartbeat{1000};
  /// How long the server may take to create the consumer.
  std::chrono::milliseconds create_timeout{2000};
  /// 0: start with the key's newest entry. Otherwise start with the first entry after this
  /// revision, so that nothing written since it is skipped.
  std::uint64_t after_revision = 0;
};

/// One watch of a key: created, it delivers the key's newest entry (or every entry after
/// `after_revision`) and every later one, in order. Move-only. next() is for one thread;
/// interrupt() may be called from any thread while the watch lives.
class KeyWatch {
 public:
  /// Subscribes to a fresh inbox and asks the server for a consumer delivering there. Throws
  /// error when the subscription or the request cannot be sent (disconnected, say); a refusal
  /// by the server (no such bucket) shows as next() returning lost.
  KeyWatch(const Connection& connection, key_watch_options options)
      : connection_(connection), options_(std::move(options)) {
    natsInbox* inbox = nullptr;
    detail::check(natsInbox_Create(&inbox), "creating a watch inbox");
    const std::string prefix = inbox;
    natsInbox_Destroy(inbox);
    deliver_ = prefix + ".d";
    created_reply_ = prefix + ".c";
    const std::string doing = "watching " + options_.bucket + "/" + options_.key;
    // Two subscriptions of literal subjects: with one wildcard subscription for both, the
    // server (2.9) created the consumer and delivered nothing to it.
    natsSubscription* raw = nullptr;
    detail::check(natsConnection_SubscribeSync(&raw, connection.native(), deliver_.c_str()), doing);
    sub_.reset(raw);
    raw = nullptr;
    detail::check(natsConnection_SubscribeSync(&raw, connection.native(), created_reply_.c_str()),
                  doing);
    created_sub_.reset(raw);
    const std::string request = create_request();
    detail::check(
        natsConnection_PublishRequest(
            connection.native(), ("$JS.API.CONSUMER.CREATE.KV_" + options_.bucket).c_str(),
            created_reply_.c_str(), request.data(), static_cast<int>(request.size())),
        doing);
  }

  /// How next() ended.
  enum class outcome {
    entry,        ///< an entry arrived (the message given)
    created,      ///< the server created the consumer (once; pending() says what it holds)
    lost,         ///< the server refused the consumer, or heartbeats stopped: make a new watch
    interrupted,  ///< interrupt() was called, or the subscription failed
    idle,         ///< the deadline given to next() passed first
  };

  /// Waits for the next entry (a put, a delete or a purge of the key); heartbeats and the
  /// server's answer to the creation are handled here. Returns lost when no heartbeat or entry
  /// came for two heartbeat intervals (the consumer is gone, or the link is dead), or when the
  /// consumer was refused or not created within create_timeout; idle once `deadline` passed
  /// without any of these (the watch goes on).
  outcome next(message& out, std::chrono::steady_clock::time_point deadline =
                                 std::chrono::steady_clock::time_point::max()) {
    if (!created_) {
      natsMsg* raw = nullptr;
      const natsStatus s =
          natsSubscription_NextMsg(&raw, created_sub_.get(), options_.create_timeout.count());
      if (s == NATS_TIMEOUT) return outcome::lost;
      if (s != NATS_OK) return outcome::interrupted;
      const message answer(raw);
      if (!accepted(raw)) return outcome::lost;
      created_ = true;
      heard_ = std::chrono::steady_clock::now();
      return outcome::created;
    }
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      const auto lost_at = heard_ + 2 * options_.heartbeat;
      if (now >= lost_at) return outcome::lost;
      if (now >= deadline) return outcome::idle;
      const auto wait =
          std::chrono::ceil<std::chrono::milliseconds>(std::min(lost_at, deadline) - now);
      natsMsg* raw = nullptr;
      const natsStatus s = natsSubscription_NextMsg(&raw, sub_.get(), wait.count());
      if (s == NATS_TIMEOUT) continue;  // the loop tells which time ran out
      if (s != NATS_OK) return outcome::interrupted;
      heard_ = std::chrono::steady_clock::now();
      message m(raw);
      const char* status = nullptr;
      if (natsMsgHeader_Get(raw, "Status", &status) == NATS_OK && status != nullptr) {
        // 100: an idle heartbeat (or a flow control request, not asked for); anything else
        // (409 consumer deleted, ...) ends this consumer.
        if (std::string_view(status) == "100") continue;
        return outcome::lost;
      }
      out = std::move(m);
      return outcome::entry;
    }
  }

  /// How many entries the consumer had to deliver when it was created (after next() returned
  /// created): 0 when the key has none.
  std::uint64_t pending() const noexcept { return pending_; }

  /// Makes next() return interrupted now or at its next call. Thread-safe.
  void interrupt() noexcept {
    natsSubscription_Unsubscribe(created_sub_.get());
    natsSubscription_Unsubscribe(sub_.get());
  }

 private:
  // An ephemeral push consumer of the key's subject, starting with its newest entry (or the
  // first after `after_revision`), without acknowledgements, with idle heartbeats.
  std::string create_request() const {
    const auto ns = [](std::chrono::milliseconds d) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    };
    nlohmann::json config = {
        {"deliver_subject", deliver_},
        {"deliver_policy", options_.after_revision == 0 ? "last_per_subject" : "by_start_sequence"},
        {"ack_policy", "none"},
        {"replay_policy", "instant"},
        {"filter_subject", "$KV." + options_.bucket + "." + options_.key},
        {"idle_heartbeat", ns(options_.heartbeat)},
        {"mem_storage", true},
    };
    if (options_.after_revision != 0) config["opt_start_seq"] = options_.after_revision + 1;
    return nlohmann::json{{"stream_name", "KV_" + options_.bucket}, {"config", config}}.dump();
  }

  // The server's answer to the creation: a consumer, or an error (no such stream, ...).
  bool accepted(natsMsg* m) {
    if (natsMsg_IsNoResponders(m)) return false;  // JetStream not ready
    const int size = natsMsg_GetDataLength(m);
    const auto answer = nlohmann::json::parse(
        std::string_view(natsMsg_GetData(m), size > 0 ? static_cast<std::size_t>(size) : 0),
        nullptr, false);
    if (!answer.is_object() || answer.contains("error") || !answer.contains("name")) return false;
    const auto n = answer.find("num_pending");
    pending_ = n != answer.end() && n->is_number_unsigned() ? n->get<std::uint64_t>() : 1;
    return true;
  }

  struct destroyer {
    void operator()(natsSubscription* s) const noexcept { natsSubscription_Destroy(s); }
  };

  Connection connection_;  // the subscription needs it
  key_watch_options options_;
  std::string deliver_;
  std::string created_reply_;
  std::unique_ptr<natsSubscription, destroyer> sub_;          // entries and heartbeats
  std::unique_ptr<natsSubscription, destroyer> created_sub_;  // the answer to the creation
  bool created_ = false;                                      // the server created the consumer
  std::chrono::steady_clock::time_point heard_;               // the last message from the server
  std::uint64_t pending_ = 0;                                 // what it had to deliver then
};

}  // namespace custody::nats
