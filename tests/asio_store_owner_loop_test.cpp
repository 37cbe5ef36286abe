// The README's and docs/go-to-custody.md's owner loop as a coroutine, compiled and run as they
// show it: an owner coroutine answering a setter coroutine, a subscriber coroutine seeing the
// change, all on one io_context thread.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <stop_token>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

namespace {
namespace asio_store_owner_loop_test {

struct Speed {
  double kmh = 0;
};

std::vector<custody::set_status> reported;
std::vector<double> shown;
std::stop_source* stop_once_shown = nullptr;

void report(custody::set_status s) { reported.push_back(s); }
void print(const Speed& s) {
  shown.push_back(s.kmh);
  stop_once_shown->request_stop();
}

// --- as in the docs ---
// The seed's owner goroutine: answers set requests until stopped.
asio::awaitable<void> owner_loop(custody::Owner<Speed> owner, std::stop_token stop) {
  auto requests = owner.requests();
  for (bool running = true; running;) {
    co_await custody::async_select(
        custody::on_recv(requests,
                         [&](custody::SetRequest<Speed> r) {
                           if (r.value().kmh < 0) {
                             std::move(r).reject(std::errc::invalid_argument, "negative");
                           } else {
                             owner.accept(std::move(r));
                           }
                         }),
        custody::on_stop(stop, [&] { running = false; }), asio::use_awaitable);
  }
}  // the owner goes with its frame: the store closes, pending sets get owner_gone

// A setter and a subscriber.
asio::awaitable<void> faster(custody::Setter<Speed> s, std::stop_token stop) {
  custody::set_result<Speed> r =
      co_await custody::async_set(s, Speed{50}, stop, asio::use_awaitable);
  if (!r) report(r.status());
}
asio::awaitable<void> show(custody::Subscriber<Speed> s, std::stop_token stop) {
  auto updates = s.subscribe(custody::policy::latest());
  while (auto r = co_await custody::async_recv(updates, stop, asio::use_awaitable)) print(*r);
}
// --- end ---

TEST(AsyncStoreOwnerLoop, TheSeedsOwnerLoopAsACoroutine) {
  asio::io_context ctx;  // one thread runs them all
  auto [owner, store] = custody::make_store<Speed>(Speed{0});
  std::stop_source stop;
  stop_once_shown = &stop;
  asio::co_spawn(ctx, owner_loop(std::move(owner), stop.get_token()), asio::detached);
  asio::co_spawn(ctx, show(store, stop.get_token()), asio::detached);
  asio::co_spawn(ctx, faster(store, stop.get_token()), asio::detached);
  ctx.run();

  EXPECT_EQ(shown, std::vector<double>{50});
  EXPECT_TRUE(reported.empty());
  EXPECT_EQ(store.get().kmh, 50);
  EXPECT_TRUE(store.owner_gone());  // the owner went with its coroutine
}

}  // namespace asio_store_owner_loop_test
}  // namespace
