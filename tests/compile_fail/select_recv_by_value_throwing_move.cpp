// expect: callable must take it by reference
// A by-value callable would move the value again after the select committed; if that move
// throws, the value is lost. For such a type the callable takes it by reference instead.
#include <custody/select.hpp>

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}
};

int main() {
  custody::Channel<throwing_move> ch(1);
  (void)custody::select(custody::on_recv(ch, [](throwing_move) {}), custody::on_default());
}
