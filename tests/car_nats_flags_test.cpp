// The --nats-* flags both car programs share: TLS files, one way to sign in with its secret in
// a file or an environment variable, and the bucket's replicas; every bad combination named.

#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "options.hpp"
#include "support/child_process.hpp"

namespace {

using Variables = std::map<std::string, std::string>;

car::Environment environment(Variables vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class CarNatsFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!car::nats_available()) GTEST_SKIP() << "this build has no NATS support";
    ASSERT_FALSE(dir_.path().empty());
    for (const char* name : {"ca.pem", "client.pem", "client.key", "car.creds"}) {
      write(name, "-----BEGIN-----\n");
    }
    write("token", "s3cret\n");
    write("password", "pa55word\r\n");
    write("empty", "\n");
  }

  const std::string& dir_path() const { return dir_.path(); }
  std::string path(const std::string& name) const { return dir_path() + "/" + name; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }

  // Both programs parse `flags` after --nats; the first's options, or its error.
  car::ParsedOptions car(std::vector<std::string> flags, Variables vars = {}) const {
    flags.insert(flags.begin(), {"--nats", "nats://127.0.0.1:4222"});
    const std::vector<std::string_view> args(flags.begin(), flags.end());
    return car::parse_options(args, environment(std::move(vars)));
  }
  car::ParsedMonitorOptions monitor(std::vector<std::string> flags, Variables vars = {}) const {
    flags.insert(flags.begin(), {"--nats", "nats://127.0.0.1:4222"});
    const std::vector<std::string_view> args(flags.begin(), flags.end());
    return car::parse_monitor_options(args, environment(std::move(vars)));
  }

 private:
  custody_test::TempDir dir_;
};

TEST_F(CarNatsFlags, FillInTheAccessOfBothPrograms) {
  const auto p = car({"--nats-ca", path("ca.pem"), "--nats-cert", path("client.pem"),
                      "--nats-key=" + path("client.key"), "--nats-user", "car",
                      "--nats-password-file", path("password"), "--nats-replicas", "3"});
  ASSERT_TRUE(p.options) << p.error;
  const car::NatsAccess& a = p.options->nats_access;
  EXPECT_TRUE(a.tls());
  EXPECT_EQ(a.ca_file, path("ca.pem"));
  EXPECT_EQ(a.cert_file, path("client.pem"));
  EXPECT_EQ(a.key_file, path("client.key"));
  EXPECT_EQ(a.user, "car");
  EXPECT_EQ(a.password_file, path("password"));
  EXPECT_EQ(a.password_env, "");
  EXPECT_EQ(a.replicas, 3);

  const auto m = monitor(
      {"--nats-ca", path("ca.pem"), "--nats-token-file", path("token"), "--nats-replicas", "5"});
  ASSERT_TRUE(m.options) << m.error;
  EXPECT_EQ(m.options->nats_access.ca_file, path("ca.pem"));
  EXPECT_EQ(m.options->nats_access.token_file, path("token"));
  EXPECT_EQ(m.options->nats_access.replicas, 5);
  const auto creds = monitor({"--nats-creds", path("car.creds")});
  ASSERT_TRUE(creds.options) << creds.error;
  EXPECT_EQ(creds.options->nats_access.creds_file, path("car.creds"));
  EXPECT_FALSE(creds.options->nats_access.tls());
}

TEST_F(CarNatsFlags, NoneGivenMeansPlainTextNoCredentialsAndTheBucketAsItIs) {
  const auto p = car({});
  ASSERT_TRUE(p.options) << p.error;
  const car::NatsAccess& a = p.options->nats_access;
  EXPECT_FALSE(a.tls());
  EXPECT_EQ(a.user + a.token_file + a.token_env + a.creds_file, "");
  EXPECT_FALSE(a.replicas);
  // Without --nats the variables are not even looked at.
  const std::vector<std::string_view> none;
  EXPECT_TRUE(car::parse_options(none, environment({{"CUSTODY_NATS_TOKEN", ""}})).options);
}

TEST_F(CarNatsFlags, SecretsComeFromTheEnvironmentWhenNoFileIsNamed) {
  const auto token = car({}, {{"CUSTODY_NATS_TOKEN", "s3cret"}});
  ASSERT_TRUE(token.options) << token.error;
  EXPECT_EQ(token.options->nats_access.token_env, "CUSTODY_NATS_TOKEN");
  EXPECT_EQ(token.options->nats_access.token_file, "");

  const auto password = monitor({"--nats-user", "car"}, {{"CUSTODY_NATS_PASSWORD", "pa55word"}});
  ASSERT_TRUE(password.options) << password.error;
  EXPECT_EQ(password.options->nats_access.password_env, "CUSTODY_NATS_PASSWORD");
  EXPECT_EQ(password.options->nats_access.password_file, "");
}

TEST_F(CarNatsFlags, BadCombinationsAreNamed) {
  struct Case {
    std::vector<std::string> flags;
    Variables vars;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--nats-cert", path("client.pem")}, {}, "--nats-cert: needs --nats-key"},
      {{"--nats-key", path("client.key")}, {}, "--nats-key: needs --nats-cert"},
      {{"--nats-ca", path("missing.pem")},
       {},
       "--nats-ca: cannot read '" + path("missing.pem") + "': No such file or directory"},
      {{"--nats-creds", dir_path()}, {}, "--nats-creds: '" + dir_path() + "' is a directory"},
      {{"--nats-token-file", path("empty")},
       {},
       "--nats-token-file: '" + path("empty") + "' is empty (it should hold the token)"},
      {{"--nats-user", "car", "--nats-password-file", path("empty")},
       {},
       "--nats-password-file: '" + path("empty") + "' is empty (it should hold the password)"},
      {{"--nats-replicas", "0"}, {}, "--nats-replicas: '0' is not a number of replicas (1 to 5)"},
      {{"--nats-replicas", "7"}, {}, "--nats-replicas: '7' is not a number of replicas (1 to 5)"},
      {{"--nats-replicas", "two"}, {}, "--nats-replicas: 'two' is not a number of replicas"},
      {{"--nats-user", ""}, {}, "--nats-user: the user name is empty"},
      {{"--nats-user", "car"},
       {},
       "--nats-user: needs a password: --nats-password-file FILE, or the environment variable "
       "CUSTODY_NATS_PASSWORD"},
      {{"--nats-password-file", path("password")},
       {},
       "--nats-password-file: needs --nats-user (the user whose password it holds)"},
      {{},
       {{"CUSTODY_NATS_PASSWORD", "pa55word"}},
       "CUSTODY_NATS_PASSWORD is set, but --nats-user"},
      {{}, {{"CUSTODY_NATS_TOKEN", ""}}, "CUSTODY_NATS_TOKEN is set, but empty"},
      {{"--nats-token-file", path("token")},
       {{"CUSTODY_NATS_TOKEN", "s3cret"}},
       "--nats-token-file and CUSTODY_NATS_TOKEN both give the token: use one"},
      {{"--nats-user", "car", "--nats-password-file", path("password")},
       {{"CUSTODY_NATS_PASSWORD", "pa55word"}},
       "--nats-password-file and CUSTODY_NATS_PASSWORD both give the password: use one"},
      {{"--nats-user", "car", "--nats-password-file", path("password"), "--nats-token-file",
        path("token")},
       {},
       "more than one way to sign in to NATS (--nats-user and --nats-token-file): give one"},
      {{"--nats-creds", path("car.creds")},
       {{"CUSTODY_NATS_TOKEN", "s3cret"}},
       "more than one way to sign in to NATS (CUSTODY_NATS_TOKEN and --nats-creds): give one"},
      {{"--nats-creds", path("car.creds"), "--nats-user", "car"},
       {{"CUSTODY_NATS_PASSWORD", "pa55word"}, {"CUSTODY_NATS_TOKEN", "s3cret"}},
       "more than one way to sign in to NATS (--nats-user, CUSTODY_NATS_TOKEN and --nats-creds)"},
      {{"--nats-ca", "--nats-key"}, {}, "--nats-ca: needs a value ('--nats-key' is a flag)"},
  };
  for (const Case& c : cases) {
    const auto p = car(c.flags, c.vars);
    EXPECT_FALSE(p.options) << c.expected;
    EXPECT_NE(p.error.find(c.expected), std::string::npos)
        << "custody-car error: " << p.error << "\nexpected: " << c.expected;
    const auto m = monitor(c.flags, c.vars);
    EXPECT_FALSE(m.options) << c.expected;
    EXPECT_EQ(m.error, p.error) << "the two programs say the same";
  }
}

TEST_F(CarNatsFlags, NoSecretOnTheCommandLine) {
  for (const char* url : {"nats://car:pa55word@127.0.0.1:4222", "tls://s3cret@127.0.0.1:4222"}) {
    const std::vector<std::string_view> args = {"--nats", url};
    const auto p = car::parse_options(args, environment({}));
    EXPECT_FALSE(p.options) << url;
    EXPECT_NE(p.error.find("@127.0.0.1:4222' carries credentials"), std::string::npos) << p.error;
    EXPECT_NE(p.error.find("***"), std::string::npos) << p.error;
    EXPECT_EQ(p.error.find("pa55word"), std::string::npos) << p.error;
    EXPECT_EQ(p.error.find("s3cret"), std::string::npos) << p.error;
    EXPECT_FALSE(car::parse_monitor_options(args, environment({})).options) << url;
  }
  // No flag takes a secret itself: every --nats-* flag is a file, a name or a number.
  for (const std::string flag : {"--nats-password", "--nats-token"}) {
    const auto p = car({flag, "s3cret"});
    EXPECT_NE(p.error.find("unknown flag '" + flag + "'"), std::string::npos) << p.error;
  }
}

TEST_F(CarNatsFlags, OnlyWithNats) {
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{{"--nats-ca", path("ca.pem")},
                                             {"--nats-replicas", "3"},
                                             {"--nats-token-file", path("token")}}) {
    const std::vector<std::string_view> args(flags.begin(), flags.end());
    const auto p = car::parse_options(args, environment({}));
    EXPECT_FALSE(p.options);
    EXPECT_EQ(p.error, flags[0] + ": only used with --nats (the NATS server to publish to)");
  }
}

TEST_F(CarNatsFlags, UsageListsThemAndTheVariables) {
  for (const std::string& text : {car::usage(), car::monitor_usage()}) {
    for (const char* word : {"--nats-ca", "--nats-cert", "--nats-key", "--nats-creds",
                             "--nats-token-file", "--nats-user", "--nats-password-file",
                             "--nats-replicas", "CUSTODY_NATS_TOKEN", "CUSTODY_NATS_PASSWORD"}) {
      EXPECT_NE(text.find(word), std::string::npos) << word;
    }
  }
}

}  // namespace
