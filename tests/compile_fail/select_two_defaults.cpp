// expect: custody::select: at most one on_default case
// on_default makes a select non-blocking; a second one could never be chosen.

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::select(custody::on_recv(ch, [](int) {}), custody::on_default(), custody::on_default());
  return 0;
}
