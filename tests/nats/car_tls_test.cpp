// custody-car and custody-car-monitor signing in to real nats-server processes with the --nats-*
// flags: a token or a password from a file or an environment variable, TLS with a CA and a
// client certificate made at test time, a plain-text server refused when TLS is asked for, and
// a bucket with three replicas on a three-server cluster. Refusals exit 1 with a message that
// says why; bad flags exit 2.
//
// Nothing here sleeps to synchronise: every step waits for a process's output or exit.

#include <stdlib.h>

#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <custody/nats.hpp>

#include "../support/child_process.hpp"
#include "../support/nats_server.hpp"
#include "../support/tls_certificates.hpp"

namespace {

using custody_test::NatsServer;
using custody_test::Process;

const std::regex kScreenReading(R"(^\d{2}:\d{2}:\d{2}\.\d{3}  speed +\d+\.\d{2} km/h  location )");

class CarSignsIn : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir.path().empty()) << "no temporary directory";
    // Neither variable leaks in from the environment the tests run in, nor from one test into
    // the next.
    ::unsetenv("CUSTODY_NATS_TOKEN");
    ::unsetenv("CUSTODY_NATS_PASSWORD");
  }
  void TearDown() override {
    ::unsetenv("CUSTODY_NATS_TOKEN");
    ::unsetenv("CUSTODY_NATS_PASSWORD");
  }

  std::string path(const std::string& name) const { return dir.path() + "/" + name; }
  std::string secret_file(const std::string& name, const std::string& secret) const {
    std::ofstream(path(name), std::ios::binary) << secret << "\n";
    return path(name);
  }

  // A car that stops by itself after a few readings: 0 when it ran, published and stopped.
  std::unique_ptr<Process> car(const std::string& url, const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"--nats",     url, "--poll-interval", "20ms",
                                     "--readings", "3", "--log-file",      path("car.log"),
                                     "--seed",     "1", "--quiet"};
    args.insert(args.end(), flags.begin(), flags.end());
    return std::make_unique<Process>("custody-car", CUSTODY_CAR_BINARY, args, dir.path());
  }

  std::unique_ptr<Process> monitor(const std::string& url, const std::vector<std::string>& flags,
                                   const std::string& name = "custody-car-monitor") {
    std::vector<std::string> args = {"--nats",     url,  "--log-file", path(name + ".log"),
                                     "--duration", "20s"};
    args.insert(args.end(), flags.begin(), flags.end());
    return std::make_unique<Process>(name, CUSTODY_CAR_MONITOR_BINARY, args, dir.path());
  }

  // The car ran to its --readings and wrote its data to the bucket.
  static void ran(Process& p) {
    EXPECT_EQ(p.finish(), 0) << p.err();
    EXPECT_EQ(p.err(), "");
    ASSERT_FALSE(p.out().empty());
    EXPECT_NE(p.out().back().find("stopped by --readings"), std::string::npos) << p.out().back();
  }

  // Exit 1, nothing started, and standard error says `why`.
  static void refused(Process& p, const std::string& why) {
    EXPECT_EQ(p.finish(), 1) << p.err();
    EXPECT_NE(p.err().find(why), std::string::npos) << p.err();
    EXPECT_NE(p.err().find("nothing was started"), std::string::npos) << p.err();
  }

  custody_test::TempDir dir;
};

TEST_F(CarSignsIn, WithATokenFromAFileOrTheEnvironment) {
  NatsServer::Options o;
  o.token = "s3cret-token";
  NatsServer server(o);
  const std::string token = secret_file("token", "s3cret-token");
  auto owner = car(server.url(), {"--nats-token-file", token});
  ran(*owner);

  ASSERT_EQ(::setenv("CUSTODY_NATS_TOKEN", "s3cret-token", 1), 0);
  auto from_env = car(server.url(), {});
  ran(*from_env);

  // A wrong token: the server refuses it, both programs say so and stop (the monitor does not
  // take a refusal for a server that is not up yet).
  ASSERT_EQ(::setenv("CUSTODY_NATS_TOKEN", "guess", 1), 0);
  auto wrong = car(server.url(), {});
  refused(*wrong, "uthorization");
  auto wrong_monitor = monitor(server.url(), {});
  refused(*wrong_monitor, "uthorization");
  ::unsetenv("CUSTODY_NATS_TOKEN");
  auto none = car(server.url(), {});
  refused(*none, "uthorization");
}

TEST_F(CarSignsIn, AsAUserWithAPasswordFromAFileOrTheEnvironment) {
  NatsServer::Options o;
  o.user = "car";
  o.password = "pa55word";
  NatsServer server(o);
  auto owner = car(server.url(), {"--nats-user", "car", "--nats-password-file",
                                  secret_file("password", "pa55word")});
  ran(*owner);

  ASSERT_EQ(::setenv("CUSTODY_NATS_PASSWORD", "pa55word", 1), 0);
  auto from_env = car(server.url(), {"--nats-user", "car"});
  ran(*from_env);
  auto wrong_user = car(server.url(), {"--nats-user", "bus"});
  refused(*wrong_user, "uthorization");
  ::unsetenv("CUSTODY_NATS_PASSWORD");
  auto wrong = car(server.url(),
                   {"--nats-user", "car", "--nats-password-file", secret_file("wrong", "guess")});
  refused(*wrong, "uthorization");
  EXPECT_EQ(wrong->err().find("guess"), std::string::npos) << "the secret is never shown";
}

TEST_F(CarSignsIn, OverTlsWithACaAndAClientCertificate) {
  custody_test::TlsCertificates certs;
  ASSERT_TRUE(certs.made()) << "openssl could not make the certificates";
  NatsServer::Options o;
  o.tls_cert = certs.path("server.pem");
  o.tls_key = certs.path("server.key");
  o.tls_verify_ca = certs.path("ca.pem");  // clients need a certificate the CA signed
  NatsServer server(o);
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());
  const std::vector<std::string> certified = {"--nats-ca",   certs.path("ca.pem"),
                                              "--nats-cert", certs.path("client.pem"),
                                              "--nats-key",  certs.path("client.key")};

  // The owner publishes until stopped, and a monitor with the same flags follows it.
  auto owner = std::make_unique<Process>(
      "custody-car", CUSTODY_CAR_BINARY,
      std::vector<std::string>{"--nats", url, "--poll-interval", "20ms", "--log-file",
                               path("car.log"), "--duration", "20s", "--nats-ca",
                               certs.path("ca.pem"), "--nats-cert", certs.path("client.pem"),
                               "--nats-key", certs.path("client.key")},
      dir.path());
  ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
  auto follower = monitor(url, certified);
  ASSERT_TRUE(follower->read_until(kScreenReading)) << follower->err();
  follower->signal(SIGTERM);
  EXPECT_EQ(follower->finish(), 0) << follower->err();
  owner->signal(SIGTERM);
  EXPECT_EQ(owner->finish(), 0) << owner->err();

  // Without a client certificate, or trusting another CA, the handshake fails.
  auto anonymous = car(url, {"--nats-ca", certs.path("ca.pem")});
  refused(*anonymous, "cannot connect to NATS at " + url);
  auto distrusting = car(url, {"--nats-ca", certs.path("other-ca.pem"), "--nats-cert",
                               certs.path("client.pem"), "--nats-key", certs.path("client.key")});
  refused(*distrusting, "cannot connect to NATS at " + url);
}

TEST_F(CarSignsIn, APlainTextServerIsRefusedWhenTlsIsAskedFor) {
  custody_test::TlsCertificates certs;
  ASSERT_TRUE(certs.made()) << "openssl could not make the certificates";
  NatsServer::Options o;
  o.user = "car";
  o.password = "pa55word";
  NatsServer plain(o);
  const std::string password = secret_file("password", "pa55word");
  // A tls:// URL: refused before the password is sent.
  auto by_url = car("tls://127.0.0.1:" + std::to_string(plain.port()),
                    {"--nats-user", "car", "--nats-password-file", password});
  refused(*by_url, "TLS is required by the tls:// URL, and the server does not offer it");
  // A nats:// URL with --nats-ca: TLS is required all the same.
  auto by_ca = car(plain.url(), {"--nats-ca", certs.path("ca.pem"), "--nats-user", "car",
                                 "--nats-password-file", password});
  refused(*by_ca, "TLS is required by --nats-ca/--nats-cert, and the server does not offer it");
  auto by_ca_monitor = monitor(plain.url(), {"--nats-ca", certs.path("ca.pem"), "--nats-user",
                                             "car", "--nats-password-file", password});
  refused(*by_ca_monitor, "TLS is required by --nats-ca/--nats-cert");
}

TEST_F(CarSignsIn, BadFlagsExit2BeforeAnythingIsTried) {
  NatsServer server;
  auto too_many = car(server.url(), {"--nats-replicas", "7"});
  EXPECT_EQ(too_many->finish(), 2);
  EXPECT_NE(too_many->err().find("--nats-replicas: '7' is not a number of replicas (1 to 5)"),
            std::string::npos)
      << too_many->err();
  auto half_pair = monitor(server.url(), {"--nats-cert", secret_file("client.pem", "-")});
  EXPECT_EQ(half_pair->finish(), 2);
  EXPECT_NE(half_pair->err().find("--nats-cert: needs --nats-key"), std::string::npos)
      << half_pair->err();
  auto in_url = car("nats://car:pa55word@127.0.0.1:" + std::to_string(server.port()), {});
  EXPECT_EQ(in_url->finish(), 2);
  EXPECT_NE(in_url->err().find("carries credentials"), std::string::npos) << in_url->err();
  EXPECT_EQ(in_url->err().find("pa55word"), std::string::npos) << in_url->err();
}

TEST_F(CarSignsIn, ABucketWithThreeReplicasOnAThreeServerCluster) {
  custody_test::NatsCluster cluster;
  std::string urls;
  for (const std::string& url : cluster.urls()) urls += (urls.empty() ? "" : ",") + url;
  // The cluster may refuse the first bucket for a moment while its members join (see
  // NatsCluster): that is a refusal the car reports, so it is asked again until it runs.
  std::unique_ptr<Process> owner;
  for (int attempt = 1;; ++attempt) {
    owner = car(urls, {"--nats-replicas", "3"});
    if (owner->finish() == 0 || attempt == 5) break;
  }
  EXPECT_EQ(owner->err(), "");
  ASSERT_FALSE(owner->out().empty());
  EXPECT_NE(owner->out().back().find("stopped by --readings"), std::string::npos);

  custody::nats::connection_options o;
  o.servers = cluster.urls();
  custody::nats::Connection c(o);
  custody::nats::KeyValue bucket(c, custody::nats::bucket_options{"car"});
  EXPECT_EQ(bucket.replicas(), 3);
  EXPECT_TRUE(bucket.get("data")) << "the car wrote its data";

  // A monitor asking for another count is told the bucket's, and stops.
  auto other = monitor(urls, {"--nats-replicas", "1"});
  refused(*other, "key-value bucket 'car' exists with 3 replicas, not the 1 --nats-replicas");
}

TEST_F(CarSignsIn, ReplicasAreSetWhenTheBucketIsMade) {
  NatsServer server;
  auto r1 = car(server.url(), {"--nats-replicas", "1"});
  ran(*r1);
  auto r3 = car(server.url(), {"--nats-replicas", "3"});
  refused(*r3, "key-value bucket 'car' exists with 1 replica, not the 3 --nats-replicas asks for");
  // A new bucket with more replicas than the servers: the server's refusal, exit 1.
  auto lone = car(server.url(), {"--nats-replicas", "3", "--nats-bucket", "r3"});
  refused(*lone, "cannot open or create key-value bucket 'r3'");
}

}  // namespace
