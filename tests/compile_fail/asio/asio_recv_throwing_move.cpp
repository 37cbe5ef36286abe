// expect: async_receivable
// An asynchronous receive moves the value once more, into the handler, after the channel gave
// it up: a T whose move constructor may throw could be lost there, so it does not compile.
#include <exception>

#include <custody/asio.hpp>

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}
};

int main() {
  custody::Channel<throwing_move> ch(1);
  custody::async_recv(ch, [](std::exception_ptr, custody::received<throwing_move>) {});
}
