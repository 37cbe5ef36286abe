// Scale workloads: many coroutines waiting at once. The C++ twins of bench/go/scale.go (the same
// names, the same work), with coroutines on an Asio io_context for goroutines. They report memory
// per task as well as time and run once each, apart from the ns/op table:
//
//   build/release/bench/custody-bench-scale [--only REGEX] [--list]
//   bench/compare --scale                  # beside the Go twins, in the same run
//
// Each prints "<workload> <ns> ns/op" followed by its other figures, one
// "<workload> <value> <unit>" line each, as the Go side does. A run checks its result (every
// task received its value) and aborts with a message otherwise.
//
// Memory is what glibc's allocator has handed out (mallinfo2: arena bytes in use plus mmapped
// blocks) with every task suspended, minus the same before the tasks were made, per task.

#include <malloc.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custody/asio.hpp>
#include <custody/channel.hpp>
#include <custody/store.hpp>

namespace {

using item = std::int64_t;
using bench_clock = std::chrono::steady_clock;

constexpr int scale_tasks = 100'000;      // coroutines waiting at once
constexpr int million_tasks = 1'000'000;  // scale_1m_blocked_recv
constexpr int scale_publishes = 20;       // timed publishes, scale_100k_latest_publish
constexpr int publish_threads = 2;        // threads running the subscribers' io_context

[[noreturn]] void fail(const char* workload, const char* what) {
  std::fprintf(stderr, "%s: %s\n", workload, what);
  std::abort();
}

double ms_since(bench_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(bench_clock::now() - start).count();
}

// Bytes the allocator has handed out and not yet taken back, in all arenas.
double heap_in_use() {
  const struct mallinfo2 m = ::mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd);
}

struct figure {
  double value;
  const char* unit;
};

struct figures {
  double ns_per_op;
  std::vector<figure> extra;
};

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// What a receiving coroutine counts, shared by all of them.
struct receive_counts {
  std::atomic<int> waiting{0};
  std::atomic<int> received{0};
  std::atomic<item> sum{0};
};

custody::asio::Task<void> task_receive_once(const char* name, custody::Receiver<item> rx,
                                            receive_counts& counts) {
  counts.waiting.fetch_add(1, std::memory_order_relaxed);
  custody::received<item> r = co_await custody::async_recv(rx, custody::asio::use_task);
  if (!r) fail(name, "a receive ended without a value");
  counts.sum.fetch_add(*r, std::memory_order_relaxed);
  counts.received.fetch_add(1, std::memory_order_relaxed);
}

// Which coroutine a workload runs: asio::awaitable (co_spawn) or custody::asio::Task (spawn).
enum class coroutine_kind { awaitable, task };

// n coroutines on one io_context, each suspended in async_recv on its own unbuffered channel;
// then one blocking send to each from this thread while another thread runs the io_context.
// One op = waking one coroutine (from the first send until all have received, divided by n).
// Memory per task: its coroutine frames, its pending receive, its channel and its slots in the
// vectors of handles.
figures blocked_recv(const char* name, int n, coroutine_kind kind) {
  asio::io_context ctx(1);
  std::vector<custody::Sender<item>> senders;
  std::vector<custody::Receiver<item>> receivers;
  receive_counts counts;
  std::atomic<int>& waiting = counts.waiting;
  std::atomic<int>& received = counts.received;
  std::atomic<item>& sum = counts.sum;
  const double before = heap_in_use();
  const auto spawn_start = bench_clock::now();
  senders.reserve(static_cast<std::size_t>(n));
  receivers.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    custody::Channel<item> ch(0);
    senders.emplace_back(ch);
    receivers.emplace_back(ch);
  }
  const double channels = heap_in_use();
  for (custody::Receiver<item>& rx : receivers) {
    if (kind == coroutine_kind::task) {
      custody::asio::spawn(ctx.get_executor(), task_receive_once(name, std::move(rx), counts),
                           rethrow);
      continue;
    }
    asio::co_spawn(
        ctx,
        [&, rx = std::move(rx)]() -> asio::awaitable<void> {
          waiting.fetch_add(1, std::memory_order_relaxed);
          custody::received<item> r = co_await custody::async_recv(rx, asio::use_awaitable);
          if (!r) fail(name, "a receive ended without a value");
          sum.fetch_add(*r, std::memory_order_relaxed);
          received.fetch_add(1, std::memory_order_relaxed);
        },
        rethrow);
  }
  receivers.clear();  // moved into the coroutines: only the vector's storage is left
  const double spawned = heap_in_use();
  // Runs every coroutine up to its receive, where it suspends: nothing is ready after that.
  ctx.poll();
  const double spawn_ms = ms_since(spawn_start);
  const int blocked = waiting.load() - received.load();
  if (blocked != n) fail(name, "not every coroutine is suspended in its receive");
  const double suspended = heap_in_use();
  const double per_task = (suspended - before) / n;
  // Where the bytes go: the channel with its two handles' vector slots, and the coroutine: what
  // co_spawn allocates before it runs, then what running up to the receive adds (the
  // coroutine's own frame and the pending receive's operation state).
  const double per_channel = (channels - before) / n;
  const double per_coroutine = (suspended - channels) / n;
  const double per_spawn = (spawned - channels) / n;

  const auto wake_start = bench_clock::now();
  std::thread runner([&] { ctx.run(); });  // returns once every receive has completed
  for (int i = 0; i < n; ++i) {
    if (senders[static_cast<std::size_t>(i)].send(i) != custody::status::ok) {
      fail(name, "a send was not taken");
    }
  }
  runner.join();
  const double wake_ms = ms_since(wake_start);
  if (received.load() != n) fail(name, "not every coroutine received its value");
  if (sum.load() != item{n} * (n - 1) / 2) fail(name, "wrong sum of received values");
  return {wake_ms * 1e6 / n,
          {{static_cast<double>(n), "coroutines"},
           {static_cast<double>(blocked), "blocked_at_once"},
           {per_task, "bytes/task"},
           {per_channel, "bytes/task_channel"},
           {per_coroutine, "bytes/task_coroutine"},
           {per_spawn, "bytes/task_coroutine_spawned"},
           {spawn_ms, "ms_to_spawn_all"},
           {wake_ms, "ms_to_wake_all"}}};
}

// What the subscribers of latest_publish share.
struct publish_counts {
  publish_counts(int n, int publishes) : remaining(n), publishes(publishes) {}
  std::atomic<item> current{0};
  std::atomic<int> remaining;
  std::atomic<int> waiting{0};
  std::atomic<int> wrong{0};
  custody::Channel<int> all_have{1};  // one token per publish, from its last subscriber
  const int publishes;
};

// latest_publish's subscriber as a custody::asio::Task.
custody::asio::Task<void> task_follow(const char* name, custody::Subscription<item> sub,
                                      publish_counts& counts) {
  counts.waiting.fetch_add(1, std::memory_order_relaxed);
  item last = -1;
  for (;;) {
    custody::received<item> r = co_await custody::async_recv(sub, custody::asio::use_task);
    if (!r) break;
    if (*r <= last) counts.wrong.fetch_add(1, std::memory_order_relaxed);
    last = *r;
    if (*r == counts.current.load(std::memory_order_acquire) &&
        counts.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        counts.all_have.try_send(1) != custody::status::ok) {
      fail(name, "a publish was reported reached twice");
    }
  }
  if (last != counts.publishes) counts.wrong.fetch_add(1, std::memory_order_relaxed);
}

// n policy::latest() subscriptions of one store, each read by a coroutine suspended in its
// async_recv; the io_context is run by two threads. The owner (this thread) publishes
// `publishes` values, each timed from the publish until every subscriber has received it, the
// next once that happened. One op = one publish reaching all n subscribers (the median).
// Before the timed publishes one untimed publish reaches every subscriber, so the owner has taken
// the subscriptions into its list when memory is measured (its entries count per subscriber).
figures latest_publish(const char* name, int n, int publishes, coroutine_kind kind) {
  auto made = custody::make_store<item>(0);
  auto& owner = made.owner;
  asio::io_context ctx(publish_threads);
  publish_counts counts{n, publishes};
  std::atomic<item>& current = counts.current;
  std::atomic<int>& remaining = counts.remaining;
  std::atomic<int>& waiting = counts.waiting;
  std::atomic<int>& wrong = counts.wrong;
  custody::Channel<int>& all_have = counts.all_have;
  const double before = heap_in_use();
  std::vector<custody::Subscription<item>> subs;
  subs.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) subs.push_back(made.store.subscribe(custody::policy::latest()));
  const double subscribed = heap_in_use();
  for (custody::Subscription<item>& s : subs) {
    if (kind == coroutine_kind::task) {
      custody::asio::spawn(ctx.get_executor(), task_follow(name, std::move(s), counts), rethrow);
      continue;
    }
    asio::co_spawn(
        ctx,
        [&, sub = std::move(s)]() -> asio::awaitable<void> {
          waiting.fetch_add(1, std::memory_order_relaxed);
          item last = -1;
          for (;;) {
            custody::received<item> r = co_await custody::async_recv(sub, asio::use_awaitable);
            if (!r) break;
            if (*r <= last) wrong.fetch_add(1, std::memory_order_relaxed);
            last = *r;
            if (*r == current.load(std::memory_order_acquire) &&
                remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
                all_have.try_send(1) != custody::status::ok) {
              fail(name, "a publish was reported reached twice");
            }
          }
          if (last != publishes) wrong.fetch_add(1, std::memory_order_relaxed);
        },
        rethrow);
  }
  // The untimed publish of 0 lands in every subscription before any coroutine runs; each
  // receives it and suspends again, and nothing is ready after that.
  if (owner.publish(0) != custody::status::ok) fail(name, "publish failed");
  ctx.poll();
  if (waiting.load() != n || remaining.load() != 0 || !all_have.try_recv()) {
    fail(name, "not every subscriber received the first publish");
  }
  const int blocked = waiting.load();
  const double suspended = heap_in_use();
  const double per_subscriber = (suspended - before) / n;
  // The subscription with its vector slot; the coroutine with its pending receive, plus the
  // owner's two list entries for the subscription, which the first publish makes.
  const double per_subscription = (subscribed - before) / n;
  const double per_coroutine = (suspended - subscribed) / n;

  std::vector<std::thread> runners;
  for (int t = 0; t < publish_threads; ++t) runners.emplace_back([&] { ctx.run(); });
  std::vector<double> times;
  for (item k = 1; k <= publishes; ++k) {
    current.store(k, std::memory_order_release);
    remaining.store(n, std::memory_order_release);
    const auto start = bench_clock::now();
    if (owner.publish(k) != custody::status::ok) fail(name, "publish failed");
    if (!all_have.recv()) fail(name, "the reached signal closed");
    times.push_back(ms_since(start));
  }
  owner.close();  // every subscriber then sees closed and returns
  for (std::thread& t : runners) t.join();
  if (wrong.load() != 0) fail(name, "a subscriber missed the last update or went back");
  std::sort(times.begin(), times.end());
  const double median = times.size() % 2 == 1
                            ? times[times.size() / 2]
                            : (times[times.size() / 2 - 1] + times[times.size() / 2]) / 2;
  return {median * 1e6,
          {{static_cast<double>(n), "subscribers"},
           {static_cast<double>(blocked), "blocked_at_once"},
           {per_subscriber, "bytes/subscriber"},
           {per_subscription, "bytes/subscriber_subscription"},
           {per_coroutine, "bytes/subscriber_coroutine"},
           {median, "ms_publish_to_all_median"},
           {times.back(), "ms_publish_to_all_max"}}};
}

struct workload {
  const char* name;
  figures (*run)(const char* name);
};

// Output order; the first two are bench/go/scale.go's, the millions have no Go twin.
const workload workloads[] = {
    {"scale_100k_blocked_recv",
     [](const char* w) { return blocked_recv(w, scale_tasks, coroutine_kind::awaitable); }},
    {"scale_100k_latest_publish",
     [](const char* w) {
       return latest_publish(w, scale_tasks, scale_publishes, coroutine_kind::awaitable);
     }},
    {"scale_1m_blocked_recv",
     [](const char* w) { return blocked_recv(w, million_tasks, coroutine_kind::awaitable); }},
    // The same with custody::asio::Task (Go twins: the rows above without "task").
    {"scale_100k_task_blocked_recv",
     [](const char* w) { return blocked_recv(w, scale_tasks, coroutine_kind::task); }},
    {"scale_100k_task_latest_publish",
     [](const char* w) {
       return latest_publish(w, scale_tasks, scale_publishes, coroutine_kind::task);
     }},
    {"scale_1m_task_blocked_recv",
     [](const char* w) { return blocked_recv(w, million_tasks, coroutine_kind::task); }},
};

}  // namespace

int main(int argc, char** argv) {
  std::regex only(".*");
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--list") {
      list = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = std::regex(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--only REGEX] [--list]\n", argv[0]);
      return 2;
    }
  }
  for (const workload& w : workloads) {
    if (!std::regex_search(w.name, only)) continue;
    if (list) {
      std::printf("%s\n", w.name);
      continue;
    }
    const figures f = w.run(w.name);
    std::printf("%s %.1f ns/op\n", w.name, f.ns_per_op);
    for (const figure& e : f.extra) std::printf("%s %.1f %s\n", w.name, e.value, e.unit);
    std::fflush(stdout);
  }
  return 0;
}
