// expect: callable must take it by reference
// As for select: a by-value callable would move the value again after async_select committed;
// if that move throws, the value is lost. For such a type the callable takes it by reference.
#include <exception>

#include <custody/asio.hpp>

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}
};

int main() {
  custody::Channel<throwing_move> ch(1);
  custody::async_select(custody::on_recv(ch, [](throwing_move) {}), custody::on_default(),
                        [](std::exception_ptr, custody::selected) {});
}
