#pragma once
// custody::metrics::Exporter: serves custody::inspect() as Prometheus metrics over HTTP
// (target custody::metrics, on prometheus-cpp).
//
//   custody::metrics::Exporter exporter("127.0.0.1:9464");
//   // curl http://127.0.0.1:9464/metrics
//
// Each scrape of /metrics takes one custody::inspect() snapshot and turns it into metric
// families (metrics/families.hpp) while it is served: named objects pay nothing per operation
// for being exported, only what inspect() reads. docs/metrics.md lists the metrics.

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "inspect.hpp"
#include "metrics/families.hpp"
#include "metrics/listen_address.hpp"

namespace custody::metrics {

/// What the HTTP server asks for at each scrape: the families of a fresh snapshot.
class inspection_collector final : public prometheus::Collectable {
 public:
  /// Takes one custody::inspect() snapshot and returns its metric families.
  std::vector<prometheus::MetricFamily> Collect() const override {
    return families(custody::inspect());
  }
};

/// Serves /metrics on one address from two server threads of its own, until destroyed.
///
/// Thread-safety: scrapes run on the server's threads, each taking a snapshot as inspect()
/// does (safe beside everything custody does); the Exporter itself is made and destroyed by one
/// thread.
class Exporter {
 public:
  /// Starts serving at `address`: "host:port" with a numeric IPv4 host; port 0 picks a free
  /// port (port() tells which). Throws std::invalid_argument if `address` is
  /// malformed, std::system_error (with the error the bind reported, e.g. address in use)
  /// naming the address if it cannot be listened on, and std::bad_alloc.
  explicit Exporter(std::string_view address)
      : collector_(std::make_shared<inspection_collector>()) {
    const listen_address where = listen_address::parse(address);
    if (const std::error_code problem = where.bind_problem()) throw cannot_listen(address, problem);
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(where.to_string());
    } catch (const std::exception&) {
      // Taken between the check and the server's bind: say why, as the check would have.
      const std::error_code problem = where.bind_problem();
      throw cannot_listen(address,
                          problem ? problem : std::make_error_code(std::errc::address_in_use));
    }
    exposer_->RegisterCollectable(collector_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    port_ = ports.empty() ? where.port : static_cast<std::uint16_t>(ports.front());
    address_ = listen_address{where.host, port_}.to_string();
  }

  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;
  /// Stops serving: waits for a scrape in progress, then the port is free again.
  ~Exporter() = default;

  /// The port it listens on (the one picked, when made with port 0).
  std::uint16_t port() const noexcept { return port_; }
  /// "host:port" with the port it listens on.
  const std::string& address() const noexcept { return address_; }

 private:
  static std::system_error cannot_listen(std::string_view address, std::error_code problem) {
    return std::system_error(problem, "custody::metrics: cannot listen on " + std::string(address));
  }

  std::shared_ptr<inspection_collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::uint16_t port_ = 0;
  std::string address_;
};

}  // namespace custody::metrics
