// expect: no matching function for call to 'async_send
// async_send takes a Sender<T> (or the Channel<T>): a Receiver<T> is the receiving end only.
#include <exception>

#include <custody/asio.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Receiver<int> rx = ch;
  custody::async_send(rx, 1, [](std::exception_ptr, custody::status) {});
}
