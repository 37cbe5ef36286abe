#pragma once
// Test helper: a real nats-server (Debian package "nats-server") owned by one test.
//
// Each NatsServer gets its own port and its own temporary directory (JetStream store and log),
// so tests can run in parallel under ctest -j. kill()/restart() keep the port and the store,
// which is what "the broker crashed and came back" looks like to a client.
//
// NatsCluster starts several as one JetStream cluster.
//
// Limitation: if the test process itself dies without unwinding (watchdog abort, SIGKILL), the
// destructor cannot run and the server is left behind.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "find_program.hpp"

extern char** environ;  // NOLINT: POSIX leaves declaring it to the program

namespace custody_test {

class NatsCluster;

struct NatsServerOptions {
  bool jetstream = true;
  // Either user + password, or token, or neither.
  std::string user;
  std::string password;
  std::string token;
  // Both set: clients must use TLS; the server presents this certificate (PEM files).
  std::string tls_cert;
  std::string tls_key;
  // Set (with the two above): clients must also present a certificate this CA signed.
  std::string tls_verify_ca;
  // NKey users (their public keys, "U..."): set, clients must sign in as one of them.
  std::vector<std::string> nkey_users;
  // More configuration, in nats-server's configuration file syntax (an operator's trusted
  // keys and accounts, ...).
  std::string config;
  // The client port to try first; 0: any free one.
  int port = 0;
  // Set: a member of the cluster `cluster_name`, named `server_name`, taking routes on
  // `cluster_port` and routing to `routes` (see NatsCluster).
  std::string cluster_name;
  std::string server_name;
  int cluster_port = 0;
  std::vector<std::string> routes;
};

class NatsServer {
 public:
  using Options = NatsServerOptions;

  explicit NatsServer(Options options = {}) : options_(std::move(options)) {
    if (!options_.token.empty() && (!options_.user.empty() || !options_.password.empty())) {
      throw std::invalid_argument("NatsServer: use either user/password or token, not both");
    }
    executable_ = find_executable();
    dir_ = make_temp_dir();
    try {
      std::filesystem::create_directory(store_dir());
      // Another process may grab the port between our probe and the server's bind; a fresh
      // port is as good as the old one for a first start, so just try again.
      for (int attempt = 1;; ++attempt) {
        port_ = options_.port != 0 && attempt == 1 ? options_.port : pick_free_port();
        if (start_and_wait(std::chrono::seconds(10))) {
          break;
        }
        if (attempt == 3) {
          throw std::runtime_error("NatsServer: nats-server did not start on port " +
                                   std::to_string(port_) + "; log tail:\n" + log_tail());
        }
      }
    } catch (...) {
      cleanup();
      throw;
    }
  }

  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;
  NatsServer(NatsServer&&) = delete;
  NatsServer& operator=(NatsServer&&) = delete;

  ~NatsServer() { cleanup(); }

  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::filesystem::path store_dir() const { return dir_ / "store"; }
  [[nodiscard]] std::filesystem::path log_path() const { return dir_ / "nats-server.log"; }
  [[nodiscard]] bool running() const { return pid_ > 0; }

  // Simulates a crash: no shutdown, no flush, clients see the connection drop.
  void kill() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      reap();
    }
  }

  // Freezes the server (SIGSTOP): its sockets stay open and nothing answers, as with a hung
  // machine or a half-open link. thaw() lets it go on.
  void freeze() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGSTOP);
    }
  }
  void thaw() noexcept {
    if (pid_ > 0) {
      ::kill(pid_, SIGCONT);
    }
  }

  // Graceful shutdown; escalates to SIGKILL so a wedged server cannot hang the test.
  void stop() noexcept {
    if (pid_ <= 0) {
      return;
    }
    thaw();  // a frozen server cannot act on SIGTERM
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (try_reap()) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill();
  }

  // Same port, but the store directory emptied first: the server comes back without any
  // JetStream state, as after losing its disk.
  void restart_empty() {
    stop();
    std::filesystem::remove_all(store_dir());
    std::filesystem::create_directory(store_dir());
    restart();
  }

  // Same port and store as before, so clients reconnect to the "same" server and JetStream
  // state (streams, KV buckets) survives.
  void restart() {
    stop();
    // The old listening socket can linger for a moment after the process dies; the server then
    // fails with "address already in use" and exits, so keep respawning for a few seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!start_and_wait(std::chrono::seconds(10))) {
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error("NatsServer: restart on port " + std::to_string(port_) +
                                 " failed; log tail:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  friend class NatsCluster;

  // Spawns the server and waits until it is ready. Returns false if the server exited before
  // becoming ready (typically: port in use); throws if it neither exits nor becomes ready.
  bool start_and_wait(std::chrono::seconds timeout) {
    // The log is appended to across restarts (useful when debugging a failure), so only text
    // written after this point counts as "ready".
    std::error_code ec;
    std::uintmax_t log_offset = std::filesystem::file_size(log_path(), ec);
    if (ec) {
      log_offset = 0;  // no log yet
    }
    spawn();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (try_reap()) {
        return false;
      }
      // Each signal alone can mislead: a connect may reach whoever else holds the port, and the
      // log line is written a moment before the listener is guaranteed reachable from here.
      if (log_contains_after("Server is ready", log_offset) && accepts_connections()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill();
    throw std::runtime_error("NatsServer: nats-server on port " + std::to_string(port_) +
                             " not ready after " + std::to_string(timeout.count()) +
                             " s; log tail:\n" + log_tail());
  }

  void spawn() {
    std::vector<std::string> args = {"nats-server", "-a", "127.0.0.1", "-p", std::to_string(port_)};
    if (options_.jetstream) {
      args.insert(args.end(), {"-js", "-sd", store_dir().string()});
    }
    if (!options_.user.empty() || !options_.password.empty()) {
      args.insert(args.end(), {"--user", options_.user, "--pass", options_.password});
    }
    if (!options_.tls_cert.empty()) {
      args.insert(args.end(),
                  {"--tls", "--tlscert", options_.tls_cert, "--tlskey", options_.tls_key});
    }
    if (!options_.tls_verify_ca.empty()) {
      args.insert(args.end(), {"--tlsverify", "--tlscacert", options_.tls_verify_ca});
    }
    if (!options_.token.empty()) {
      args.insert(args.end(), {"--auth", options_.token});
    }
    if (!options_.nkey_users.empty() || !options_.config.empty()) {
      // NKey users and the rest have no command-line flags: a configuration file.
      const std::filesystem::path config = dir_ / "server.conf";
      std::ofstream out(config);
      if (!options_.nkey_users.empty()) {
        out << "authorization { users = [\n";
        for (const std::string& key : options_.nkey_users) out << "  { nkey: " << key << " }\n";
        out << "] }\n";
      }
      out << options_.config << "\n";
      args.insert(args.end(), {"-c", config.string()});
    }
    if (!options_.cluster_name.empty()) {
      std::string routes;
      for (const std::string& route : options_.routes) {
        routes += (routes.empty() ? "" : ",") + route;
      }
      args.insert(
          args.end(),
          {"--cluster_name", options_.cluster_name, "--name", options_.server_name, "--cluster",
           "nats://127.0.0.1:" + std::to_string(options_.cluster_port), "--routes", routes});
    }
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& arg : args) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    const std::string log = log_path().string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, executable_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      throw std::runtime_error("NatsServer: cannot start " + executable_ + ": " +
                               std::generic_category().message(rc));
    }
    pid_ = pid;
  }

  // Returns true if the process has exited (and is now reaped).
  bool try_reap() noexcept {
    if (pid_ <= 0) {
      return true;
    }
    int status = 0;
    pid_t r = 0;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      return false;
    }
    pid_ = -1;  // exited, or (r < 0) not our child any more: nothing left to wait for
    return true;
  }

  void reap() noexcept {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  void cleanup() noexcept {
    stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  bool accepts_connections() const noexcept {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return false;
    }
    const sockaddr_in addr = loopback(port_);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  bool log_contains_after(const std::string& needle, std::uintmax_t offset) const {
    std::ifstream in(log_path(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find(needle) != std::string::npos;
  }

  std::string log_tail() const {
    std::ifstream in(log_path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    constexpr std::size_t kTail = 2000;
    if (text.size() <= kTail) {
      return text;
    }
    const std::size_t cut = text.find('\n', text.size() - kTail);  // start at a whole line
    return cut == std::string::npos ? text.substr(text.size() - kTail) : text.substr(cut + 1);
  }

  static sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  // Racy by nature (the port is free only until someone else takes it); the constructor
  // retries with a new port if the server fails to bind.
  static int pick_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      throw std::system_error(errno, std::generic_category(), "NatsServer: socket");
    }
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      const int err = errno;
      ::close(fd);
      throw std::system_error(err, std::generic_category(), "NatsServer: pick free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  static std::filesystem::path make_temp_dir() {
    const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): tests don't setenv
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/custody-nats-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "NatsServer: mkdtemp " + templ);
    }
    return templ;
  }

  // Debian installs nats-server in /usr/sbin, which is not on a normal user's PATH (only
  // root's), so look there too before giving up.
  static std::string find_executable() {
    std::string found = find_program("nats-server", "/usr/sbin");
    if (found.empty()) {
      throw std::runtime_error(
          "NatsServer: 'nats-server' not found on PATH or in /usr/sbin; install Debian's "
          "package: apt-get install nats-server");
    }
    return found;
  }

  Options options_;
  std::string executable_;
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Nats-server processes on loopback forming one JetStream cluster (three by default): each has
// its own client port, route port and store directory, and routes to all the others. Ready
// once JetStream has a metadata leader; the first bucket made may still be refused or time out
// for a moment, until every member has joined.
class NatsCluster {
 public:
  explicit NatsCluster(std::size_t size = 3) {
    // All ports picked here, so that none is picked twice: a route port that is also a
    // member's client port keeps the cluster from ever forming.
    std::vector<int> ports;
    while (ports.size() < 2 * size) {
      const int port = NatsServer::pick_free_port();
      if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
        ports.push_back(port);
      }
    }
    const std::vector<int> route_ports(ports.begin() + static_cast<long>(size), ports.end());
    std::vector<std::string> routes;
    for (const int port : route_ports) routes.push_back("nats://127.0.0.1:" + std::to_string(port));
    for (std::size_t i = 0; i < size; ++i) {
      NatsServer::Options o;
      o.cluster_name = "custody-test";
      o.server_name = "n" + std::to_string(i + 1);
      o.port = ports[i];
      o.cluster_port = route_ports[i];
      o.routes = routes;  // a route to itself the server recognises and drops
      servers_.push_back(std::make_unique<NatsServer>(o));
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!has_metadata_leader()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        std::string logs;
        for (const auto& s : servers_) logs += "--- " + s->url() + ":\n" + s->log_tail();
        throw std::runtime_error("NatsCluster: JetStream not formed after 20 s; logs:\n" + logs);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  [[nodiscard]] std::size_t size() const { return servers_.size(); }
  NatsServer& server(std::size_t i) { return *servers_.at(i); }

  // Every member's client URL.
  [[nodiscard]] std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& s : servers_) out.push_back(s->url());
    return out;
  }

  // The member whose client port `url` (nats://127.0.0.1:4222, as a client reports the server
  // it is connected to) names; size() when none does.
  [[nodiscard]] std::size_t index_of(const std::string& url) const {
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      const std::string port = ":" + std::to_string(servers_[i]->port());
      if (url.size() >= port.size() &&
          url.compare(url.size() - port.size(), port.size(), port) == 0) {
        return i;
      }
    }
    return servers_.size();
  }

 private:
  // JetStream has a metadata leader. (Members that joined after the election say nothing in
  // their logs; until they have, an R3 bucket may be refused for want of peers.)
  bool has_metadata_leader() const {
    return std::any_of(servers_.begin(), servers_.end(),
                       [](const auto& s) { return s->log_contains_after("metadata leader", 0); });
  }

  std::vector<std::unique_ptr<NatsServer>> servers_;
};

}  // namespace custody_test
