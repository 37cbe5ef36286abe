// expect: satisf.*can_set
// A Getter reads; asking the owner for a change, also asynchronously, needs a Setter.
#include <exception>

#include <custody/asio.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Getter<int> getter = store;
  custody::async_set(getter, 2, [](std::exception_ptr, custody::set_result<int>) {});
}
