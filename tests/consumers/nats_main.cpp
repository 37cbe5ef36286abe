// The custody::nats consumer: builds and links against the NATS client through the package,
// and checks a connection failure is reported as custody::nats::error. Exits 0 on success.

#include <cstdio>

#include <custody/nats.hpp>

int main() {
  custody::nats::connection_options options;
  options.servers = {"nats://127.0.0.1:1"};  // nothing listens on port 1
  try {
    custody::nats::Connection connection(options);
  } catch (const custody::nats::error& e) {
    std::printf("nats consumer: %s\n", e.what());
    return 0;
  }
  std::fprintf(stderr, "nats consumer: connected to nothing?\n");
  return 1;
}
