// Store workloads of the custody benchmark suite.
//
// Every workload here has a twin of the same name in bench/go/store.go, written the way the
// seed's Go design does it (an owner goroutine selecting on a request channel and `done`, each
// request carrying its own reply channel; GetData under a sync.Mutex; the owner sending each
// update to one channel per subscriber) with the same buffering, hand-overs and per-op work
// as the custody side. bench/compare runs both sides and reports the ratios.
// One benchmark iteration is one full run (threads are created inside it); the figure to read
// is the `ns_per_op` counter: wall time of the run divided by its ops.
//
//   build/release/bench/custody-bench-store --benchmark_filter=store_get
//
// store_latest_1000 also reports `updates_per_s` and `bytes_per_subscriber` (heap bytes in use
// per subscription, measured with mallinfo2, including the owner's list entry).

#include <malloc.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <custody/select.hpp>
#include <custody/store.hpp>

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

constexpr std::int64_t round_trips = 50'000;       // set() calls per run
constexpr std::int64_t gets_n = 2'000'000;         // get() calls per run, both readers together
constexpr std::int64_t updates_n = 2'000'000;      // publishes per run, fanout workloads
constexpr std::int64_t lockstep_updates = 20'000;  // publishes per run, one-slot fanout
constexpr std::int64_t scale_updates = 5'000;      // publishes per run, 1,000 subscribers
constexpr int scale_subscribers = 1000;

[[noreturn]] void fail(const char* workload, const char* what) {
  std::fprintf(stderr, "%s: %s\n", workload, what);
  std::abort();
}

nanoseconds since(bench_clock::time_point start) {
  return std::chrono::duration_cast<nanoseconds>(bench_clock::now() - start);
}

// One client sets 0..n-1; the owner task selects on its requests and its stop token, and
// accepts each. The request channel holds `request_capacity` requests (0: unbuffered, as the
// seed's Go request channel). One op = one answered set().
nanoseconds store_set_roundtrip(std::int64_t n, std::size_t request_capacity) {
  constexpr const char* name = "store_set_roundtrip";
  auto made = custody::make_store<item>(-1, custody::store_options{request_capacity});
  auto& owner = made.owner;
  auto& store = made.store;
  auto start = bench_clock::now();
  std::jthread task([&owner = owner](std::stop_token stop) {
    auto requests = owner.requests();
    for (bool running = true; running;) {
      custody::select(
          custody::on_recv(requests,
                           [&](custody::SetRequest<item> r) { owner.accept(std::move(r)); }),
          custody::on_stop(stop, [&] { running = false; }));
    }
  });
  item sum = 0;
  for (item i = 0; i < n; ++i) {
    auto r = store.set(i);
    if (!r || r.value() != i) fail(name, "set() was not accepted with its own value");
    sum += r.value();
  }
  task.request_stop();
  task.join();
  auto elapsed = since(start);
  if (sum != n * (n - 1) / 2) fail(name, "wrong sum of answers");
  return elapsed;
}

#if defined(CUSTODY_BENCH_ASIO)
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// store_set_roundtrip with coroutines for threads: the owner's loop (a select over the requests
// and the stop) and the setter, on an io_context run by `threads` threads, unbuffered requests.
nanoseconds coro_store_set_roundtrip(std::int64_t n, int threads) {
  constexpr const char* name = "coro_store_set_roundtrip";
  auto made = custody::make_store<item>(-1, custody::store_options{0});
  auto& owner = made.owner;
  custody::Setter<item> setter = made.store;
  asio::io_context ctx(threads);
  std::stop_source stop;
  item sum = 0;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto requests = owner.requests();
        for (bool running = true; running;) {
          co_await custody::async_select(
              custody::on_recv(requests,
                               [&](custody::SetRequest<item> r) { owner.accept(std::move(r)); }),
              custody::on_stop(stop.get_token(), [&] { running = false; }), asio::use_awaitable);
        }
      },
      rethrow);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (item i = 0; i < n; ++i) {
          auto r = co_await custody::async_set(setter, i, asio::use_awaitable);
          if (!r || r.value() != i) fail(name, "async_set was not accepted with its own value");
          sum += r.value();
        }
        stop.request_stop();
      },
      rethrow);
  auto start = bench_clock::now();
  std::vector<std::jthread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back([&] { ctx.run(); });
  ctx.run();
  helpers.clear();
  auto elapsed = since(start);
  if (sum != n * (n - 1) / 2) fail(name, "wrong sum of answers");
  return elapsed;
}

// notify_fanout2_block1 with coroutines for threads: the owner (custody::async_publish) and its
// two policy::block(1) subscribers (custody::async_recv) on one io_context thread, the seed's
// lockstep. One op = one publish (delivered twice).
nanoseconds coro_notify_fanout2_block1(std::int64_t n) {
  constexpr const char* name = "coro_notify_fanout2_block1";
  auto made = custody::make_store<item>(-1);
  auto& owner = made.owner;
  std::array<custody::Subscription<item>, 2> subs{made.store.subscribe(custody::policy::block(1)),
                                                  made.store.subscribe(custody::policy::block(1))};
  std::array<item, 2> sums{};
  asio::io_context ctx(1);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (item i = 0; i < n; ++i) {
          if (co_await custody::async_publish(owner, i, asio::use_awaitable) !=
              custody::status::ok) {
            fail(name, "publish failed");
          }
        }
        owner.close();
      },
      rethrow);
  for (std::size_t k = 0; k < 2; ++k) {
    asio::co_spawn(
        ctx,
        [&, k]() -> asio::awaitable<void> {
          for (;;) {
            auto r = co_await custody::async_recv(subs[k], asio::use_awaitable);
            if (!r) break;
            sums[k] += *r;
          }
        },
        rethrow);
  }
  auto start = bench_clock::now();
  ctx.run();
  auto elapsed = since(start);
  for (item s : sums) {
    if (s != n * (n - 1) / 2) fail(name, "a subscriber lost updates");
  }
  return elapsed;
}

// The same two workloads with custody's own coroutine task (custody::asio::Task, the token
// custody::asio::use_task) for asio::awaitable.
custody::asio::Task<void> task_store_owner(custody::Owner<item>& owner, std::stop_token stop) {
  auto requests = owner.requests();
  for (bool running = true; running;) {
    co_await custody::async_select(
        custody::on_recv(requests,
                         [&](custody::SetRequest<item> r) { owner.accept(std::move(r)); }),
        custody::on_stop(stop, [&] { running = false; }), custody::asio::use_task);
  }
}

custody::asio::Task<item> task_store_setter(custody::Setter<item> setter, std::int64_t n,
                                            std::stop_source& stop) {
  constexpr const char* name = "task_store_set_roundtrip";
  item sum = 0;
  for (item i = 0; i < n; ++i) {
    auto r = co_await custody::async_set(setter, i, custody::asio::use_task);
    if (!r || r.value() != i) fail(name, "async_set was not accepted with its own value");
    sum += r.value();
  }
  stop.request_stop();
  co_return sum;
}

// store_set_roundtrip between an owner task and a setter task on an io_context run by `threads`
// threads, unbuffered requests.
nanoseconds task_store_set_roundtrip(std::int64_t n, int threads) {
  auto made = custody::make_store<item>(-1, custody::store_options{0});
  asio::io_context ctx(threads);
  std::stop_source stop;
  item sum = 0;
  custody::asio::spawn(ctx.get_executor(), task_store_owner(made.owner, stop.get_token()), rethrow);
  custody::asio::spawn(ctx.get_executor(), task_store_setter(made.store, n, stop),
                       [&](std::exception_ptr e, item s) {
                         rethrow(e);
                         sum = s;
                       });
  auto start = bench_clock::now();
  std::vector<std::jthread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back([&] { ctx.run(); });
  ctx.run();
  helpers.clear();
  auto elapsed = since(start);
  if (sum != n * (n - 1) / 2) fail("task_store_set_roundtrip", "wrong sum of answers");
  return elapsed;
}

custody::asio::Task<void> task_publisher(custody::Owner<item>& owner, std::int64_t n) {
  for (item i = 0; i < n; ++i) {
    if (co_await custody::async_publish(owner, i, custody::asio::use_task) != custody::status::ok) {
      fail("task_notify_fanout2_block1", "publish failed");
    }
  }
  owner.close();
}

custody::asio::Task<item> task_subscriber(custody::Subscription<item>& sub) {
  item sum = 0;
  for (;;) {
    auto r = co_await custody::async_recv(sub, custody::asio::use_task);
    if (!r) break;
    sum += *r;
  }
  co_return sum;
}

// notify_fanout2_block1 with the owner and its two policy::block(1) subscribers as tasks on one
// io_context thread. One op = one publish (delivered twice).
nanoseconds task_notify_fanout2_block1(std::int64_t n) {
  auto made = custody::make_store<item>(-1);
  std::array<custody::Subscription<item>, 2> subs{made.store.subscribe(custody::policy::block(1)),
                                                  made.store.subscribe(custody::policy::block(1))};
  std::array<item, 2> sums{};
  asio::io_context ctx(1);
  custody::asio::spawn(ctx.get_executor(), task_publisher(made.owner, n), rethrow);
  for (std::size_t k = 0; k < 2; ++k) {
    custody::asio::spawn(ctx.get_executor(), task_subscriber(subs[k]),
                         [&sums, k](std::exception_ptr e, item s) {
                           rethrow(e);
                           sums[k] = s;
                         });
  }
  auto start = bench_clock::now();
  ctx.run();
  auto elapsed = since(start);
  for (item s : sums) {
    if (s != n * (n - 1) / 2) fail("task_notify_fanout2_block1", "a subscriber lost updates");
  }
  return elapsed;
}
#endif

struct Pair {
  double a;
  double b;
};

struct Named {
  std::string name;
  item n;
};

// Longer than the small-string buffer: a reader's copy allocates, as a real name would.
const std::array<std::string, 64>& names() {
  static const std::array<std::string, 64> table = [] {
    std::array<std::string, 64> t;
    for (std::size_t i = 0; i < t.size(); ++i)
      t[i] = "sensor/front-left/" + std::to_string(i * 7919);
    return t;
  }();
  return table;
}

// Two readers each read a snapshot n/2 times while the owner publishes continuously. One op =
// one read: `read_ok(getter)` takes a snapshot and returns whether it was consistent.
template <class T, class Make, class ReadOk>
nanoseconds get_2readers(std::int64_t n, const char* name, Make make, ReadOk read_ok) {
  auto made = custody::make_store<T>(make(0));
  auto& owner = made.owner;
  auto& store = made.store;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::jthread publisher([&, &owner = owner] {
    for (item i = 1; !done.load(std::memory_order_relaxed); ++i) owner.publish(make(i));
  });
  auto start = bench_clock::now();
  {
    std::vector<std::jthread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&, getter = custody::Getter<T>(store)] {
        int wrong = 0;
        for (std::int64_t i = 0; i < n / 2; ++i) wrong += read_ok(getter) ? 0 : 1;
        bad += wrong;
      });
    }
  }
  auto elapsed = since(start);
  done = true;
  publisher.join();
  if (bad.load() != 0) fail(name, "torn snapshot");
  return elapsed;
}

nanoseconds store_get_2readers_pod(std::int64_t n) {
  return get_2readers<Pair>(
      n, "store_get_2readers_pod",
      [](item i) {
        return Pair{static_cast<double>(i), -static_cast<double>(i)};
      },
      [](const custody::Getter<Pair>& g) {
        const Pair p = g.get();
        return p.a == -p.b;
      });
}

Named make_named(item i) { return Named{names()[static_cast<std::size_t>(i % 64)], i}; }

bool named_ok(const Named& v) { return v.name == names()[static_cast<std::size_t>(v.n % 64)]; }

// Compares the stored string in place (read()): no copy, no allocation, as Go's GetData copies
// only the string's header.
nanoseconds store_get_2readers_string(std::int64_t n) {
  return get_2readers<Named>(n, "store_get_2readers_string", make_named,
                             [](const custody::Getter<Named>& g) { return g.read(named_ok); });
}

// Copies the value out with get(): the string's characters go to a new allocation, as Go's
// twin clones the string it got.
nanoseconds store_get_2readers_string_copy(std::int64_t n) {
  return get_2readers<Named>(n, "store_get_2readers_string_copy", make_named,
                             [](const custody::Getter<Named>& g) { return named_ok(g.get()); });
}

// The owner publishes 0..n-1 to two lossless subscribers of policy `p`, each read by its own
// thread, then closes the store; the readers drain. One op = one publish (delivered twice).
// The Go twin's owner sends each update to two channels, one per subscriber, in turn.
nanoseconds notify_fanout2(std::int64_t n, custody::policy p) {
  constexpr const char* name = "notify_fanout2";
  auto made = custody::make_store<item>(-1);
  auto& owner = made.owner;
  auto& store = made.store;
  std::array<custody::Subscription<item>, 2> subs{store.subscribe(p), store.subscribe(p)};
  std::array<item, 2> sums{};
  auto start = bench_clock::now();
  {
    std::vector<std::jthread> readers;
    for (std::size_t k = 0; k < 2; ++k) {
      readers.emplace_back([&, k] {
        item s = 0;
        for (item v : subs[k]) s += v;
        sums[k] = s;
      });
    }
    for (item i = 0; i < n; ++i) {
      if (owner.publish(i) != custody::status::ok) fail(name, "publish failed");
    }
    owner.close();
  }
  auto elapsed = since(start);
  for (item s : sums) {
    if (s != n * (n - 1) / 2) fail(name, "a subscriber lost updates");
  }
  return elapsed;
}

// One owner publishes 1..n to 1,000 `latest` subscribers; two reader threads sweep 500 each
// with try_recv until every subscription is closed. One op = one publish (1,000 deliveries).
nanoseconds store_latest_1000(std::int64_t n) {
  constexpr const char* name = "store_latest_1000";
  auto made = custody::make_store<item>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::vector<custody::Subscription<item>> subs;
  subs.reserve(scale_subscribers);
  for (int i = 0; i < scale_subscribers; ++i)
    subs.push_back(store.subscribe(custody::policy::latest()));
  std::atomic<int> wrong{0};
  auto start = bench_clock::now();
  {
    std::vector<std::jthread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&, r] {
        const std::size_t lo = static_cast<std::size_t>(r) * subs.size() / 2;
        const std::size_t hi = static_cast<std::size_t>(r + 1) * subs.size() / 2;
        std::vector<item> last(hi - lo, 0);
        std::size_t open = hi - lo;
        std::vector<bool> closed(hi - lo, false);
        while (open > 0) {
          for (std::size_t i = lo; i < hi; ++i) {
            if (closed[i - lo]) continue;
            auto got = subs[i].try_recv();
            if (got) {
              if (*got <= last[i - lo]) ++wrong;
              last[i - lo] = *got;
            } else if (got.status() == custody::status::closed) {
              closed[i - lo] = true;
              --open;
              if (last[i - lo] != n) ++wrong;
            }
          }
          std::this_thread::yield();
        }
      });
    }
    for (item i = 1; i <= n; ++i) owner.publish(i);
    owner.close();
  }
  auto elapsed = since(start);
  if (wrong.load() != 0) fail(name, "a subscriber missed the last update");
  return elapsed;
}

// Heap bytes per `latest` subscription of an int64 store, as malloc sees them (allocator
// overhead included), including the owner's list entry. 0 where mallinfo2 is missing.
double bytes_per_latest_subscriber() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  auto made = custody::make_store<item>(0);
  auto& owner = made.owner;
  auto& store = made.store;
  std::vector<custody::Subscription<item>> subs;
  subs.reserve(scale_subscribers);
  const auto before = ::mallinfo2().uordblks;
  for (int i = 0; i < scale_subscribers; ++i)
    subs.push_back(store.subscribe(custody::policy::latest()));
  (void)owner.publish(1);  // the owner takes the new subscriptions into its list
  const auto after = ::mallinfo2().uordblks;
  return static_cast<double>(after - before) / scale_subscribers;
#else
  return 0;
#endif
}

// Output order; names match bench/go/store.go.
const bench::workload workloads[] = {
    {"store_set_roundtrip", round_trips, [](std::int64_t n) { return store_set_roundtrip(n, 0); }},
    {"store_set_roundtrip_req16", round_trips,
     [](std::int64_t n) { return store_set_roundtrip(n, 16); }},
#if defined(CUSTODY_BENCH_ASIO)
    {"coro_store_set_roundtrip", round_trips,
     [](std::int64_t n) { return coro_store_set_roundtrip(n, 1); }},
    {"coro_pool2_store_set_roundtrip", round_trips,
     [](std::int64_t n) { return coro_store_set_roundtrip(n, 2); }},
    {"task_store_set_roundtrip", round_trips,
     [](std::int64_t n) { return task_store_set_roundtrip(n, 1); }},
    {"task_pool2_store_set_roundtrip", round_trips,
     [](std::int64_t n) { return task_store_set_roundtrip(n, 2); }},
#endif
    {"store_get_2readers_pod", gets_n, store_get_2readers_pod},
    {"store_get_2readers_string", gets_n, store_get_2readers_string},
    {"store_get_2readers_string_copy", gets_n, store_get_2readers_string_copy},
    // The seed's lockstep: one slot per subscriber (Go: unbuffered outputs).
    {"notify_fanout2_block1", lockstep_updates,
     [](std::int64_t n) { return notify_fanout2(n, custody::policy::block(1)); }},
#if defined(CUSTODY_BENCH_ASIO)
    {"coro_notify_fanout2_block1", lockstep_updates, coro_notify_fanout2_block1},
    {"task_notify_fanout2_block1", lockstep_updates, task_notify_fanout2_block1},
#endif
    // block()'s default capacity (Go: outputs of that capacity).
    {"notify_fanout2_block256", updates_n,
     [](std::int64_t n) {
       static_assert(custody::policy::default_block_capacity == 256, "rename the workload");
       return notify_fanout2(n, custody::policy::block());
     }},
    {"notify_fanout2_block1024", updates_n,
     [](std::int64_t n) { return notify_fanout2(n, custody::policy::block(1024)); }},
    {"store_latest_1000", scale_updates, store_latest_1000},
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run_main(argc, argv, workloads,
                         [](benchmark::State& state, const bench::workload& w, double ns_per_op) {
                           if (w.run != store_latest_1000) return;
                           state.counters["updates_per_s"] = 1e9 / ns_per_op;
                           state.counters["bytes_per_subscriber"] = bytes_per_latest_subscriber();
                         });
}
