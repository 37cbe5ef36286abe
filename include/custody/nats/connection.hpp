#pragma once
// custody::nats::Connection: one connection to a NATS server (or cluster), with the settings
// users need, reconnecting forever, and its state as a custody store so that tasks can wait on
// "connected again" in a select like on anything else.

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../channel.hpp"
#include "../store.hpp"
#include "error.hpp"
#include "handles.hpp"

namespace custody::nats {

/// Files for a TLS connection (PEM). The CA alone verifies the server; certificate and key
/// together also identify this client.
struct tls_options {
  std::string ca_file;    ///< trusted CA certificates; empty: the system's
  std::string cert_file;  ///< this client's certificate chain (with key_file)
  std::string key_file;   ///< this client's private key (with cert_file)
};

/// How to reach the server and who to be.
struct connection_options {
  /// Server URLs tried in turn ("nats://host:4222", "tls://host:4222").
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name;                ///< shown by the server's monitoring; empty: none
  std::string user;                ///< with password: user/password authentication
  std::string password;            ///< see user
  std::string token;               ///< token authentication (instead of user/password)
  std::optional<tls_options> tls;  ///< set: TLS is required
  /// How long the first connect may take per server.
  std::chrono::milliseconds connect_timeout{2000};
  /// The pause between reconnect attempts to one server. Short, so that a restarted server is
  /// found again quickly (the client's default is 2 s).
  std::chrono::milliseconds reconnect_wait{250};
  /// Reconnect attempts per server before giving up for good; negative: never give up (the
  /// client's default gives up after 60).
  int max_reconnects = -1;
};

/// The state of a connection, as its state() store holds it.
struct connection_state {
  bool connected = false;         ///< false while reconnecting, and once closed
  bool closed = false;            ///< closed for good: no more reconnects
  std::uint64_t disconnects = 0;  ///< times the connection was lost
  std::uint64_t reconnects = 0;   ///< times it came back
  /// When `connected` last changed: while disconnected, what was received before this may be
  /// stale by now.
  std::chrono::steady_clock::time_point since{};
};

/// A connection to NATS. Copies share the connection; it closes when the last copy (and every
/// remote store or exporter using it) is gone.
///
/// Thread-safety: every member may be called from any thread at once (the client library
/// serialises what needs it).
class Connection {
 public:
  /// Connects, trying each server in turn. Throws error (NATS_NO_SERVER when none answers,
  /// NATS_NOT_PERMITTED / an authorization message for wrong credentials, NATS_SSL_ERROR, ...)
  /// and std::invalid_argument for options that cannot work (no server, half a TLS pair).
  explicit Connection(const connection_options& options) : impl_(std::make_shared<impl>(options)) {}

  /// A new connection (its own socket and client threads) to the same servers with the same
  /// options. Throws as the constructor does.
  Connection another() const { return Connection(impl_->settings); }

  /// The client's connection, for calls custody does not wrap. Valid while this handle lives.
  natsConnection* native() const noexcept { return impl_->conn; }

  /// The connection's state, updated as the client loses and regains the server. Subscribe to
  /// be woken when it changes; get() for the state now.
  GetSubscriber<connection_state> state() const { return impl_->state; }

  /// True while connected (false while reconnecting and once closed).
  bool connected() const {
    return natsConnection_Status(impl_->conn) == NATS_CONN_STATUS_CONNECTED;
  }

  /// Sends everything buffered and waits until the server has processed it. Throws error
  /// (NATS_TIMEOUT after `timeout`, or when disconnected).
  void flush(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const {
    detail::check(natsConnection_FlushTimeout(impl_->conn, timeout.count()), "flush");
  }

 private:
  // What the client's event callbacks need. Owned by the client once connected: the closed
  // callback, the last one the client ever makes for a connection, deletes it.
  struct events {
    explicit events(store_pair<connection_state> pair) : owner(std::move(pair.owner)) {}
    void change(bool connected, bool closed) {
      std::lock_guard lock(mutex);
      owner.update([&](connection_state& s) {
        if (s.connected && !connected) ++s.disconnects;
        if (!s.connected && connected && s.since != std::chrono::steady_clock::time_point{}) {
          ++s.reconnects;
        }
        s.connected = connected;
        s.closed = closed;
        s.since = std::chrono::steady_clock::now();
      });
      if (closed) owner.close();
    }
    std::mutex mutex;  // the client may call back from more than one thread
    Owner<connection_state> owner;
  };

  static void on_disconnected(natsConnection*, void* closure) {
    static_cast<events*>(closure)->change(false, false);
  }
  static void on_reconnected(natsConnection*, void* closure) {
    static_cast<events*>(closure)->change(true, false);
  }
  static void on_closed(natsConnection*, void* closure) {
    auto* e = static_cast<events*>(closure);
    e->change(false, true);
    delete e;
  }

  struct impl {
    explicit impl(const connection_options& o) : settings(o) {
      if (o.servers.empty()) {
        throw std::invalid_argument("custody::nats: connection_options.servers is empty");
      }
      if (o.tls && o.tls->cert_file.empty() != o.tls->key_file.empty()) {
        throw std::invalid_argument(
            "custody::nats: TLS needs both cert_file and key_file, or neither");
      }
      auto pair = make_store<connection_state>({});
      state = pair.store;
      auto ev = std::make_unique<events>(std::move(pair));
      natsOptions* raw = nullptr;
      detail::check(natsOptions_Create(&raw), "creating connection options");
      std::unique_ptr<natsOptions, void (*)(natsOptions*)> opts(raw, natsOptions_Destroy);
      std::vector<const char*> urls;
      for (const auto& s : o.servers) urls.push_back(s.c_str());
      const auto set = [](natsStatus s, const char* what) { detail::check(s, what); };
      set(natsOptions_SetServers(raw, urls.data(), static_cast<int>(urls.size())), "server URLs");
      if (!o.name.empty()) set(natsOptions_SetName(raw, o.name.c_str()), "connection name");
      if (!o.user.empty() || !o.password.empty()) {
        set(natsOptions_SetUserInfo(raw, o.user.c_str(), o.password.c_str()), "user and password");
      }
      if (!o.token.empty()) set(natsOptions_SetToken(raw, o.token.c_str()), "token");
      if (o.tls) {
        set(natsOptions_SetSecure(raw, true), "TLS");
        if (!o.tls->ca_file.empty()) {
          set(natsOptions_LoadCATrustedCertificates(raw, o.tls->ca_file.c_str()),
              "loading the TLS CA file");
        }
        if (!o.tls->cert_file.empty()) {
          set(natsOptions_LoadCertificatesChain(raw, o.tls->cert_file.c_str(),
                                                o.tls->key_file.c_str()),
              "loading the TLS certificate and key");
        }
      }
      set(natsOptions_SetTimeout(raw, o.connect_timeout.count()), "connect timeout");
      set(natsOptions_SetMaxReconnect(raw, o.max_reconnects), "reconnect attempts");
      set(natsOptions_SetReconnectWait(raw, o.reconnect_wait.count()), "reconnect wait");
      // Requests and replies go out at once instead of waiting for the client's flusher
      // (measured: ~1 ms per request round trip with it, ~0.15 ms without).
      set(natsOptions_SetSendAsap(raw, true), "send as soon as possible");
      set(natsOptions_SetDisconnectedCB(raw, on_disconnected, ev.get()), "disconnect callback");
      set(natsOptions_SetReconnectedCB(raw, on_reconnected, ev.get()), "reconnect callback");
      set(natsOptions_SetClosedCB(raw, on_closed, ev.get()), "closed callback");
      detail::check(natsConnection_Connect(&conn, raw), "connecting to " + join(o.servers));
      events* e = ev.release();  // the client owns it now (see events)
      e->change(natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED, false);
      options = std::move(opts);
    }
    ~impl() {
      natsConnection_Close(conn);
      natsConnection_Destroy(conn);
    }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    // The URLs for a message, credentials hidden (nats://***@host:4222).
    static std::string join(const std::vector<std::string>& v) {
      std::string out;
      for (const std::string& url : v) {
        std::string shown = url;
        const auto scheme = url.find("://");
        const auto at = url.rfind('@');
        if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
          shown = url.substr(0, scheme + 3) + "***" + url.substr(at);
        }
        out += (out.empty() ? "" : ", ") + shown;
      }
      return out;
    }

    connection_options settings;
    std::unique_ptr<natsOptions, void (*)(natsOptions*)> options{nullptr, natsOptions_Destroy};
    natsConnection* conn = nullptr;
    GetSubscriber<connection_state> state;
  };

  std::shared_ptr<impl> impl_;
};

/// A subscription whose messages are handed to a function, on a thread the client dedicates to
/// this subscription (so the function may block: later messages wait, in order). Move-only;
/// unsubscribing (or destroying it) returns only once the function has returned for the last
/// time, so it may refer to objects that die right after.
class MessageSubscription {
 public:
  /// What receives each message.
  using handler = std::function<void(message)>;

  /// Subscribed to nothing.
  MessageSubscription() = default;
  /// Subscribes to `subject` (wildcards allowed); `on_message` gets each message. Throws error.
  MessageSubscription(const Connection& c, const std::string& subject, handler on_message)
      : connection_(c), state_(std::make_unique<state>(std::move(on_message))) {
    natsSubscription* raw = nullptr;
    detail::check(
        natsConnection_Subscribe(&raw, c.native(), subject.c_str(), deliver, state_.get()),
        "subscribing to " + subject);
    sub_.reset(raw);
    detail::check(natsSubscription_SetOnCompleteCB(raw, complete, state_.get()),
                  "subscribing to " + subject);
  }
  /// Takes over `other`'s subscription; `other` becomes empty.
  MessageSubscription(MessageSubscription&& other) noexcept = default;
  /// Unsubscribes this one, then takes over `other`'s.
  MessageSubscription& operator=(MessageSubscription&& other) noexcept {
    if (this != &other) {
      unsubscribe();
      connection_ = std::move(other.connection_);
      state_ = std::move(other.state_);
      sub_ = std::move(other.sub_);
    }
    return *this;
  }
  ~MessageSubscription() { unsubscribe(); }

  /// Stops delivery; returns once the handler has returned for the last time. Messages the
  /// server sent before it learnt of this are still handled (a drain), so that a request in
  /// flight is answered rather than lost. Must not be called from the handler.
  void unsubscribe() noexcept {
    if (!sub_) return;
    if (natsSubscription_Drain(sub_.get()) != NATS_OK) natsSubscription_Unsubscribe(sub_.get());
    {
      std::unique_lock lock(state_->mutex);
      state_->completed.wait(lock, [&] { return state_->done; });
    }
    sub_.reset();
    state_.reset();
  }

 private:
  struct state {
    explicit state(handler h) : on_message(std::move(h)) {}
    handler on_message;
    std::mutex mutex;
    std::condition_variable completed;
    bool done = false;  // guarded by mutex: the client will not call on_message again
  };

  static void deliver(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
    message owned(m);
    try {
      static_cast<state*>(closure)->on_message(std::move(owned));
    } catch (...) {
      // Nothing to report it to on the client's thread; the handler keeps its own counts.
    }
  }
  static void complete(void* closure) {
    auto* s = static_cast<state*>(closure);
    std::lock_guard lock(s->mutex);
    s->done = true;
    s->completed.notify_all();
  }

  struct destroyer {
    void operator()(natsSubscription* s) const noexcept { natsSubscription_Destroy(s); }
  };

  std::optional<Connection> connection_;  // kept alive: the subscription needs it
  std::unique_ptr<state> state_;
  std::unique_ptr<natsSubscription, destroyer> sub_;
};

}  // namespace custody::nats
