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
#include "connection_options.hpp"
#include "error.hpp"
#include "handles.hpp"

namespace custody::nats {

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
/// remote store or exporter using it) is gone. Closing does not wait for the server: it
/// returns at once during an outage and against a frozen server alike. A link that dies
/// without a word (a frozen server, a half-open connection) shows as a disconnect within two
/// ping intervals.
///
/// Thread-safety: every member may be called from any thread at once (the client library
/// serialises what needs it).
class Connection {
 public:
  /// Connects, trying each server in turn; blocks for at most connect_timeout per server.
  /// Throws error (NATS_NO_SERVER when none answers, NATS_NOT_PERMITTED / an authorization
  /// message for wrong credentials, NATS_SECURE_CONNECTION_WANTED when TLS is required and
  /// the server does not offer it, NATS_SSL_ERROR for a server certificate not trusted, ...)
  /// and std::invalid_argument for options that cannot work (no server, half a TLS pair, two
  /// ways to authenticate, a secret file or variable that cannot be read).
  explicit Connection(const connection_options& options) : impl_(std::make_shared<impl>(options)) {}

  /// The options this connection was made with.
  const connection_options& options() const noexcept { return impl_->settings; }

  /// A new connection (its own socket and client threads) to the same servers with the same
  /// options. Throws as the constructor does.
  Connection another() const { return Connection(impl_->settings); }

  /// The client's connection, for calls custody does not wrap. Valid while this handle lives.
  natsConnection* native() const noexcept { return impl_->conn; }

  /// The connection's state, updated as the client loses and regains the server. Subscribe to
  /// be woken when it changes; get() for the state now.
  GetSubscriber<connection_state> state() const { return impl_->state; }

  /// The URL of the server connected to now ("nats://127.0.0.1:4222"); empty while
  /// disconnected.
  std::string connected_url() const {
    char url[256] = {};
    if (natsConnection_GetConnectedUrl(impl_->conn, url, sizeof url) != NATS_OK) return {};
    return url;
  }

  /// True while connected (false while reconnecting and once closed).
  bool connected() const {
    return natsConnection_Status(impl_->conn) == NATS_CONN_STATUS_CONNECTED;
  }

  /// Closes the connection now, for every copy: what waits for the server (a request, a
  /// JetStream write) returns an error at once, and later calls fail. For cutting short what
  /// a frozen server would hold up; the last copy's destruction closes it anyway.
  void close() const noexcept { natsConnection_Close(impl_->conn); }

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
      detail::validate(o);
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
      set(natsOptions_SetNoRandomize(raw, !o.randomize_servers), "server order");
      if (!o.name.empty()) set(natsOptions_SetName(raw, o.name.c_str()), "connection name");
      authenticate(raw, o);
      // The client alone would take a "tls://" URL for a plain one and send credentials in
      // clear to a server without TLS; required, it refuses such a server.
      const bool tls = detail::requires_tls(o);
      if (tls) set(natsOptions_SetSecure(raw, true), "TLS");
      if (o.tls && !o.tls->ca_file.empty()) {
        set(natsOptions_LoadCATrustedCertificates(raw, o.tls->ca_file.c_str()),
            "loading the TLS CA file");
      }
      if (o.tls && !o.tls->cert_file.empty()) {
        set(natsOptions_LoadCertificatesChain(raw, o.tls->cert_file.c_str(),
                                              o.tls->key_file.c_str()),
            "loading the TLS certificate and key");
      }
      set(natsOptions_SetTimeout(raw, o.connect_timeout.count()), "connect timeout");
      set(natsOptions_SetMaxReconnect(raw, o.max_reconnects), "reconnect attempts");
      set(natsOptions_SetReconnectWait(raw, o.reconnect_wait.count()), "reconnect wait");
      // One ping unanswered when the next is due marks the link dead: within two intervals.
      set(natsOptions_SetPingInterval(raw, o.ping_interval.count()), "ping interval");
      set(natsOptions_SetMaxPingsOut(raw, 1), "pings outstanding");
      // Requests and replies go out at once instead of waiting for the client's flusher
      // (measured: ~1 ms per request round trip with it, ~0.15 ms without).
      set(natsOptions_SetSendAsap(raw, true), "send as soon as possible");
      set(natsOptions_SetDisconnectedCB(raw, on_disconnected, ev.get()), "disconnect callback");
      set(natsOptions_SetReconnectedCB(raw, on_reconnected, ev.get()), "reconnect callback");
      set(natsOptions_SetClosedCB(raw, on_closed, ev.get()), "closed callback");
      const natsStatus connected = natsConnection_Connect(&conn, raw);
      if (connected == NATS_SECURE_CONNECTION_WANTED) {
        throw error(connected, "connecting to " + join(o.servers) +
                                   ": TLS is required, and the server does not offer it");
      }
      detail::check(connected, "connecting to " + join(o.servers));
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

    // The one way to authenticate the options give (validate() checked there is one at most).
    static void authenticate(natsOptions* raw, const connection_options& o) {
      if (!o.user.empty() || !o.password.empty() || !o.password_from.empty()) {
        const std::string password =
            o.password_from.empty() ? o.password : detail::read_secret(o.password_from, "password");
        detail::check(natsOptions_SetUserInfo(raw, o.user.c_str(), password.c_str()),
                      "user and password");
      } else if (!o.token.empty() || !o.token_from.empty()) {
        const std::string token =
            o.token_from.empty() ? o.token : detail::read_secret(o.token_from, "token");
        detail::check(natsOptions_SetToken(raw, token.c_str()), "token");
      } else if (!o.creds_file.empty()) {
        // Read by the client at each connect, so a renewed file is used on reconnection.
        detail::check(natsOptions_SetUserCredentialsFromFiles(raw, o.creds_file.c_str(), nullptr),
                      "credentials file");
      } else if (!o.nkey.empty()) {
        // The seed is read at each connect too, and wiped from memory after signing.
        detail::check(natsOptions_SetNKeyFromSeed(raw, o.nkey.c_str(), o.nkey_seed_file.c_str()),
                      "NKey");
      }
    }

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
  /// flight is answered rather than lost, for at most the connection's drain_timeout: during
  /// an outage or against a frozen server the rest are dropped then. Must not be called from
  /// the handler.
  void unsubscribe() noexcept {
    if (!sub_) return;
    const auto bound = connection_->options().drain_timeout.count();
    if (natsSubscription_DrainTimeout(sub_.get(), bound) != NATS_OK) {
      natsSubscription_Unsubscribe(sub_.get());
    }
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
