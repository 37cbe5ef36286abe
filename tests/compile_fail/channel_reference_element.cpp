// expect: custody: a channel element type must be a non-const, non-volatile object type
// Channels carry values, not references: send a pointer or a std::reference_wrapper instead.

#include <custody/channel.hpp>

int main() {
  custody::Channel<int&> ch(1);
  return ch.capacity() == 1 ? 0 : 1;
}
