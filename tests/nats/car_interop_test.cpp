// The car example and a client nobody on this project wrote: tests/nats/interop/car-client.mjs,
// on the official nats.js client, reads what `custody-car --nats` publishes and sends it set
// requests the way a third party would. It catches wire-format mistakes that custody's own
// C++ sides would both make, and so agree on.
//
// The client's dependencies are installed with `npm ci` (the exact locked versions) into a copy
// of tests/nats/interop in the build tree, once: later runs find them installed. Node.js and npm
// must be on PATH.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/nats.hpp>

#include "../support/child_process.hpp"
#include "../support/nats_server.hpp"
#include "car_data.hpp"
#include "car_json.hpp"
#include "car_nats.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using custody_test::Process;
using custody_test::read_file;
using custody_test::TempDir;
using nlohmann::json;

// Only reached when something is broken: a bound on waiting, never a synchronisation. Below
// the test watchdog's 60 s, so a failure names what was awaited.
constexpr auto kTimeout = 20s;
// npm ci may have to download the packages (a few hundred kB) on a first run. Not under the
// watchdog (it runs before the first test starts), but under CTest's 120 s.
constexpr auto kNpmTimeout = 90s;

// --- the client, installed once -------------------------------------------------------------

namespace fs = std::filesystem;

// Copies the client into the build tree and installs its dependencies there with npm ci,
// unless a previous run did so for the same package files. Tests running at once (ctest -j)
// take turns through a lock file. Returns what went wrong, or nothing.
std::string install_client() {
  const fs::path source = CUSTODY_CAR_INTEROP_SOURCE;
  const fs::path copy = CUSTODY_CAR_INTEROP_COPY;
  std::error_code ec;
  fs::create_directories(copy, ec);
  if (ec) return "cannot create " + copy.string() + ": " + ec.message();
  const std::string lock_path = (copy / ".install.lock").string();
  const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0) return "cannot open " + lock_path + ": " + std::strerror(errno);
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // releases the lock
  } unlock{lock};
  while (::flock(lock, LOCK_EX) != 0) {
    if (errno != EINTR) return "cannot lock " + lock_path + ": " + std::strerror(errno);
  }

  std::string stamp;
  for (const char* file : {"package.json", "package-lock.json", "car-client.mjs"}) {
    const std::string text = read_file((source / file).string());
    if (text.empty()) return "missing or empty: " + (source / file).string();
    if (read_file((copy / file).string()) != text) {
      std::ofstream((copy / file).string(), std::ios::trunc) << text;
    }
    if (std::string(file) != "car-client.mjs") stamp += text;
  }
  const fs::path stamp_path = copy / "node_modules" / ".custody-installed";
  if (read_file(stamp_path.string()) == stamp) return {};  // installed by an earlier run

  const std::string missing =
      " not found on PATH: the interop test runs a Node.js client (Node.js 18 or newer with "
      "npm; Debian: apt-get install nodejs npm)";
  try {
    Process node("node-version", "node", {"--version"}, copy.string());
    if (node.finish() != 0) return "node --version failed: " + node.err();
  } catch (const std::system_error&) {
    return "node" + missing;
  }
  try {
    Process npm("npm-ci", "npm",
                {"ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", copy.string()},
                copy.string(), kNpmTimeout);
    if (const int rc = npm.finish(); rc != 0) {
      std::string out;
      for (const std::string& line : npm.out()) out += line + "\n";
      return "npm ci --prefix " + copy.string() + " failed (exit code " + std::to_string(rc) +
             "):\n" + out + npm.err();
    }
  } catch (const std::system_error&) {
    return "npm" + missing;
  }
  std::ofstream(stamp_path.string(), std::ios::trunc) << stamp;
  return {};
}

// What the client printed, by the first word of each line.
struct ClientRun {
  int exit_code = -1;
  std::vector<std::string> out;
  std::string err;

  std::optional<std::string> line(const std::string& first_word) const {
    for (const std::string& l : out) {
      if (l.rfind(first_word + " ", 0) == 0) return l.substr(first_word.size() + 1);
    }
    return std::nullopt;
  }
  std::string text() const {
    std::string all;
    for (const std::string& l : out) all += l + "\n";
    return all + "stderr: " + err;
  }
};

json parse(const std::optional<std::string>& text) {
  EXPECT_TRUE(text);
  if (!text) return {};
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "not JSON: " << *text << " (" << e.what() << ")";
    return {};
  }
}

const std::regex kScreenReading(
    R"(^\d{2}:\d{2}:\d{2}\.\d{3}  speed +\d+\.\d{2} km/h  location +\d+\.\d{2} m  connected)");

class CarInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { install_error() = install_client(); }

  static std::string& install_error() {
    static std::string error;
    return error;
  }

  void SetUp() override {
    ASSERT_TRUE(install_error().empty()) << install_error();
    ASSERT_FALSE(dir.path().empty()) << "no temporary directory";
    // The owner alone changes the speed: its own increase task would first ask in an hour.
    owner = std::make_unique<Process>(
        "custody-car", CUSTODY_CAR_BINARY,
        std::vector<std::string>{"--nats", server.url(), "--poll-interval", "50ms",
                                 "--increase-every", "1h", "--log-file", dir.path() + "/car.log",
                                 "--duration", "50s"},
        dir.path());
    ASSERT_TRUE(owner->read_until(kScreenReading)) << owner->err();
    // The client expects both keys: wait until the exporters have written a reading and the
    // link state that came with it.
    custody::nats::connection_options options;
    options.servers = {server.url()};
    connection.emplace(options);
    data.emplace(*connection, car::follow("car", car::kDataKey));
    status.emplace(*connection, car::follow("car", car::kStatusKey));
    ASSERT_TRUE(wait_for_data([](const car::CarData& d) { return d.measured(); }));
    auto link = status->store().subscribe(custody::policy::latest().with_current());
    const auto deadline = Clock::now() + kTimeout;
    bool connected = false;
    while (!connected) {
      auto s = link.recv_until(deadline);
      ASSERT_TRUE(s) << "the status never read 'connected' in the bucket";
      connected = s->connected;
    }
  }

  void TearDown() override {
    if (!owner) return;
    owner->signal(SIGTERM);
    EXPECT_EQ(owner->finish(), 0) << owner->err();
    EXPECT_EQ(owner->err(), "");
  }

  // Until the bucket's data satisfies `ok`.
  template <class Pred>
  bool wait_for_data(Pred ok) {
    auto updates = data->store().subscribe(custody::policy::latest().with_current());
    const auto deadline = Clock::now() + kTimeout;
    for (;;) {
      auto d = updates.recv_until(deadline);
      if (!d) return false;
      if (ok(*d)) return true;
    }
  }

  ClientRun run_client(const std::string& speed) {
    Process client(
        "car-client", "node",
        {std::string(CUSTODY_CAR_INTEROP_COPY) + "/car-client.mjs", server.url(), "car", speed},
        dir.path());
    ClientRun r;
    r.exit_code = client.finish();
    r.out = client.out();
    r.err = client.err();
    return r;
  }

  custody_test::NatsServer server;
  TempDir dir;
  std::unique_ptr<Process> owner;
  std::optional<custody::nats::Connection> connection;
  std::optional<custody::nats::RemoteStore<car::CarData>> data;
  std::optional<custody::nats::RemoteStore<car::CarStatus>> status;
};

TEST_F(CarInterop, ASetRequestFromNodeReachesTheCarAndTheBucket) {
  const ClientRun r = run_client("42");
  ASSERT_EQ(r.exit_code, 0) << r.text();

  // What it read: the fields, as car_json.hpp writes them.
  const json d = parse(r.line("data"));
  EXPECT_TRUE(d["speed"].is_number()) << d;
  EXPECT_TRUE(d["location"].is_number()) << d;
  EXPECT_TRUE(d["time"].is_number_integer()) << d;
  EXPECT_GT(d["time"].get<std::int64_t>(), 1'600'000'000'000) << "milliseconds since 1970";
  const json s = parse(r.line("status"));
  EXPECT_EQ(s["connected"], true) << s;
  for (const char* field :
       {"disconnects", "failed_attempts", "retry_in_polls", "changed", "changes"}) {
    EXPECT_TRUE(s[field].is_number_integer()) << field << ": " << s;
  }
  EXPECT_TRUE(s["last_error"].is_string()) << s;

  // The answer: accepted, with the version of the value the owner stored, and that value.
  const auto set = r.line("set");
  ASSERT_TRUE(set) << r.text();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(*set, m, std::regex(R"(^accepted (\d+) (\{.*\})$)"))) << *set;
  EXPECT_GT(std::stoull(m[1]), 0u) << "a version";
  const json stored = json::parse(m[2].str());
  EXPECT_EQ(stored["speed"], 42.0) << stored;
  EXPECT_TRUE(stored["time"].is_number_integer()) << stored;
  const json after = parse(r.line("after"));
  EXPECT_EQ(after["speed"], 42.0) << after;

  // The car was set: its owner reads 42 km/h from it, and so does every consumer.
  ASSERT_TRUE(owner->read_until(std::regex("  speed +42\\.00 km/h  "))) << owner->err();
  EXPECT_TRUE(wait_for_data([](const car::CarData& d) { return d.speed == 42; }));
}

TEST_F(CarInterop, ANegativeSpeedIsRejectedWithTheCarsReason) {
  const ClientRun r = run_client("-5");
  ASSERT_EQ(r.exit_code, 0) << r.text();
  EXPECT_EQ(r.line("set"), "rejected - the car refused: Invalid argument") << r.text();
  EXPECT_EQ(r.line("rejected"), "22 generic") << r.text();  // EINVAL
  EXPECT_FALSE(r.line("after")) << r.text();
  EXPECT_EQ(data->store().get().speed, 0) << "nothing changed";
}

TEST_F(CarInterop, ASpeedThatIsNotANumberIsRefusedBeforeReachingTheOwner) {
  const ClientRun r = run_client(R"("fast")");
  ASSERT_EQ(r.exit_code, 0) << r.text();
  const auto set = r.line("set");
  ASSERT_TRUE(set) << r.text();
  EXPECT_EQ(set->rfind("invalid - ", 0), 0u) << *set;
  EXPECT_NE(set->find(R"(CarData: "speed" must be a number, not string)"), std::string::npos)
      << *set;
  EXPECT_EQ(data->store().get().speed, 0) << "nothing changed";

  // The owner is unharmed: the next request is served.
  const ClientRun next = run_client("7.5");
  ASSERT_EQ(next.exit_code, 0) << next.text();
  EXPECT_EQ(next.line("set").value_or("").rfind("accepted ", 0), 0u) << next.text();
  EXPECT_EQ(parse(next.line("after"))["speed"], 7.5) << next.text();
}

}  // namespace
