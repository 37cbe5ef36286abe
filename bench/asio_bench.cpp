// Reference rows: the same workloads written with Asio's own primitives, for reading custody's
// coroutine rows against what an Asio program would use instead. No custody code runs here.
// bench/compare pairs each row with the Go twin named in its GO_TWINS table and shows it beside
// that twin, and compares custody's coroutine rows with these in its "versus" table.
//
//   build/release/bench/custody-bench-asio --benchmark_filter=asio_channel_pingpong
//
// asio_awaitable_post4_floor has no Go twin: it is the floor of custody's coroutine rows
// (bench/README.md), and bench/compare lists it as not compared.
//
// Built only when custody::asio (standalone Asio) is available.

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <system_error>

#include <benchmark/benchmark.h>

#include "workload.hpp"

namespace {

using std::chrono::nanoseconds;
using bench_clock = std::chrono::steady_clock;

// As unbuffered_pingpong in channels_bench.cpp and bench/go/main.go.
constexpr std::int64_t round_trips = 200'000;

using int_channel = asio::experimental::channel<void(std::error_code, int)>;

[[noreturn]] void fail(const char* workload, const char* what) {
  std::fprintf(stderr, "%s: %s\n", workload, what);
  std::abort();
}

// The echo side: receives each value on `a` and sends it back on `b`, n times.
asio::awaitable<void> echo(int_channel& a, int_channel& b, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const int v = co_await a.async_receive(asio::use_awaitable);
    co_await b.async_send(std::error_code{}, v, asio::use_awaitable);
  }
}

// The main side: sends i on `a`, receives it back on `b`, adds it up.
asio::awaitable<void> ping(int_channel& a, int_channel& b, std::int64_t n, std::int64_t& sum) {
  for (std::int64_t i = 0; i < n; ++i) {
    co_await a.async_send(std::error_code{}, static_cast<int>(i), asio::use_awaitable);
    sum += co_await b.async_receive(asio::use_awaitable);
  }
}

// asio::experimental::channel ping-pong between two coroutines on one io_context thread, both
// channels unbuffered (capacity 0): the work of unbuffered_pingpong, one round trip = two
// rendezvous hand-overs. The run includes starting both coroutines.
nanoseconds asio_channel_pingpong(std::int64_t n) {
  constexpr const char* name = "asio_channel_pingpong";
  asio::io_context io(1);  // one thread: Asio may leave out the scheduler's locking
  int_channel a(io, 0), b(io, 0);
  std::int64_t sum = 0;
  std::exception_ptr failure;
  auto note_failure = [&failure](std::exception_ptr e) {
    if (e && !failure) failure = e;
  };
  const auto start = bench_clock::now();
  asio::co_spawn(io, echo(a, b, n), note_failure);
  asio::co_spawn(io, ping(a, b, n, sum), note_failure);
  io.run();
  const auto elapsed = std::chrono::duration_cast<nanoseconds>(bench_clock::now() - start);
  if (failure) fail(name, "a coroutine threw");
  if (sum != n * (n - 1) / 2) fail(name, "wrong sum of received items");
  return elapsed;
}

// The floor of any operation awaited through asio::use_awaitable that completes through a post,
// as Asio requires of an operation that completes at once and as custody's operations always
// do: one coroutine awaiting asio::post four times per op, the four operations (two sends, two
// receives) of one ping-pong round trip. No channel, no second coroutine.
nanoseconds asio_awaitable_post4_floor(std::int64_t n) {
  constexpr const char* name = "asio_awaitable_post4_floor";
  asio::io_context io(1);
  std::int64_t resumed = 0;
  std::exception_ptr failure;
  const auto start = bench_clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::int64_t i = 0; i < 4 * n; ++i) {
          co_await asio::post(io, asio::use_awaitable);
          ++resumed;
        }
      },
      [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  const auto elapsed = std::chrono::duration_cast<nanoseconds>(bench_clock::now() - start);
  if (failure) fail(name, "the coroutine threw");
  if (resumed != 4 * n) fail(name, "wrong number of resumes");
  return elapsed;
}

const bench::workload workloads[] = {
    {"asio_channel_pingpong", round_trips, asio_channel_pingpong},
    {"asio_awaitable_post4_floor", round_trips, asio_awaitable_post4_floor},
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, workloads,
                         [](benchmark::State&, const bench::workload&, double) {});
}
