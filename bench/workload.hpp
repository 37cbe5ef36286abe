#pragma once
// What every benchmark binary here shares. A workload is one full run of N operations (threads
// created inside the run); each benchmark iteration is one such run, after one untimed warm-up
// run of N/10. The figure bench/compare reads is the `ns_per_op` counter: the run's wall time
// divided by the operations it moved.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include <benchmark/benchmark.h>

namespace bench {

struct workload {
  const char* name;
  std::int64_t ops;  // operations in a timed run
  std::chrono::nanoseconds (*run)(std::int64_t ops);
};

/// Runs `w` as one benchmark and returns its ns per operation (also set as `ns_per_op`).
inline double run_workload(benchmark::State& state, const workload& w) {
  constexpr std::int64_t warmup_div = 10;
  w.run(w.ops / warmup_div);
  double total_ns = 0;
  for (auto _ : state) {
    const std::chrono::nanoseconds elapsed = w.run(w.ops);
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
    total_ns += static_cast<double>(elapsed.count());
  }
  const auto iterations = static_cast<double>(state.iterations());
  const double ns_per_op = total_ns / (iterations * static_cast<double>(w.ops));
  state.counters["ns_per_op"] = ns_per_op;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * w.ops);
  return ns_per_op;
}

/// main() of a benchmark binary: registers `workloads` in order and runs the selected ones.
/// `report(state, workload, ns_per_op)` may add counters of its own.
template <std::size_t N, class Report>
int run_main(int argc, char** argv, const workload (&workloads)[N], Report report) {
  for (const workload& w : workloads) {
    benchmark::RegisterBenchmark(
        w.name, [&w, report](benchmark::State& s) { report(s, w, run_workload(s, w)); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
