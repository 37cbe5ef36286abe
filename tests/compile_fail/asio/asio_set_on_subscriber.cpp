// expect: satisf.*can_set
// A Subscriber is told of changes; asking the owner for one, also asynchronously, needs a
// Setter.
#include <exception>

#include <custody/asio.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Subscriber<int> subscriber = store;
  custody::async_set(subscriber, 2, [](std::exception_ptr, custody::set_result<int>) {});
}
