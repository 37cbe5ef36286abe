// expect: no member named 'recv'
// A Sender<T> is the sending end only; hand out a Receiver<T> (or the Channel<T>) to receive.

#include <custody/channel.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Sender<int> tx = ch.sender();
  return tx.recv() ? 0 : 1;
}
