// expect: custody::select: every argument must be a case made by on_recv, on_send, on_stop
// select() takes cases, not channels: wrap the receiver in custody::on_recv(rx, fn).

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Receiver<int> rx = ch.receiver();
  custody::select(rx, custody::on_default());
  return 0;
}
