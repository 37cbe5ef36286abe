// expect: no member named 'send'
// A Receiver<T> is the receiving end only; hand out a Sender<T> (or the Channel<T>) to send.

#include <custody/channel.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Receiver<int> rx = ch.receiver();
  return rx.send(1) == custody::status::ok ? 0 : 1;
}
