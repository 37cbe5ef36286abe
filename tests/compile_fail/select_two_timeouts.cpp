// expect: custody::select: at most one on_timeout or on_deadline case
// A select has one deadline: keep the earlier of the two.

#include <chrono>

#include <custody/select.hpp>

int main() {
  custody::Channel<int> ch(1);
  custody::select(custody::on_recv(ch, [](int) {}),
                  custody::on_timeout(std::chrono::milliseconds(1)),
                  custody::on_deadline(std::chrono::steady_clock::now()));
  return 0;
}
