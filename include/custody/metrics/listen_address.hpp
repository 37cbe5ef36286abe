#pragma once
// The address a metrics::Exporter listens on: "host:port", checked before serving starts so
// that a mistake is reported precisely (the HTTP server itself only says that it failed).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace custody::metrics {

/// A parsed listening address: a numeric IPv4 address and a port (0: any free port). IPv4 only:
/// the HTTP server prometheus-cpp is built with on Debian (civetweb) has no IPv6.
struct listen_address {
  std::string host;        ///< dotted IPv4, as given
  std::uint16_t port = 0;  ///< 0: any free port

  /// Parses "127.0.0.1:9464". Throws std::invalid_argument naming `text` and what is wrong
  /// with it.
  static listen_address parse(std::string_view text) {
    std::string why;
    std::optional<listen_address> a = parse(text, why);
    if (!a) throw std::invalid_argument("custody::metrics: " + why);
    return *a;
  }

  /// What is wrong with `text` as an address to listen on, naming it; empty if nothing is.
  static std::string problem(std::string_view text) {
    std::string why;
    return parse(text, why) ? std::string() : why;
  }

  /// As the HTTP server's listening_ports option spells it.
  std::string to_string() const { return host + ":" + std::to_string(port); }

  /// Why listening here would fail (e.g. address_in_use, or an address this machine does not
  /// have), or an empty code if a socket could bind to it now.
  std::error_code bind_problem() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {errno, std::system_category()};
    // As the server binds: an address in TIME_WAIT is free, one being listened on is not.
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &in.sin_addr);
    std::error_code problem;
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API's own cast
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&in), sizeof in) != 0) {
      problem = {errno, std::system_category()};
    }
    ::close(fd);
    return problem;
  }

 private:
  static std::optional<listen_address> parse(std::string_view text, std::string& why) {
    const auto refuse = [&](std::string_view what) {
      why = "\"" + std::string(text) + "\" is not an address to listen on: " + std::string(what) +
            " (use host:port with a numeric IPv4 host, e.g. 127.0.0.1:9464)";
      return std::nullopt;
    };
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return refuse("no port");
    listen_address a;
    a.host = std::string(text.substr(0, colon));
    in_addr parsed{};
    if (::inet_pton(AF_INET, a.host.c_str(), &parsed) != 1) {
      return refuse("the host is not a numeric IPv4 address");
    }
    const std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535) {
      return refuse("the port is not a number from 0 to 65535");
    }
    a.port = static_cast<std::uint16_t>(value);
    return a;
  }
};

}  // namespace custody::metrics
