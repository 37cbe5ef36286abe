// custody-demo: the smallest custody program. A buffered channel carries one
// value from a sender to a receiver.

#include <iostream>

#include <custody/channel.hpp>

int main() {
  custody::Channel<int> ch(4);
  (void)ch.send(1);
  auto r = ch.recv();
  std::cout << "received " << *r << " over a custody channel\n";
  ch.close();
  return 0;
}
