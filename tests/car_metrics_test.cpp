// custody-car --metrics serves Prometheus metrics while it runs: scraped with curl, the
// counters move, and the last scrape agrees with the summary. Deterministic: every bound comes
// from lines the car printed before or after a scrape, never from timing.

#include <cstdio>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "options.hpp"
#include "support/child_process.hpp"
#include "support/scrape.hpp"

namespace {
namespace car_metrics_test {

using custody_test::scrape;

using namespace std::chrono_literals;

constexpr auto kTimeout = 60s;

const std::regex kServing(R"(; metrics at http://(127\.0\.0\.1:\d+)/metrics)");
const std::regex kScreenReading(R"(^\d{2}:\d{2}:\d{2}\.\d{3}  speed )");
const std::regex kNotShown(R"(\((\d+) earlier updates? not shown\))");
const std::regex kAccepted(R"(  set speed .* km/h: accepted$)");
const std::regex kSummary(R"(^summary: (\d+) updates?, (\d+) set requests? accepted, )");

constexpr std::string_view kPublishes = R"(custody_store_publishes_total{store="car data"})";
constexpr std::string_view kAcceptedSets =
    R"(custody_store_set_answers_total{store="car data",status="accepted"})";

std::uint64_t sample(const std::string& body, std::string_view series) {
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series) && line.size() > series.size() && line[series.size()] == ' ') {
      return std::stoull(line.substr(series.size() + 1));
    }
  }
  ADD_FAILURE() << series << " not in:\n" << body;
  return 0;
}

/// Updates the screen lines out[from...] account for: each reading, and those it says it did
/// not show.
std::uint64_t readings_in(const std::vector<std::string>& out, std::size_t from) {
  std::uint64_t n = 0;
  for (std::size_t i = from; i < out.size(); ++i) {
    if (!std::regex_search(out[i], kScreenReading)) continue;
    std::smatch m;
    n += 1 + (std::regex_search(out[i], m, kNotShown) ? std::stoull(m[1]) : 0);
  }
  return n;
}

std::uint64_t accepted_in(const std::vector<std::string>& out, std::size_t from, std::size_t to) {
  std::uint64_t n = 0;
  for (std::size_t i = from; i < to; ++i) n += std::regex_search(out[i], kAccepted) ? 1 : 0;
  return n;
}

class CarMetrics : public testing::TestWithParam<const char*> {};

TEST_P(CarMetrics, CountersMoveWhileItRunsAndTheLastScrapeAgreesWithTheSummary) {
  if (!car::metrics_available()) GTEST_SKIP() << "built without prometheus-cpp";
  if (std::string_view(GetParam()) == "coroutines" && !car::coroutines_available()) {
    GTEST_SKIP() << "built without coroutine support";
  }
  custody_test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  custody_test::Process car(
      "custody-car", CUSTODY_CAR_BINARY,
      {"--log-file", dir.path() + "/log.txt", "--poll-interval", "20ms", "--increase-every", "20ms",
       "--metrics", "127.0.0.1:0", "--runtime", GetParam()},
      dir.path(), {kTimeout, 0, {}});
  const std::optional<std::string> header = car.read_until(kServing);
  ASSERT_TRUE(header) << car.err();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*header, m, kServing));
  const std::string address = m[1];

  ASSERT_TRUE(car.read_until(kScreenReading)) << car.err();
  const std::uint64_t first = sample(scrape(address), kPublishes);
  // More readings than had been published at the first scrape: publishing went on since.
  while (readings_in(car.out(), 0) <= first + 1) ASSERT_TRUE(car.read_until(kScreenReading));
  while (accepted_in(car.out(), 0, car.out().size()) == 0) ASSERT_TRUE(car.read_until(kAccepted));

  const std::size_t printed_before = car.out().size();
  const std::string last = scrape(address);
  const std::uint64_t publishes = sample(last, kPublishes);
  const std::uint64_t accepted = sample(last, kAcceptedSets);
  EXPECT_GT(publishes, first);
  car.signal(SIGINT);
  const int exit_code = car.finish();
  EXPECT_TRUE(exit_code == 0 || exit_code == 3) << exit_code << "\n" << car.err();

  std::optional<std::uint64_t> updates, sets_accepted;
  for (const std::string& line : car.out()) {
    if (std::regex_search(line, m, kSummary)) {
      updates = std::stoull(m[1]);
      sets_accepted = std::stoull(m[2]);
    }
  }
  ASSERT_TRUE(updates && sets_accepted) << car.out().back();
  // Every reading the summary counts was published to "car data": those after the scrape
  // reached the screen after it, as readings or as readings not shown.
  EXPECT_LE(publishes, *updates);
  EXPECT_LE(*updates - publishes, readings_in(car.out(), printed_before));
  // Each set answer is printed once it is in: those printed before the scrape are counted in
  // it, those printed after it are all the summary can add.
  const std::size_t printed = car.out().size();
  EXPECT_GE(accepted, accepted_in(car.out(), 0, printed_before));
  EXPECT_LE(accepted, *sets_accepted);
  EXPECT_LE(*sets_accepted - accepted, accepted_in(car.out(), printed_before, printed));
}

INSTANTIATE_TEST_SUITE_P(Runtimes, CarMetrics, testing::Values("threads", "coroutines"));

TEST(CarMetricsFlag, ABuildWithoutPrometheusRefusesTheFlagAndSaysWhy) {
  const std::vector<std::string_view> args{"--metrics", "127.0.0.1:9464"};
  const car::ParsedOptions parsed = car::parse_options(args);
  if (car::metrics_available()) {
    ASSERT_TRUE(parsed.options) << parsed.error;
    EXPECT_EQ(car::usage().find("--metrics is not available"), std::string::npos);
  } else {
    EXPECT_FALSE(parsed.options);
    EXPECT_EQ(parsed.error,
              "--metrics: not available in this build (it needs prometheus-cpp: apt-get install "
              "prometheus-cpp-dev, then build again)");
    EXPECT_NE(car::usage().find("--metrics is not available"), std::string::npos);
  }
}

TEST(CarMetricsFlag, AMalformedAddressIsABadFlag) {
  if (!car::metrics_available()) GTEST_SKIP() << "built without prometheus-cpp";
  const std::vector<std::string_view> args{"--metrics", "localhost:9464"};
  const car::ParsedOptions parsed = car::parse_options(args);
  EXPECT_FALSE(parsed.options);
  EXPECT_EQ(parsed.error,
            "--metrics: \"localhost:9464\" is not an address to listen on: the host is not a "
            "numeric IPv4 address (use host:port with a numeric IPv4 host, e.g. 127.0.0.1:9464)");
  const std::vector<std::string_view> good{"--metrics", "127.0.0.1:0"};
  const car::ParsedOptions ok = car::parse_options(good);
  ASSERT_TRUE(ok.options) << ok.error;
  EXPECT_EQ(ok.options->metrics_address, "127.0.0.1:0");
}

TEST(CarMetricsFlag, AnAddressInUseStopsTheCarBeforeAnythingStarts) {
  if (!car::metrics_available()) GTEST_SKIP() << "built without prometheus-cpp";
  custody_test::TempDir dir;
  custody_test::Process first("custody-car", CUSTODY_CAR_BINARY,
                              {"--log-file", dir.path() + "/first.txt", "--metrics", "127.0.0.1:0"},
                              dir.path(), {kTimeout, 0, {}});
  const std::optional<std::string> header = first.read_until(kServing);
  ASSERT_TRUE(header) << first.err();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*header, m, kServing));
  const std::string taken = m[1];
  custody_test::Process second("custody-car", CUSTODY_CAR_BINARY,
                               {"--log-file", dir.path() + "/second.txt", "--metrics", taken},
                               dir.path(), {kTimeout, 0, {}});
  EXPECT_EQ(second.finish(), 1);
  EXPECT_NE(second.err().find("custody-car: custody::metrics: cannot listen on " + taken +
                              ": Address already in use; nothing was started"),
            std::string::npos)
      << second.err();
  first.signal(SIGINT);
  EXPECT_NE(first.finish(), -1);
}

}  // namespace car_metrics_test
}  // namespace
