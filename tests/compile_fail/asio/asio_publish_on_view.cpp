// expect: no matching function for call to 'async_publish
// Only the Owner publishes; a consumer view asks it with async_set instead.
#include <exception>

#include <custody/asio.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::async_publish(store, 2, [](std::exception_ptr, custody::status) {});
}
