#pragma once
// What a custody::nats::Connection is told: the servers, who to be (credentials and TLS), and
// the timings that bound how long a dead link goes unnoticed and how long a close may take.

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace custody::nats {

/// Files for a TLS connection (PEM). The CA alone verifies the server; certificate and key
/// together also identify this client.
struct tls_options {
  std::string ca_file;    ///< trusted CA certificates; empty: the system's
  std::string cert_file;  ///< this client's certificate chain (with key_file)
  std::string key_file;   ///< this client's private key (with cert_file)
};

/// Where a secret (a password, a token) is read from, so that it need not appear on a command
/// line, which every user of the machine can read (ps). Read when the connection is made.
struct secret_source {
  std::string file;  ///< a file holding the secret; one trailing line break is dropped
  std::string env;   ///< or the environment variable holding it
  /// Neither a file nor a variable given.
  bool empty() const noexcept { return file.empty() && env.empty(); }
};

/// How to reach the server and who to be. At most one way to authenticate: user and password,
/// a token, a credentials file, or an NKey.
struct connection_options {
  /// Server URLs tried in turn ("nats://host:4222"). A "tls://" URL requires TLS, as `tls`
  /// does: for every server, since the client keeps one setting for all of them.
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  /// Try the servers in a random order (spreading clients over a cluster); false: in the
  /// order given, say to prefer the server on the same machine.
  bool randomize_servers = true;
  std::string name;                ///< shown by the server's monitoring; empty: none
  std::string user;                ///< with a password: user/password authentication
  std::string password;            ///< see user; prefer password_from
  secret_source password_from;     ///< the password, from a file or environment variable
  std::string token;               ///< token authentication; prefer token_from
  secret_source token_from;        ///< the token, from a file or environment variable
  std::string creds_file;          ///< a credentials file: a user JWT and its NKey seed
  std::string nkey;                ///< an NKey user's public key (with nkey_seed_file)
  std::string nkey_seed_file;      ///< the file holding that user's NKey seed
  std::optional<tls_options> tls;  ///< set: TLS is required
  /// How long the first connect may take per server.
  std::chrono::milliseconds connect_timeout{2000};
  /// The pause between reconnect attempts to one server. Short, so that a restarted server is
  /// found again quickly (the client's default is 2 s).
  std::chrono::milliseconds reconnect_wait{250};
  /// Reconnect attempts per server before giving up for good; negative: never give up (the
  /// client's default gives up after 60).
  int max_reconnects = -1;
  /// How often the client pings the server. A ping not answered by the next one marks the link
  /// dead, so a dead link (a frozen server, a half-open connection) shows as a disconnect
  /// within two intervals, and reconnecting starts. (The client's default: 2 minutes, and
  /// two unanswered pings.)
  std::chrono::milliseconds ping_interval{2000};
  /// How long ending a subscription waits for messages the server sent before it learnt of
  /// the end; the rest are dropped. Bounds closing during an outage or against a frozen
  /// server.
  std::chrono::milliseconds drain_timeout{50};
};

namespace detail {

/// True when the options require TLS: `tls` is set or a server URL's scheme is tls (in any
/// case, as URL schemes are).
inline bool requires_tls(const connection_options& o) {
  if (o.tls) return true;
  constexpr std::string_view scheme = "tls://";
  for (const std::string& url : o.servers) {
    if (url.size() < scheme.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      const char c =
          url[i] >= 'A' && url[i] <= 'Z' ? static_cast<char>(url[i] - 'A' + 'a') : url[i];
      same = same && c == scheme[i];
    }
    if (same) return true;
  }
  return false;
}

/// Throws std::invalid_argument for options that cannot work.
inline void validate(const connection_options& o) {
  const auto refuse = [](const std::string& why) {
    throw std::invalid_argument("custody::nats: connection_options: " + why);
  };
  if (o.servers.empty()) refuse("servers is empty");
  if (o.tls && o.tls->cert_file.empty() != o.tls->key_file.empty()) {
    refuse("TLS needs both cert_file and key_file, or neither");
  }
  if (!o.password.empty() && !o.password_from.empty()) refuse("both password and password_from");
  if (!o.password_from.file.empty() && !o.password_from.env.empty()) {
    refuse("password_from names both a file and an environment variable");
  }
  if (!o.token.empty() && !o.token_from.empty()) refuse("both token and token_from");
  if (!o.token_from.file.empty() && !o.token_from.env.empty()) {
    refuse("token_from names both a file and an environment variable");
  }
  if (o.nkey.empty() != o.nkey_seed_file.empty()) refuse("an NKey needs nkey and nkey_seed_file");
  const bool user = !o.user.empty() || !o.password.empty() || !o.password_from.empty();
  const bool token = !o.token.empty() || !o.token_from.empty();
  const int ways = int{user} + int{token} + int{!o.creds_file.empty()} + int{!o.nkey.empty()};
  if (ways > 1) refuse("more than one way to authenticate (user/password, token, creds, NKey)");
  if (o.ping_interval <= std::chrono::milliseconds::zero()) refuse("ping_interval must be > 0");
  if (o.drain_timeout <= std::chrono::milliseconds::zero()) refuse("drain_timeout must be > 0");
}

/// The secret `from` names, for `what` ("password", "token"). Throws std::invalid_argument
/// when it cannot be read or is empty (an empty secret is a mistake, never a choice).
inline std::string read_secret(const secret_source& from, std::string_view what) {
  std::string secret;
  if (!from.file.empty()) {
    std::ifstream in(from.file, std::ios::binary);
    if (!in) {
      throw std::invalid_argument("custody::nats: cannot read the " + std::string(what) + " file " +
                                  from.file + ": " + std::generic_category().message(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    secret = text.str();
    if (secret.ends_with('\n')) secret.pop_back();
    if (secret.ends_with('\r')) secret.pop_back();
  } else {
    // getenv is safe here unless another thread changes the environment, which programs
    // using a connection do not do.
    const char* value = std::getenv(from.env.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) {
      throw std::invalid_argument("custody::nats: the environment variable " + from.env + " (the " +
                                  std::string(what) + ") is not set");
    }
    secret = value;
  }
  if (secret.empty()) {
    throw std::invalid_argument("custody::nats: the " + std::string(what) + " from " +
                                (from.file.empty() ? "$" + from.env : from.file) + " is empty");
  }
  return secret;
}

}  // namespace detail

}  // namespace custody::nats
