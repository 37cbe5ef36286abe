// expect: async_receivable
// async_recv takes a Receiver<T>, a Channel<T> or a Subscription<T>: a Sender<T> only sends.
#include <exception>

#include <custody/asio.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::Sender<int> tx = ch;
  custody::async_recv(tx, [](std::exception_ptr, custody::received<int>) {});
}
