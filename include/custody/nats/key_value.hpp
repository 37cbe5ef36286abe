#pragma once
// custody::nats::KeyValue: a JetStream key-value bucket, opened (or created) once, then written
// and read by key with revisions.

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "connection.hpp"
#include "error.hpp"
#include "handles.hpp"

namespace custody::nats {

/// The bucket to use, and how to create it if it does not exist yet.
struct bucket_options {
  std::string name;  ///< the bucket's name (letters, digits, '-' and '_')
  /// Revisions kept per key (1..64). Only the latest matters to a store.
  std::uint8_t history = 1;
  /// File storage survives a server restart; memory storage does not.
  jsStorageType storage = js_FileStorage;
  /// Copies of the bucket kept on different servers of a JetStream cluster (1..5; 3 keeps
  /// every acknowledged write through the loss of any one server). Needs a cluster of at least
  /// that many servers.
  int replicas = 1;
  /// How long a write or a read waits for the server's answer.
  std::chrono::milliseconds timeout{2000};
};

/// One entry read from a bucket.
struct kv_value {
  std::string bytes;           ///< the encoded value
  std::uint64_t revision = 0;  ///< its revision
};

/// The last entry of a key as stored, headers included.
struct kv_message {
  message entry;               ///< the stored message (its data, its headers)
  std::uint64_t revision = 0;  ///< its revision
};

/// A key-value bucket. Move-only. Thread-safety: calls on one KeyValue may come from several
/// threads (the client serialises them); watches should each use their own.
class KeyValue {
 public:
  /// Opens the bucket, creating it with `options` if it does not exist (an existing bucket
  /// keeps the settings it was made with). Throws error (NATS_NO_SERVER_SUPPORT without
  /// JetStream, NATS_TIMEOUT, an error from the server when there are fewer servers than
  /// replicas, ...).
  KeyValue(const Connection& connection, const bucket_options& options)
      : connection_(connection), name_(options.name) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = options.timeout.count();
    jsCtx* js = nullptr;
    detail::check(natsConnection_JetStream(&js, connection.native(), &jo), "opening JetStream");
    js_.reset(js);
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js, name_.c_str());
    if (s == NATS_NOT_FOUND) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = name_.c_str();
      cfg.History = options.history;
      cfg.StorageType = options.storage;
      cfg.Replicas = options.replicas;
      // Two parties may create it at once; the same configuration makes that harmless.
      s = js_CreateKeyValue(&kv, js, &cfg);
    }
    detail::check(s, "opening key-value bucket " + name_);
    kv_.reset(kv);
  }

  /// The bucket's name.
  const std::string& name() const noexcept { return name_; }
  /// The connection the bucket is used through.
  const Connection& connection() const noexcept { return connection_; }

  /// One header written with an entry.
  struct header {
    const char* name;        ///< the header's name
    std::string_view value;  ///< a single line
  };

  /// Writes `bytes` under `key`, with `headers` (which readers of the bucket's stream see, the
  /// client's key-value getters do not), and returns the new revision once the server has
  /// stored it, waiting at most `timeout` (zero: the bucket's timeout). Throws error
  /// (NATS_TIMEOUT when no answer came in time, NATS_CONNECTION_DISCONNECTED, ...); after a
  /// timeout the value may still have been stored.
  std::uint64_t put(const std::string& key, std::string_view bytes,
                    std::initializer_list<header> headers = {},
                    std::chrono::milliseconds timeout = {}) const {
    return *write(key, bytes, std::nullopt, headers, timeout);  // unconditional: always written
  }

  /// As put(), only if the key's last entry (a delete included) has revision
  /// `expected_revision` (0: the key has no entry at all): the new revision, or nothing when
  /// another revision is there now. Throws error as put() does.
  std::optional<std::uint64_t> put_if(const std::string& key, std::string_view bytes,
                                      std::uint64_t expected_revision,
                                      std::initializer_list<header> headers = {},
                                      std::chrono::milliseconds timeout = {}) const {
    return write(key, bytes, expected_revision, headers, timeout);
  }

  /// The last entry under `key` with its headers, a delete or purge included (its
  /// KV-Operation header says so), or nothing when the key has no entry. Throws error.
  std::optional<kv_message> last(const std::string& key) const {
    natsMsg* raw = nullptr;
    jsErrCode code{};
    const natsStatus s = js_GetLastMsg(&raw, js_.get(), ("KV_" + name_).c_str(),
                                       ("$KV." + name_ + "." + key).c_str(), nullptr, &code);
    if (s == NATS_NOT_FOUND) return std::nullopt;
    detail::check(s, "reading " + name_ + "/" + key);
    kv_message out{message(raw), natsMsg_GetSequence(raw)};
    return out;
  }

  /// The latest value under `key`, or nothing if the key has none (never written, deleted).
  /// Throws error.
  std::optional<kv_value> get(const std::string& key) const {
    kvEntry* e = nullptr;
    const natsStatus s = kvStore_Get(&e, kv_.get(), key.c_str());
    if (s == NATS_NOT_FOUND) return std::nullopt;
    detail::check(s, "reading " + name_ + "/" + key);
    kv_entry owned(e);
    return kv_value{read_bytes(e), kvEntry_Revision(e)};
  }

  /// How many copies of the bucket the servers keep: asks the server, waiting up to the
  /// bucket's timeout. Throws error (NATS_TIMEOUT, NATS_CONNECTION_DISCONNECTED, ...).
  int replicas() const {
    kvStatus* raw = nullptr;
    detail::check(kvStore_Status(&raw, kv_.get()), "reading the status of bucket " + name_);
    const int n = static_cast<int>(kvStatus_Replicas(raw));
    kvStatus_Destroy(raw);
    return n;
  }

  /// The client's bucket handle, for calls custody does not wrap.
  kvStore* native() const noexcept { return kv_.get(); }
  /// The JetStream context the bucket is used through (with the bucket's timeout).
  jsCtx* jetstream() const noexcept { return js_.get(); }

  /// The bytes of an entry.
  static std::string read_bytes(kvEntry* e) {
    const auto* data = static_cast<const char*>(kvEntry_Value(e));
    const int size = kvEntry_ValueLen(e);
    return data != nullptr && size > 0 ? std::string(data, static_cast<std::size_t>(size))
                                       : std::string();
  }

 private:
  // put() and put_if(): `expected` is the key's last revision the write must follow (0: no
  // entry), or nothing for no condition. Nothing when the condition did not hold.
  std::optional<std::uint64_t> write(const std::string& key, std::string_view bytes,
                                     std::optional<std::uint64_t> expected,
                                     std::initializer_list<header> headers,
                                     std::chrono::milliseconds timeout) const {
    const std::string doing = "writing " + name_ + "/" + key;
    natsMsg* raw = nullptr;
    detail::check(natsMsg_Create(&raw, ("$KV." + name_ + "." + key).c_str(), nullptr, bytes.data(),
                                 static_cast<int>(bytes.size())),
                  doing);
    const message m(raw);
    for (const header& h : headers) {
      detail::check(natsMsgHeader_Set(raw, h.name, std::string(h.value).c_str()), doing);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (timeout.count() > 0) po.MaxWait = timeout.count();
    if (expected == 0) {
      po.ExpectNoMessage = true;
    } else if (expected) {
      po.ExpectLastSubjectSeq = *expected;
    }
    jsPubAck* ack = nullptr;
    jsErrCode code{};
    const natsStatus s = js_PublishMsg(&ack, js_.get(), raw, &po, &code);
    if (s != NATS_OK && expected && code == JSStreamWrongLastSequenceErr) return std::nullopt;
    detail::check(s, doing);
    const std::uint64_t revision = ack->Sequence;
    jsPubAck_Destroy(ack);
    return revision;
  }

  Connection connection_;  // the handles below need it
  std::string name_;
  js_context js_;
  kv_store kv_;
};

}  // namespace custody::nats
