// expect: custody: a channel element type must be move-constructible
// A channel moves its values in and out, so an element type that cannot be moved is refused.

#include <mutex>

#include <custody/channel.hpp>

int main() {
  custody::Channel<std::mutex> ch(1);
  return ch.capacity() == 1 ? 0 : 1;
}
