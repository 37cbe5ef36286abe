// expect: custody::on_send needs a Sender<T> or Channel<T>; a Receiver<T> can only be used
// A Receiver<T> is the receiving end only: it cannot be sent on, in a select or elsewhere.

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Receiver<int> rx = ch.receiver();
  int value = 1;
  custody::select(custody::on_send(rx, value), custody::on_default());
  return 0;
}
