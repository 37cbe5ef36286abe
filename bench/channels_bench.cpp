// Channel workloads of the custody benchmark suite.
//
// Every workload here has a twin of the same name in bench/go/ that does the
// same work: the same items, buffering, hand-overs and checks (bench/README.md
// lists where a twin cannot be exact); bench/compare runs both sides and
// reports custody/Go ratios. One benchmark iteration is one full workload run
// (threads are created inside the run); the figure to read is the
// `ns_per_op` counter: wall time of the run divided by the ops it moved (one
// op = one item transferred, or one round trip for ping-pong workloads).
//
//   build/release/bench/custody-bench-channels --benchmark_filter=spsc
//   build/release/bench/custody-bench-channels --benchmark_format=json
//
// Adding a workload: write a `nanoseconds fn(std::int64_t ops)` that performs
// the run and checks its result, then add one line to `workloads` below (and
// the Go twin in bench/go/main.go).

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <custody/channel.hpp>
#include <custody/select.hpp>
#include <custody/task_group.hpp>

#if defined(CUSTODY_BENCH_ASIO)
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>

#include <custody/asio.hpp>
#endif

#include "workload.hpp"

namespace {

using item = std::int64_t;
using std::chrono::nanoseconds;
using bench_clock = std::chrono::steady_clock;

// Ops per run, the same on the Go side: enough for a steady figure, few enough that ten rounds
// of bench/compare take minutes on a busy machine.
constexpr std::int64_t items_n = 2'000'000;             // items, buffered workloads
constexpr std::int64_t handover_items = 200'000;        // items, spsc_cap1
constexpr std::int64_t round_trips = 200'000;           // round trips, ping-pong
constexpr std::int64_t cacheline_round_trips = 50'000;  // round trips, cache-line floor
constexpr std::int64_t cacheline_warm_up = 1'000;       // untimed round trips before them
constexpr std::int64_t futex_round_trips = 20'000;      // round trips, futex floor

[[noreturn]] void fail(const char* workload, const char* what) {
  std::fprintf(stderr, "%s: %s\n", workload, what);
  std::abort();
}

void must_send(const char* workload, custody::status s) {
  if (s != custody::status::ok) fail(workload, "send did not return status::ok");
}

// Aborts unless `got` is 0 + 1 + ... + (n - 1).
void expect_sum(const char* workload, item got, std::int64_t n) {
  if (got != n * (n - 1) / 2) fail(workload, "wrong sum of received items");
}

nanoseconds since(bench_clock::time_point start) {
  return std::chrono::duration_cast<nanoseconds>(bench_clock::now() - start);
}

// The hardware floors. No channel: they show what the machine charges for the two ways a
// thread can hand work to another, for reading the rows that do it once per op. One op = one
// round trip.

// Two threads bounce one atomic counter, spinning bare (no pause, like the Go twin): the least
// any hand-over between two running threads costs at the time of the run. The clock starts
// after `cacheline_warm_up` untimed round trips: a new thread often starts on its creator's core,
// and the first round trip then waits a whole time slice (about 8 ms here, more than the timed
// loop) until the scheduler moves one of the two spinners to the other core.
nanoseconds cacheline_roundtrip(std::int64_t n) {
  alignas(64) std::atomic<std::int64_t> flag{0};
  const std::int64_t rounds = cacheline_warm_up + n;
  std::jthread peer([&] {
    for (std::int64_t i = 0; i < rounds; ++i) {
      while (flag.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      flag.store(2 * i + 2, std::memory_order_release);
    }
  });
  bench_clock::time_point start;
  for (std::int64_t i = 0; i < rounds; ++i) {
    if (i == cacheline_warm_up) start = bench_clock::now();
    flag.store(2 * i + 1, std::memory_order_release);
    while (flag.load(std::memory_order_acquire) != 2 * i + 2) {
    }
  }
  peer.join();
  return since(start);
}

#if defined(__linux__)
// The futex word: the kernel compares and sleeps on its 32 bits.
using futex_word = std::atomic<std::uint32_t>;
static_assert(sizeof(futex_word) == sizeof(std::uint32_t) && futex_word::is_always_lock_free);

// Sleeps in the kernel while `word` holds `seen`; returns at once if it no longer does.
void futex_wait(futex_word& word, std::uint32_t seen) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr,
            nullptr, 0);
}

void futex_wake_one(futex_word& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

// Returns once `word` holds `wanted`, sleeping in the kernel without spinning until then.
void futex_wait_for(futex_word& word, std::uint32_t wanted) {
  for (std::uint32_t seen = word.load(std::memory_order_acquire); seen != wanted;
       seen = word.load(std::memory_order_acquire)) {
    futex_wait(word, seen);
  }
}

// Two threads wake each other through the kernel: each hand-over stores the next count and
// makes a FUTEX_WAKE system call; the other side sleeps in FUTEX_WAIT without spinning. The
// least a hand-over costs when the receiving thread is asleep, as a blocked thread is.
nanoseconds futex_roundtrip(std::int64_t n) {
  constexpr const char* name = "hw_futex_roundtrip";
  alignas(64) futex_word word{0};
  const auto rounds = static_cast<std::uint32_t>(n);
  auto start = bench_clock::now();
  std::jthread peer([&] {
    for (std::uint32_t i = 0; i < rounds; ++i) {
      futex_wait_for(word, 2 * i + 1);
      word.store(2 * i + 2, std::memory_order_release);
      futex_wake_one(word);
    }
  });
  for (std::uint32_t i = 0; i < rounds; ++i) {
    word.store(2 * i + 1, std::memory_order_release);
    futex_wake_one(word);
    futex_wait_for(word, 2 * i + 2);
  }
  peer.join();
  auto elapsed = since(start);
  if (word.load() != 2 * rounds) fail(name, "wrong final count");
  return elapsed;
}
#endif

// Whether a row's channels and threads carry names: `named` rows measure what the diagnostics
// cost (custody::inspect() sees their channels, their threads are tasks of a named group), against
// the `plain` rows of the same workload.
enum class naming { plain, named };

// A channel of the row, named `name` in a named row.
custody::Channel<item> row_channel(std::size_t capacity, naming how, const char* name) {
  return how == naming::named ? custody::Channel<item>(capacity, name)
                              : custody::Channel<item>(capacity);
}

// The row's second thread: a std::jthread, or in a named row a task of a named group.
class peer_thread {
 public:
  template <class F>
  peer_thread(naming how, const char* name, F fn) {
    if (how == naming::plain) {
      thread_ = std::jthread(std::move(fn));
      return;
    }
    group_.emplace("bench");
    group_->spawn(name, std::move(fn));
  }
  void join() {
    if (group_) {
      group_->wait();
    } else {
      thread_.join();
    }
  }

 private:
  std::optional<custody::TaskGroup> group_;
  std::jthread thread_;
};

// Main sends i on a; the echo thread receives it and sends it back on b; main
// receives. One op = one round trip.
nanoseconds unbuffered_pingpong(std::int64_t n, naming how) {
  constexpr const char* name = "unbuffered_pingpong";
  custody::Channel<item> a = row_channel(0, how, "ping");
  custody::Channel<item> b = row_channel(0, how, "pong");
  auto start = bench_clock::now();
  peer_thread echo(how, "echo", [a, b]() mutable {
    for (;;) {
      auto r = a.recv();
      if (!r) break;
      must_send(name, b.send(*r));
    }
    b.close();
  });
  item sum = 0;
  for (item i = 0; i < n; ++i) {
    must_send(name, a.send(i));
    auto r = b.recv();
    if (!r) fail(name, "echo channel closed early");
    sum += *r;
  }
  a.close();
  if (b.recv()) fail(name, "unexpected extra echo");  // returns once echo has closed b
  echo.join();
  auto elapsed = since(start);
  expect_sum(name, sum, n);
  return elapsed;
}

// One producer sends 0..n-1 into a buffered channel and closes it; the main
// thread receives until closed.
nanoseconds spsc(std::int64_t n, std::size_t capacity, naming how = naming::plain) {
  constexpr const char* name = "spsc";
  custody::Channel<item> ch = row_channel(capacity, how, "items");
  auto start = bench_clock::now();
  peer_thread producer(how, "producer", [ch, n]() mutable {
    for (item i = 0; i < n; ++i) must_send(name, ch.send(i));
    ch.close();
  });
  item sum = 0;
  for (;;) {
    auto r = ch.recv();
    if (!r) break;
    sum += *r;
  }
  producer.join();
  auto elapsed = since(start);
  expect_sum(name, sum, n);
  return elapsed;
}

// p producers each send a disjoint share of 0..n-1; c consumers receive until
// closed; the channel is closed once every producer has finished.
nanoseconds mpmc(std::int64_t n, int p, int c, std::size_t capacity) {
  constexpr const char* name = "mpmc";
  custody::Channel<item> ch(capacity);
  std::vector<item> sums(static_cast<std::size_t>(c), 0);
  std::vector<std::jthread> producers, consumers;
  auto start = bench_clock::now();
  for (int k = 0; k < p; ++k) {
    item lo = n * k / p, hi = n * (k + 1) / p;
    producers.emplace_back([ch, lo, hi]() mutable {
      for (item i = lo; i < hi; ++i) must_send(name, ch.send(i));
    });
  }
  for (int k = 0; k < c; ++k) {
    consumers.emplace_back([ch, &sums, k]() mutable {
      item s = 0;
      for (;;) {
        auto r = ch.recv();
        if (!r) break;
        s += *r;
      }
      sums[static_cast<std::size_t>(k)] = s;
    });
  }
  for (auto& t : producers) t.join();
  ch.close();
  for (auto& t : consumers) t.join();
  auto elapsed = since(start);
  item sum = 0;
  for (item s : sums) sum += s;
  expect_sum(name, sum, n);
  return elapsed;
}

// Two producers each send half of 0..n-1 on their own channel (capacity
// 1024); the main thread selects over both plus a third channel nobody sends
// on, until it has all n items.
nanoseconds select2(std::int64_t n) {
  constexpr const char* name = "select2_cap1024";
  custody::Channel<item> c1(1024), c2(1024), idle(0);
  custody::Receiver<item> r1 = c1.receiver(), r2 = c2.receiver(), ri = idle.receiver();
  auto start = bench_clock::now();
  std::jthread p1([c1, n]() mutable {
    for (item i = 0; i < n / 2; ++i) must_send(name, c1.send(i));
  });
  std::jthread p2([c2, n]() mutable {
    for (item i = n / 2; i < n; ++i) must_send(name, c2.send(i));
  });
  item sum = 0;
  for (std::int64_t got = 0; got < n; ++got) {
    auto r = custody::select(custody::on_recv(r1, [&](item v) { sum += v; }),
                             custody::on_recv(r2, [&](item v) { sum += v; }),
                             custody::on_recv(ri, [&](item v) { sum += v; }));
    if (r.status != custody::status::ok) fail(name, "select did not receive a value");
  }
  p1.join();
  p2.join();
  auto elapsed = since(start);
  expect_sum(name, sum, n);
  return elapsed;
}

#if defined(CUSTODY_BENCH_ASIO)
// Coroutine workloads: the thread workloads above with coroutines on Asio executors for
// threads. Their Go twins are the goroutine workloads they mirror (bench/go/main.go).

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

asio::awaitable<void> echo(custody::Channel<item> a, custody::Channel<item> b) {
  for (;;) {
    auto r = co_await custody::async_recv(a, asio::use_awaitable);
    if (!r) break;
    must_send("coro echo", co_await custody::async_send(b, *r, asio::use_awaitable));
  }
  b.close();
}

// unbuffered_pingpong between two coroutines on an io_context run by `threads` threads.
nanoseconds coro_pingpong(std::int64_t n, int threads) {
  constexpr const char* name = "coro_pingpong";
  asio::io_context ctx(threads);
  custody::Channel<item> a(0), b(0);
  item sum = 0;
  asio::co_spawn(ctx, echo(a, b), rethrow);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (item i = 0; i < n; ++i) {
          must_send(name, co_await custody::async_send(a, i, asio::use_awaitable));
          auto r = co_await custody::async_recv(b, asio::use_awaitable);
          if (!r) fail(name, "echo channel closed early");
          sum += *r;
        }
        a.close();
        if ((co_await custody::async_recv(b, asio::use_awaitable))) {
          fail(name, "unexpected extra echo");
        }
      },
      rethrow);
  auto start = bench_clock::now();
  std::vector<std::jthread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back([&] { ctx.run(); });
  ctx.run();
  helpers.clear();
  auto elapsed = since(start);
  expect_sum(name, sum, n);
  return elapsed;
}

// spsc_cap1 between two coroutines on one io_context thread.
nanoseconds coro_spsc_cap1(std::int64_t n) {
  constexpr const char* name = "coro_spsc_cap1";
  asio::io_context ctx(1);
  custody::Channel<item> ch(1);
  item sum = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (item i = 0; i < n; ++i) {
          must_send(name, co_await custody::async_send(ch, i, asio::use_awaitable));
        }
        ch.close();
      },
      rethrow);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto r = co_await custody::async_recv(ch, asio::use_awaitable);
          if (!r) break;
          sum += *r;
        }
      },
      rethrow);
  auto start = bench_clock::now();
  ctx.run();
  auto elapsed = since(start);
  expect_sum(name, sum, n);
  return elapsed;
}

// The same two workloads with custody's own coroutine task (custody::asio::Task, the token
// custody::asio::use_task) for asio::awaitable.
custody::asio::Task<void> task_echo(custody::Channel<item> a, custody::Channel<item> b) {
  using custody::asio::use_task;
  for (;;) {
    auto r = co_await custody::async_recv(a, use_task);
    if (!r) break;
    must_send("task echo", co_await custody::async_send(b, *r, use_task));
  }
  b.close();
}

custody::asio::Task<item> task_ping(custody::Channel<item> a, custody::Channel<item> b,
                                    std::int64_t n) {
  using custody::asio::use_task;
  constexpr const char* name = "task_pingpong";
  item sum = 0;
  for (item i = 0; i < n; ++i) {
    must_send(name, co_await custody::async_send(a, i, use_task));
    auto r = co_await custody::async_recv(b, use_task);
    if (!r) fail(name, "echo channel closed early");
    sum += *r;
  }
  a.close();
  if ((co_await custody::async_recv(b, use_task))) fail(name, "unexpected extra echo");
  co_return sum;
}

// unbuffered_pingpong between two tasks on an io_context run by `threads` threads.
nanoseconds task_pingpong(std::int64_t n, int threads) {
  asio::io_context ctx(threads);
  custody::Channel<item> a(0), b(0);
  item sum = 0;
  custody::asio::spawn(ctx.get_executor(), task_echo(a, b), rethrow);
  custody::asio::spawn(ctx.get_executor(), task_ping(a, b, n), [&](std::exception_ptr e, item s) {
    rethrow(e);
    sum = s;
  });
  auto start = bench_clock::now();
  std::vector<std::jthread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back([&] { ctx.run(); });
  ctx.run();
  helpers.clear();
  auto elapsed = since(start);
  expect_sum("task_pingpong", sum, n);
  return elapsed;
}

custody::asio::Task<void> task_produce(custody::Channel<item> ch, std::int64_t n) {
  for (item i = 0; i < n; ++i) {
    must_send("task_spsc_cap1", co_await custody::async_send(ch, i, custody::asio::use_task));
  }
  ch.close();
}

custody::asio::Task<item> task_consume(custody::Channel<item> ch) {
  item sum = 0;
  for (;;) {
    auto r = co_await custody::async_recv(ch, custody::asio::use_task);
    if (!r) break;
    sum += *r;
  }
  co_return sum;
}

// spsc_cap1 between two tasks on one io_context thread.
nanoseconds task_spsc_cap1(std::int64_t n) {
  asio::io_context ctx(1);
  custody::Channel<item> ch(1);
  item sum = 0;
  custody::asio::spawn(ctx.get_executor(), task_produce(ch, n), rethrow);
  custody::asio::spawn(ctx.get_executor(), task_consume(ch), [&](std::exception_ptr e, item s) {
    rethrow(e);
    sum = s;
  });
  auto start = bench_clock::now();
  ctx.run();
  auto elapsed = since(start);
  expect_sum("task_spsc_cap1", sum, n);
  return elapsed;
}
#endif

// Output order; names match bench/go/main.go.
const bench::workload workloads[] = {
    {"hw_cacheline_roundtrip", cacheline_round_trips, cacheline_roundtrip},
#if defined(__linux__)
    {"hw_futex_roundtrip", futex_round_trips, futex_roundtrip},
#endif
    {"unbuffered_pingpong", round_trips,
     [](std::int64_t n) { return unbuffered_pingpong(n, naming::plain); }},
    {"unbuffered_pingpong_named", round_trips,
     [](std::int64_t n) { return unbuffered_pingpong(n, naming::named); }},
    {"spsc_cap1024", items_n, [](std::int64_t n) { return spsc(n, 1024); }},
    {"spsc_cap1024_named", items_n, [](std::int64_t n) { return spsc(n, 1024, naming::named); }},
    {"spsc_cap1", handover_items, [](std::int64_t n) { return spsc(n, 1); }},
    {"mpmc_4x4_cap1024", items_n, [](std::int64_t n) { return mpmc(n, 4, 4, 1024); }},
    {"select2_cap1024", items_n, select2},
#if defined(CUSTODY_BENCH_ASIO)
    {"coro_pingpong", round_trips, [](std::int64_t n) { return coro_pingpong(n, 1); }},
    {"coro_spsc_cap1", handover_items, coro_spsc_cap1},
    {"coro_pool2_pingpong", round_trips, [](std::int64_t n) { return coro_pingpong(n, 2); }},
    {"task_pingpong", round_trips, [](std::int64_t n) { return task_pingpong(n, 1); }},
    {"task_spsc_cap1", handover_items, task_spsc_cap1},
    {"task_pool2_pingpong", round_trips, [](std::int64_t n) { return task_pingpong(n, 2); }},
#endif
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, workloads,
                         [](benchmark::State&, const bench::workload&, double) {});
}
