// How long one get() of a large trivially copyable value can take while the owner publishes
// without pause: the reader's worst wait, not its average, is what a slow get() costs.
//
//   custody-bench-store_get_wait [gets]
//
// Prints the median, 99th and 99.9th percentiles and maximum time of one get() of a 4 KiB value,
// over `gets` gets (default 200000) made while another thread publishes as fast as it can.

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <custody/store.hpp>

namespace {

struct Page {
  std::array<std::uint64_t, 512> words;  // 4 KiB
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t gets = 200'000;
  if (argc > 1) {
    char* end = nullptr;
    errno = 0;
    gets = std::strtoull(argv[1], &end, 10);
    // strtoull would skip blanks and negate a '-': the count must be digits only.
    const bool digits = std::isdigit(static_cast<unsigned char>(argv[1][0])) != 0;
    if (argc > 2 || !digits || *end != '\0' || errno == ERANGE || gets == 0) {
      std::fprintf(stderr, "usage: %s [gets]   (gets: a positive whole number, default 200000)\n",
                   argv[0]);
      return 2;
    }
  }
  auto [owner, store] = custody::make_store<Page>(Page{});
  custody::Getter<Page> getter = store;
  std::atomic<bool> done{false};
  std::thread publisher([&, o = std::move(owner)]() mutable {
    Page p{};
    while (!done.load(std::memory_order_relaxed)) {
      ++p.words[0];
      p.words[511] = p.words[0];
      (void)o.publish(p);
    }
  });
  std::vector<std::int64_t> ns(gets);
  std::uint64_t torn = 0;
  for (std::size_t i = 0; i < gets; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const Page p = getter.get();
    ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start)
                .count();
    torn += p.words[0] != p.words[511] ? 1 : 0;
  }
  done = true;
  publisher.join();
  std::sort(ns.begin(), ns.end());
  std::printf(
      "get() of a 4 KiB value under a nonstop publisher, %zu gets: median %lld ns, "
      "p99 %lld ns, p99.9 %lld ns, max %lld ns, torn %llu\n",
      gets, static_cast<long long>(ns[gets / 2]), static_cast<long long>(ns[gets * 99 / 100]),
      static_cast<long long>(ns[gets * 999 / 1000]), static_cast<long long>(ns[gets - 1]),
      static_cast<unsigned long long>(torn));
  return torn == 0 ? 0 : 1;
}
