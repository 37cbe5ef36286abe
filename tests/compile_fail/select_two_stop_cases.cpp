// expect: custody::select: at most one on_stop case
// One select honours one stop token; combine tokens with a std::stop_source and stop_callbacks.

#include <stop_token>

#include <custody/select.hpp>

int main() {
  std::stop_source a, b;
  custody::Channel<int> ch(1);
  custody::select(custody::on_recv(ch, [](int) {}), custody::on_stop(a.get_token()),
                  custody::on_stop(b.get_token()));
  return 0;
}
