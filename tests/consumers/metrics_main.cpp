// The custody::metrics consumer: builds and links against prometheus-cpp through the package,
// and serves /metrics on a free port. Exits 0 on success.

#include <cstdio>

#include <custody/metrics.hpp>

int main() {
  const custody::metrics::Exporter exporter("127.0.0.1:0");
  if (exporter.port() == 0) {
    std::fprintf(stderr, "metrics consumer: no port\n");
    return 1;
  }
  std::printf("metrics consumer: serving at %s\n", exporter.address().c_str());
  return 0;
}
