// The program every consumer project in tests/consumers/ builds: a producer thread sends over a
// buffered channel and closes it; main receives in a select beside a timeout. Exits 0 when every
// value arrived.

#include <chrono>
#include <cstdio>
#include <thread>

#include <custody/channel.hpp>
#include <custody/select.hpp>

int main() {
  constexpr int count = 100;
  custody::Channel<int> ch(8);
  std::jthread producer([tx = ch.sender()]() mutable {
    for (int i = 1; i <= count; ++i) {
      if (tx.send(i) != custody::status::ok) return;
    }
    tx.close();
  });

  long sum = 0;
  bool open = true;
  auto add = [&](int v) { sum += v; };
  auto closed = [&] { open = false; };
  while (open) {
    const auto r = custody::select(custody::on_recv(ch.receiver(), add, closed),
                                   custody::on_timeout(std::chrono::seconds(10)));
    if (r.status == custody::status::timeout) {
      std::fprintf(stderr, "consumer: timed out waiting for the producer\n");
      return 1;
    }
  }
  const long expected = long{count} * (count + 1) / 2;
  std::printf("consumer: received sum %ld (expected %ld)\n", sum, expected);
  return sum == expected ? 0 : 1;
}
