// expect: await_transform
// use_task operations run only inside a custody::asio::Task: an asio::awaitable cannot await
// them (it awaits with asio::use_awaitable instead).
#include <asio/awaitable.hpp>

#include <custody/asio.hpp>

asio::awaitable<void> receive(custody::Channel<int> ch) {
  (void)co_await custody::async_recv(ch, custody::asio::use_task);
}

int main() { (void)&receive; }
