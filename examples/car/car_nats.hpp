#pragma once
// What custody-car and custody-car-monitor share about NATS: where the stores live (one
// key-value bucket, keys "data" and "status"), connecting with errors in the user's terms, and
// making sure the bucket ends with the owner's final values.
//
// Only built with custody::nats (CUSTODY_CAR_WITH_NATS).

#include <nats/nats.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <custody/nats.hpp>

#include "car_data.hpp"
#include "car_json.hpp"
#include "options.hpp"

namespace car {

/// The keys of the bucket: the car-data store (set requests on custody.<bucket>.data.set) and
/// the car-status store (read-only).
inline constexpr const char* kDataKey = "data";
inline constexpr const char* kStatusKey = "status";

/// This process, as a second owner of the bucket is told who holds it: "custody-car pid 42 on
/// host".
inline std::string owner_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return "custody-car pid " + std::to_string(getpid()) + (host[0] != '\0' ? " on " : "") + host;
}

/// Where the owner's exporter publishes `key` of `bucket`, holding its lease as this process.
inline custody::nats::export_options export_to(const std::string& bucket, const std::string& key) {
  custody::nats::export_options o;
  o.bucket.name = bucket;
  o.key = key;
  o.holder = owner_name();
  return o;
}

/// Where a consumer's remote store follows `key` of `bucket`.
inline custody::nats::remote_options follow(const std::string& bucket, const std::string& key) {
  custody::nats::remote_options o;
  o.bucket.name = bucket;
  o.key = key;
  return o;
}

/// A server URL fit for messages: credentials hidden (nats://***@host:4222).
inline std::string redact(std::string_view url) {
  const auto scheme = url.find("://");
  const auto at = url.rfind('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme) {
    return std::string(url);
  }
  return std::string(url.substr(0, scheme + 3)) + "***" + std::string(url.substr(at));
}

/// Several URLs, redacted and separated by ", ".
inline std::string redact(const std::vector<std::string>& urls) {
  std::string out;
  for (const std::string& u : urls) out += (out.empty() ? "" : ", ") + redact(u);
  return out;
}

/// A connection and the bucket, opened (or created) at once: a server that is missing, refuses
/// us or has no JetStream is reported before anything starts.
struct NatsLink {
  custody::nats::Connection connection;
  custody::nats::KeyValue bucket;
};

namespace nats_detail {

// The client's own text, and its detail when that says more (an authorization violation, ...),
// without custody's prefix, which would repeat the URL with its credentials.
inline std::string reason(const custody::nats::error& e) {
  std::string text = natsStatus_GetText(e.code());
  const std::string_view what = e.what();
  if (const auto open = what.rfind(" ("); open != std::string_view::npos && what.ends_with(')')) {
    const std::string_view detail = what.substr(open + 2, what.size() - open - 3);
    if (detail.find("://") == std::string_view::npos) text += " (" + std::string(detail) + ")";
  }
  return text;
}

}  // namespace nats_detail

/// No server answered, or JetStream did not (yet): worth trying again later, unlike a refusal
/// (wrong credentials, TLS).
struct nats_unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The connection options the flags ask for: `servers`, TLS when any TLS file is named (for
/// every server), and the one way to sign in, its secret read from a file or variable when
/// the connection is made.
inline custody::nats::connection_options connection_options_for(
    const std::vector<std::string>& servers, const NatsAccess& access,
    const std::string& client_name) {
  custody::nats::connection_options o;
  o.servers = servers;
  o.name = client_name;
  if (access.tls()) {
    o.tls = custody::nats::tls_options{access.ca_file, access.cert_file, access.key_file};
  }
  o.creds_file = access.creds_file;
  o.token_from = {access.token_file, access.token_env};
  o.user = access.user;
  if (!access.user.empty()) o.password_from = {access.password_file, access.password_env};
  return o;
}

/// Connects to `servers` as `client_name`, as `access` says, and opens `bucket` (made with
/// access.replicas copies if it is missing). Throws std::runtime_error with a message for the
/// user: which server, what failed, and what to do when the cause is known; nats_unreachable
/// when no server or no JetStream answered.
inline NatsLink connect_nats(const std::vector<std::string>& servers, const NatsAccess& access,
                             const std::string& bucket, const std::string& client_name) {
  std::optional<custody::nats::Connection> connection;
  try {
    connection.emplace(connection_options_for(servers, access, client_name));
  } catch (const custody::nats::error& e) {
    const std::string text =
        "cannot connect to NATS at " + redact(servers) + ": " + nats_detail::reason(e);
    if (e.code() == NATS_NO_SERVER) {
      throw nats_unreachable(text + " (is nats-server -js running there?)");
    }
    if (e.code() == NATS_SECURE_CONNECTION_WANTED) {
      throw std::runtime_error(text + " (TLS is required by " +
                               (access.tls() ? "--nats-ca/--nats-cert" : "the tls:// URL") +
                               ", and the server does not offer it)");
    }
    throw std::runtime_error(text);
  } catch (const std::invalid_argument& e) {  // a secret's file or variable, gone since
    throw std::runtime_error("cannot connect to NATS at " + redact(servers) + ": " + e.what());
  }
  custody::nats::bucket_options options_for_bucket;
  options_for_bucket.name = bucket;
  options_for_bucket.replicas = access.replicas.value_or(1);
  std::optional<custody::nats::KeyValue> kv;
  try {
    kv.emplace(*connection, options_for_bucket);
  } catch (const custody::nats::error& e) {
    const std::string text = "connected to NATS at " + redact(servers) +
                             ", but cannot open or create key-value bucket '" + bucket +
                             "': " + nats_detail::reason(e);
    if (e.code() == NATS_NO_RESPONDERS) {
      throw nats_unreachable(text + " (is JetStream enabled? nats-server -js)");
    }
    if (e.code() == NATS_TIMEOUT) throw nats_unreachable(text);
    throw std::runtime_error(text);
  }
  // Replicas are set when a bucket is made: one made before with another count would not
  // keep what --nats-replicas asked for.
  if (access.replicas) {
    int made_with = 0;
    try {
      made_with = kv->replicas();
    } catch (const custody::nats::error& e) {
      throw std::runtime_error("cannot read the replicas of key-value bucket '" + bucket +
                               "' at NATS " + redact(servers) + ": " + nats_detail::reason(e));
    }
    if (made_with != *access.replicas) {
      throw std::runtime_error("key-value bucket '" + bucket + "' exists with " +
                               std::to_string(made_with) + " replica" +
                               (made_with == 1 ? "" : "s") + ", not the " +
                               std::to_string(*access.replicas) +
                               " --nats-replicas asks for (replicas are set when a bucket is "
                               "made: delete it, or ask for " +
                               std::to_string(made_with) + ")");
    }
  }
  return NatsLink{std::move(*connection), std::move(*kv)};
}

/// Waits (at most 1 s) for the NATS client's own threads to end, once every connection is
/// destroyed. A connection's threads outlive it for a moment, and one still freeing its TLS
/// state while the process exits races OpenSSL's cleanup at exit.
inline void close_nats_client() { nats_CloseAndWait(1000); }

/// Waits until another owner takes over the lease of either key (the message to stop with) or
/// `stop` is requested (nothing). A car stopped for longer than the lease's ttl (SIGSTOP) may
/// find its keys owned by another car: its exporters then publish nothing more, and the car
/// stops, as a second owner at start is refused.
inline std::optional<std::string> wait_until_deposed(
    const std::string& bucket, const custody::GetSubscriber<custody::nats::lease_status>& data,
    const custody::GetSubscriber<custody::nats::lease_status>& status, std::stop_token stop) {
  auto data_lease = data.subscribe(custody::policy::latest().with_current());
  auto status_lease = status.subscribe(custody::policy::latest().with_current());
  const char* lost = nullptr;
  bool data_open = true;
  bool status_open = true;
  const auto on = [&](const char* key) {
    return [&lost, key](custody::nats::lease_status l) {
      if (l == custody::nats::lease_status::deposed) lost = key;
    };
  };
  while (lost == nullptr && !stop.stop_requested() && (data_open || status_open)) {
    custody::select(
        custody::on_recv(data_lease, on(kDataKey), [&] { data_open = false; }).when(data_open),
        custody::on_recv(status_lease, on(kStatusKey), [&] { status_open = false; })
            .when(status_open),
        custody::on_stop(stop));
  }
  if (lost == nullptr) return std::nullopt;
  return "bucket " + bucket + ": key " + lost + " was taken over by another owner (its lease " +
         custody::nats::wire::lease_key(lost) + " is no longer this car's); no longer publishing";
}

/// Writes `value` under `key` unless the bucket holds it already, with the fencing token
/// `fence` of the exporter that still holds the key's lease (consumers ignore entries without
/// it). An exporter destroyed right after its owner ended may not have written the owner's
/// final value yet; this makes sure the bucket ends with it, so that every consumer ends with
/// the same value as the owner. Returns what went wrong, or nothing.
template <class T>
std::optional<std::string> publish_final(const NatsLink& link, const std::string& key,
                                         const T& value, std::uint64_t fence) {
  if (!link.connection.connected()) {
    return "not connected to NATS: the final " + key + " may be missing from the bucket";
  }
  try {
    const std::string bytes = custody::nats::json_codec<T>::encode(value);
    const auto current = link.bucket.get(key);
    if (!current || current->bytes != bytes) {
      link.bucket.put(key, bytes, {{custody::nats::wire::fence_header, std::to_string(fence)}});
    }
    return std::nullopt;
  } catch (const custody::nats::error& e) {
    return "cannot write the final " + key + " to the bucket: " + nats_detail::reason(e);
  }
}

}  // namespace car
