// expect: custody::on_recv: the callable must accept the channel's value type
// The callable of a receive case is called with the received value (a T&&).

#include <string>

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::select(custody::on_recv(ch, [](const std::string&) {}), custody::on_default());
  return 0;
}
