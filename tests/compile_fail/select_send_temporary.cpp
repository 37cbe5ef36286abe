// expect: expects an lvalue|cannot bind non-const lvalue reference
// on_send takes the value by reference and moves from it only if the case commits, so that a
// value not sent stays with its owner: it needs a named variable, not a temporary.

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::select(custody::on_send(ch, 5), custody::on_default());
  return 0;
}
