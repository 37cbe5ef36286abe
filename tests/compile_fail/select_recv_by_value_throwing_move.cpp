// expect: move constructor may throw, so the callable must take it as T&
// A by-value callable would move the value again after the select committed; if that move
// throws, the value is lost. For such a type the callable takes T& instead.
#include <custody/select.hpp>

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}
};

int main() {
  custody::Channel<throwing_move> ch(1);
  (void)custody::select(custody::on_recv(ch, [](throwing_move) {}), custody::on_default());
}
