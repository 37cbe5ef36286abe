// expect: custody::on_recv needs a Receiver<T> or Channel<T>; a Sender<T> can only be used
// A Sender<T> is the sending end only: it cannot be received from, in a select or elsewhere.

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Sender<int> tx = ch.sender();
  custody::select(custody::on_recv(tx, [](int) {}), custody::on_default());
  return 0;
}
