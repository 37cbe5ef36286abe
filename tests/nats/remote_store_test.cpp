// A store exported over a real nats-server and followed by remote stores: the same views,
// answers and policies as a local store, across connections.

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/custody.hpp>
#include <custody/nats.hpp>

#include "../support/nats_server.hpp"

namespace {
namespace remote_store_test {

using namespace std::chrono_literals;
namespace nats = custody::nats;

struct Reading {
  std::int64_t n = 0;
  std::string note;
  friend bool operator==(const Reading&, const Reading&) = default;
  friend void PrintTo(const Reading& r, std::ostream* os) { *os << r.n << " \"" << r.note << '"'; }
};
void to_json(nlohmann::json& j, const Reading& r) { j = {{"n", r.n}, {"note", r.note}}; }
void from_json(const nlohmann::json& j, Reading& r) {
  if (j.contains("n") && !j.at("n").is_number_integer()) {
    throw std::invalid_argument("Reading: n must be an integer");
  }
  r.n = j.value("n", std::int64_t{0});
  r.note = j.value("note", std::string());
}

nats::connection_options options_for(const custody_test::NatsServer& server) {
  nats::connection_options o;
  o.servers = {server.url()};
  return o;
}

nats::export_options export_to(std::string key) {
  nats::export_options o;
  o.bucket.name = "readings";
  o.key = std::move(key);
  return o;
}

nats::remote_options follow(std::string key, std::chrono::milliseconds timeout = 5s) {
  nats::remote_options o;
  o.bucket.name = "readings";
  o.key = std::move(key);
  o.request_timeout = timeout;
  return o;
}

// The owner task: rejects negative values, clamps values above 1000, accepts the rest.
std::jthread run_owner(custody::Owner<Reading>& owner) {
  return std::jthread([&owner](std::stop_token stop) {
    for (;;) {
      auto r = owner.requests().recv(stop);
      if (!r) return;
      custody::SetRequest<Reading> request = std::move(*r);
      Reading v = request.value();
      if (v.n < 0) {
        (void)std::move(request).reject(std::errc::invalid_argument, "negative: " + v.note);
      } else if (v.n > 1000) {
        v.n = 1000;
        (void)owner.accept(std::move(request), v);
      } else {
        (void)owner.accept(std::move(request));
      }
    }
  });
}

// Receives from `sub` until `want` arrives; false if the subscription closes or `deadline`
// passes first.
bool receive_until(custody::Receiver<Reading>& sub, const Reading& want,
                   std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto r = sub.recv_until(deadline);
    if (!r) return false;
    if (*r == want) return true;
  }
}

TEST(NatsRemoteStore, GetsTheOwnersValueAndSetsAreAnsweredByTheOwner) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({7, "start"});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("a"));
  std::jthread owner_task = run_owner(owner);

  nats::RemoteStore<Reading> remote(consumer_side, follow("a"));
  custody::GetSetter<Reading> store = remote;
  EXPECT_EQ(store.get(), (Reading{7, "start"}));  // read at construction

  auto ok = store.set({42, "asked"});
  ASSERT_EQ(ok.status(), custody::set_status::accepted);
  EXPECT_EQ(ok.value(), (Reading{42, "asked"}));
  EXPECT_EQ(store.get(), (Reading{42, "asked"}));  // get() already has it when set() returns
  EXPECT_EQ(local.get(), (Reading{42, "asked"}));

  auto clamped = store.set({5000, "too big"});
  ASSERT_EQ(clamped.status(), custody::set_status::accepted);
  EXPECT_EQ(clamped.value().n, 1000);  // the owner's adjusted value crosses back
  EXPECT_EQ(store.get().n, 1000);

  auto refused = store.set({-1, "why"});
  ASSERT_EQ(refused.status(), custody::set_status::rejected);
  EXPECT_EQ(refused.error(), std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(refused.message(), "negative: why");
  EXPECT_EQ(store.get().n, 1000);
}

TEST(NatsRemoteStore, ConcurrentSettersEachGetTheirOwnAnswer) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("b"));
  std::jthread owner_task = run_owner(owner);
  nats::RemoteStore<Reading> remote(consumer_side, follow("b"));

  // Four setters; odd ones ask for rejected values. Each answer must be its own: an accepted
  // answer carries the caller's value, a rejection names the caller.
  constexpr int kSetters = 4;
  constexpr int kEach = 100;
  std::atomic<int> wrong{0};
  std::atomic<int> answered{0};
  {
    std::vector<std::jthread> setters;
    for (int s = 0; s < kSetters; ++s) {
      setters.emplace_back([&, s, view = custody::Setter<Reading>(remote)] {
        for (int i = 0; i < kEach; ++i) {
          const std::string me = std::to_string(s) + ":" + std::to_string(i);
          const std::int64_t n = (s % 2 == 0) ? s * 100 + i : -1;
          auto r = view.set({n, me});
          ++answered;
          if (n >= 0 && !(r.accepted() && r.value() == Reading{n, me})) ++wrong;
          if (n < 0 &&
              !(r.status() == custody::set_status::rejected && r.message() == "negative: " + me)) {
            ++wrong;
          }
        }
      });
    }
  }
  EXPECT_EQ(answered.load(), kSetters * kEach);
  EXPECT_EQ(wrong.load(), 0);
}

// The wire protocol's promise to a remote store, played by hand: an accepted answer names the
// owner and version of the stored value, and entries that hold older values of that owner are
// never shown after it, nor the stored value twice.
TEST(NatsRemoteStore, EntriesOlderThanAnAcceptedValueAreNeverShownAfterIt) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  // Every entry is kept, so the watch delivers each of them.
  nats::bucket_options kept{"readings"};
  kept.history = 64;
  nats::KeyValue bucket(owner_side, kept);
  const auto put = [&](const char* owner, std::int64_t version, const Reading& r) {
    const std::string v = std::to_string(version);
    return bucket.put("w", nlohmann::json(r).dump(),
                      {{nats::wire::owner_header, owner}, {nats::wire::version_header, v}});
  };
  const std::uint64_t first = put("X", 3, {3, "before"});
  // The owner X answers every request: stored as version 5, its first entry at `first`.
  nats::MessageSubscription answering(
      owner_side, nats::wire::request_subject("readings", "w"), [&](nats::message m) {
        const std::string body = nlohmann::json(Reading{5, "set"}).dump();
        natsMsg* raw = nullptr;
        ASSERT_EQ(natsMsg_Create(&raw, natsMsg_GetReply(m.get()), nullptr, body.data(),
                                 static_cast<int>(body.size())),
                  NATS_OK);
        const nats::message reply(raw);
        const std::string since = std::to_string(first);
        natsMsgHeader_Set(raw, nats::wire::status_header, "accepted");
        natsMsgHeader_Set(raw, nats::wire::owner_header, "X");
        natsMsgHeader_Set(raw, nats::wire::version_header, "5");
        natsMsgHeader_Set(raw, nats::wire::since_revision_header, since.c_str());
        natsConnection_PublishMsg(owner_side.native(), raw);
      });
  owner_side.flush(5s);

  nats::remote_options in = follow("w");
  in.bucket = kept;
  nats::RemoteStore<Reading> remote(consumer_side, in);
  custody::Store<Reading> store = remote.store();
  ASSERT_EQ(store.get(), (Reading{3, "before"}));
  auto seen = store.subscribe(custody::policy::block(64));
  auto r = store.set({5, "ask"});
  ASSERT_TRUE(r.accepted()) << custody::to_string(r.status());
  EXPECT_EQ(store.get(), (Reading{5, "set"}));

  put("X", 4, {4, "older, written late"});
  put("X", 5, {5, "set"});  // the stored value's own entry
  put("X", 6, {6, "newer"});
  put("Y", 1, {7, "a new run of the owner"});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::vector<Reading> got;
  while (got.empty() || got.back().n != 7) {
    auto v = seen.recv_until(deadline);
    ASSERT_TRUE(v) << "got " << got.size() << " values";
    got.push_back(*v);
  }
  EXPECT_EQ(got, (std::vector<Reading>{{5, "set"}, {6, "newer"}, {7, "a new run of the owner"}}));
}

TEST(NatsRemoteStore, SubscribersGetUpdatesUnderTheirOwnPolicies) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({0, "zero"});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("c"));
  nats::RemoteStore<Reading> remote(consumer_side, follow("c"));
  custody::Subscriber<Reading> view = remote;
  auto lossless = view.subscribe(custody::policy::block(1024).with_current());
  auto newest = view.subscribe(custody::policy::latest());

  constexpr int kUpdates = 300;
  for (int i = 1; i <= kUpdates; ++i) ASSERT_EQ(owner.publish({i, "u"}), custody::status::ok);

  // The lossless subscriber sees the start value, then a strictly increasing run ending at
  // the last value (the exporter may skip values the owner published faster than the server
  // stored them, never reorder them).
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::int64_t last = -1;
  for (;;) {
    auto r = lossless.recv_until(deadline);
    ASSERT_TRUE(r) << "last value never arrived; got up to " << last;
    EXPECT_GT(r->n, last);
    last = r->n;
    if (last == kUpdates) break;
  }
  custody::Receiver<Reading> newest_rx = newest;
  EXPECT_TRUE(receive_until(newest_rx, Reading{kUpdates, "u"}, deadline));
  EXPECT_EQ(custody::Getter<Reading>(remote).get(), (Reading{kUpdates, "u"}));
}

TEST(NatsRemoteStore, NoOwnerMeansOwnerGoneAtOnce) {
  custody_test::NatsServer server;
  nats::Connection consumer_side(options_for(server));
  nats::RemoteStore<Reading> remote(consumer_side, follow("nobody"), Reading{3, "initial"});
  custody::GetSetter<Reading> store = remote;
  EXPECT_EQ(store.get(), (Reading{3, "initial"}));  // the key has no value yet
  const auto start = std::chrono::steady_clock::now();
  auto r = store.set({1, "anyone?"});
  EXPECT_EQ(r.status(), custody::set_status::owner_gone);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);  // told by the server, not a timeout
}

TEST(NatsRemoteStore, UnansweredSetsTimeOutAfterTheRequestTimeout) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({0, "zero"});
  auto exporting = export_to("slow");
  exporting.set_timeout = 60s;  // the exporter would wait for the owner far longer
  nats::Exporter<Reading> exporter(owner_side, local, exporting);
  // An owner that takes requests and holds them unanswered until told to stop.
  custody::Channel<int> taken(2);
  std::jthread holder([&owner = owner, &taken](std::stop_token stop) {
    std::vector<custody::SetRequest<Reading>> held;
    for (;;) {
      auto r = owner.requests().recv(stop);
      if (!r) return;
      held.push_back(std::move(*r));
      (void)taken.send(static_cast<int>(held.size()));
    }
  });

  constexpr auto kTimeout = 300ms;
  nats::RemoteStore<Reading> remote(consumer_side, follow("slow", kTimeout));
  custody::Setter<Reading> store = remote;
  // The second request expires after the first: the remote store must look again after
  // expiring the first.
  const auto start = std::chrono::steady_clock::now();
  std::jthread first([&] {
    EXPECT_EQ(store.set({1, "a"}).status(), custody::set_status::timeout);
  });
  auto got = taken.recv();
  ASSERT_TRUE(got);
  ASSERT_EQ(*got, 1);
  auto second = store.set({2, "b"});
  EXPECT_EQ(second.status(), custody::set_status::timeout);
  first.join();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, kTimeout);
  EXPECT_LT(took, 20s);  // answered by the remote store's timeout, not the exporter's
}

TEST(NatsRemoteStore, ViewsThatOutliveTheStoreAreAnsweredOwnerGone) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({5, "five"});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("gone"));
  std::jthread owner_task = run_owner(owner);
  custody::GetSetter<Reading> store;
  {
    nats::RemoteStore<Reading> remote(consumer_side, follow("gone"));
    store = remote;
    ASSERT_TRUE(store.set({6, "six"}).accepted());
  }
  EXPECT_EQ(store.set({7, "seven"}).status(), custody::set_status::owner_gone);
  EXPECT_EQ(store.get(), (Reading{6, "six"}));  // the last value stays readable
  EXPECT_EQ(local.get(), (Reading{6, "six"}));  // and nothing reached the owner
}

TEST(NatsRemoteStore, AClosedStoreWritesItsFinalValueAndStopsServing) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  nats::RemoteStore<Reading> remote(consumer_side, follow("d"));
  custody::Store<Reading> store = remote.store();
  auto sub = store.subscribe(custody::policy::block());
  {
    auto [owner, local] = custody::make_store<Reading>({1, "first"});
    nats::Exporter<Reading> exporter(owner_side, local, export_to("d"));
    ASSERT_EQ(owner.publish({2, "final"}), custody::status::ok);
    owner.close();
    // The exporter drains the closed store: the final value reaches the remote side.
    custody::Receiver<Reading> rx = sub;
    ASSERT_TRUE(receive_until(rx, Reading{2, "final"}, std::chrono::steady_clock::now() + 10s));
    // Once it has stopped serving, a set finds no responders.
    for (;;) {
      auto r = store.set_for({5, "late"}, 5s);
      ASSERT_NE(r.status(), custody::set_status::accepted);
      if (r.status() == custody::set_status::owner_gone) break;
    }
  }
  EXPECT_EQ(store.get(), (Reading{2, "final"}));
}

TEST(NatsRemoteStore, HostileRequestsAreAnsweredInvalidAndNeverReachTheOwner) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection raw_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({9, "kept"});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("e"));

  const std::string subject = nats::wire::request_subject("readings", "e");
  const std::vector<std::string> hostile = {"",
                                            "{",
                                            "not json",
                                            "[1,2,3]",
                                            R"({"n":"a string"})",
                                            R"({"n":1e400})",
                                            std::string(100000, '['),
                                            std::string("\xff\xfe\x00\x01", 4),
                                            R"({"note":"\ud800"})",
                                            R"({"n":1e30})",
                                            std::string(300, '[') + std::string(300, ']')};
  for (const std::string& payload : hostile) {
    natsMsg* reply = nullptr;
    ASSERT_EQ(natsConnection_Request(&reply, raw_side.native(), subject.c_str(), payload.data(),
                                     static_cast<int>(payload.size()), 5000),
              NATS_OK);
    nats::message owned(reply);
    const char* status = nullptr;
    ASSERT_EQ(natsMsgHeader_Get(reply, nats::wire::status_header, &status), NATS_OK);
    EXPECT_STREQ(status, "invalid") << "payload of " << payload.size() << " bytes";
    const char* why = nullptr;
    EXPECT_EQ(natsMsgHeader_Get(reply, nats::wire::message_header, &why), NATS_OK);
  }
  // None reached the owner: its request channel is empty and the value unchanged.
  EXPECT_FALSE(owner.requests().try_recv());
  EXPECT_EQ(local.get(), (Reading{9, "kept"}));
  EXPECT_EQ(exporter.stats().invalid_requests, hostile.size());
  EXPECT_EQ(exporter.stats().requests, 0u);
}

TEST(NatsRemoteStore, UndecodableEntriesAreSkippedAndCounted) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<Reading>({1, "good"});
  nats::Exporter<Reading> exporter(owner_side, local, export_to("f"));
  nats::RemoteStore<Reading> remote(consumer_side, follow("f"));
  custody::Store<Reading> store = remote.store();
  auto sub = store.subscribe(custody::policy::block().with_current());
  custody::Receiver<Reading> rx = sub;
  ASSERT_TRUE(receive_until(rx, Reading{1, "good"}, std::chrono::steady_clock::now() + 10s));
  // The first value came from the constructor's read; one that comes through the watch shows
  // the watch is there before the garbage is written (the bucket keeps one entry per key, so
  // entries written before it existed would be gone).
  ASSERT_EQ(owner.publish({2, "watched"}), custody::status::ok);
  ASSERT_TRUE(receive_until(rx, Reading{2, "watched"}, std::chrono::steady_clock::now() + 10s));

  // Someone else writes garbage under the key.
  nats::KeyValue intruder(owner_side, nats::bucket_options{"readings"});
  intruder.put("f", "{garbage");
  intruder.put("f", R"({"n":[]})");
  ASSERT_EQ(owner.publish({3, "after"}), custody::status::ok);
  ASSERT_TRUE(receive_until(rx, Reading{3, "after"}, std::chrono::steady_clock::now() + 10s));
  // The bucket keeps one revision per key, so the server may replace the first bad entry by
  // the second before the watch delivered it: one or two were seen, and skipped.
  EXPECT_GE(remote.stats().skipped, 1u);
  EXPECT_LE(remote.stats().skipped, 2u);
  EXPECT_EQ(store.get(), (Reading{3, "after"}));
}

TEST(NatsConnection, WrongCredentialsAreRefusedWithAClearError) {
  custody_test::NatsServer::Options server_options;
  server_options.user = "car";
  server_options.password = "secret";
  custody_test::NatsServer server(server_options);

  nats::connection_options good = options_for(server);
  good.user = "car";
  good.password = "secret";
  good.name = "custody test";
  EXPECT_NO_THROW(nats::Connection{good});

  nats::connection_options bad = good;
  bad.password = "guess";
  try {
    nats::Connection c(bad);
    FAIL() << "connected with a wrong password";
  } catch (const nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("uthorization"), std::string::npos) << e.what();
  }
}

// A codec of the user's own: an integer as decimal text, nothing else accepted.
struct decimal_codec {
  static std::string encode(const long& v) { return std::to_string(v); }
  static long decode(std::string_view bytes) {
    long v = 0;
    const auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), v);
    if (ec != std::errc() || end != bytes.data() + bytes.size() || bytes.empty()) {
      throw std::invalid_argument("not a decimal integer");
    }
    return v;
  }
};
static_assert(nats::codec_for<decimal_codec, long>);

TEST(NatsRemoteStore, ValuesCrossTheWireThroughTheCodecTheUserChose) {
  custody_test::NatsServer server;
  nats::Connection owner_side(options_for(server));
  nats::Connection consumer_side(options_for(server));
  auto [owner, local] = custody::make_store<long>(5);
  nats::export_options out;
  out.bucket.name = "numbers";
  out.key = "n";
  nats::Exporter<long, decimal_codec> exporter(owner_side, local, out);
  std::jthread owner_task([&owner = owner](std::stop_token stop) {
    for (;;) {
      auto r = owner.requests().recv(stop);
      if (!r) return;
      (void)owner.accept(std::move(*r), r->value() * 2);  // the owner doubles what it is asked
    }
  });
  nats::remote_options in;
  in.bucket.name = "numbers";
  in.key = "n";
  nats::RemoteStore<long, decimal_codec> remote(consumer_side, in);
  custody::Store<long> store = remote.store();
  auto values = store.subscribe(custody::policy::latest().with_current());
  for (;;) {  // the exporter's first write may still be on its way
    auto v = values.recv_for(10s);
    ASSERT_TRUE(v);
    if (*v == 5) break;
  }
  auto r = store.set(21);
  ASSERT_TRUE(r.accepted());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(store.get(), 42);
  // Other programs speak the codec's text too ("21", not JSON).
  natsMsg* reply = nullptr;
  const std::string subject = nats::wire::request_subject("numbers", "n");
  ASSERT_EQ(
      natsConnection_RequestString(&reply, consumer_side.native(), subject.c_str(), "21", 5000),
      NATS_OK);
  nats::message owned(reply);
  EXPECT_EQ(
      std::string(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply))),
      "42");
}

// Runs `command` through the shell; true when it exits 0.
bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(NatsConnection, TlsWithATrustedCaConnectsAndAnUntrustedOneIsRefused) {
  // A CA and a server certificate for 127.0.0.1, made for this test.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("custody-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  ASSERT_TRUE(
      run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=custody-test-ca "
          "-keyout " +
          d + "/ca.key -out " + d + "/ca.pem"));
  ASSERT_TRUE(
      run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca "
          "-keyout " +
          d + "/other.key -out " + d + "/other.pem"));
  ASSERT_TRUE(run("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d +
                  "/server.key -out " + d + "/server.csr"));
  ASSERT_TRUE(run("printf 'subjectAltName=IP:127.0.0.1' > " + d +
                  "/san.ext && openssl x509 "
                  "-req -in " +
                  d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
                  "/ca.key -CAcreateserial -days 2 -extfile " + d + "/san.ext -out " + d +
                  "/server.pem"));
  custody_test::NatsServer::Options server_options;
  server_options.tls_cert = d + "/server.pem";
  server_options.tls_key = d + "/server.key";
  custody_test::NatsServer server(server_options);

  nats::connection_options trusted = options_for(server);
  trusted.tls = nats::tls_options{d + "/ca.pem", "", ""};
  {
    nats::Connection c(trusted);
    EXPECT_TRUE(c.connected());
    nats::KeyValue kv(c, nats::bucket_options{"over-tls"});
    EXPECT_GT(kv.put("k", "1"), 0u);
  }
  nats::connection_options untrusted = trusted;
  untrusted.tls = nats::tls_options{d + "/other.pem", "", ""};
  untrusted.max_reconnects = 0;
  EXPECT_THROW(nats::Connection{untrusted}, nats::error);
  nats::connection_options plain = options_for(server);  // no TLS against a TLS server
  plain.max_reconnects = 0;
  EXPECT_THROW(nats::Connection{plain}, nats::error);
  nats::connection_options missing = trusted;
  missing.tls = nats::tls_options{d + "/no-such-ca.pem", "", ""};
  try {
    nats::Connection c(missing);
    FAIL() << "connected with a missing CA file";
  } catch (const nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("loading the TLS CA file"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(NatsConnection, NoServerIsAClearError) {
  nats::connection_options o;
  o.servers = {"nats://127.0.0.1:1"};  // nothing listens on port 1
  o.connect_timeout = 500ms;
  try {
    nats::Connection c(o);
    FAIL() << "connected to nothing";
  } catch (const nats::error& e) {
    EXPECT_EQ(e.code(), NATS_NO_SERVER) << e.what();
    EXPECT_NE(std::string(e.what()).find("nats://127.0.0.1:1"), std::string::npos) << e.what();
  }
}

TEST(NatsConnection, ErrorsNeverShowCredentials) {
  nats::connection_options o;
  o.servers = {"nats://car:secret@127.0.0.1:1"};
  o.connect_timeout = 500ms;
  try {
    nats::Connection c(o);
    FAIL() << "connected to nothing";
  } catch (const nats::error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;
    EXPECT_NE(what.find("nats://***@127.0.0.1:1"), std::string::npos) << what;
  }
}

TEST(NatsConnection, MisconfiguredOptionsAreRejected) {
  nats::connection_options none;
  none.servers.clear();
  EXPECT_THROW(nats::Connection{none}, std::invalid_argument);
  nats::connection_options half;
  half.tls = nats::tls_options{"", "cert.pem", ""};
  EXPECT_THROW(nats::Connection{half}, std::invalid_argument);
}

}  // namespace remote_store_test
}  // namespace
