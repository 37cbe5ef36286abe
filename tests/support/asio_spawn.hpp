#pragma once
// Test helper: run a coroutine on an io_context so that its failure fails the test.

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <utility>

namespace custody_test {

/// Runs `coroutine` on `ctx`; an exception escaping it escapes ctx.run() and fails the test.
template <class Awaitable>
void spawn(asio::io_context& ctx, Awaitable coroutine) {
  asio::co_spawn(ctx, std::move(coroutine), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

}  // namespace custody_test
