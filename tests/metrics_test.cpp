// custody::metrics: the families an inspection becomes, and the Exporter serving them over
// HTTP (scraped with curl), including a blocked subscriber's lag.

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/inspect.hpp>
#include <custody/metrics.hpp>
#include <custody/store.hpp>

#include "support/scrape.hpp"

namespace {
namespace metrics_test {

using custody_test::scrape;

using prometheus::MetricFamily;
using prometheus::MetricType;

/// The value of the sample line starting with `series` (name and labels as served), if any.
std::optional<double> sample(const std::string& body, std::string_view series) {
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series) && line.size() > series.size() && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

const MetricFamily* find(const std::vector<MetricFamily>& families, std::string_view name) {
  for (const MetricFamily& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(MetricsFamilies, EachNamedObjectIsASampleLabelledWithItsName) {
  custody::inspection snapshot;
  custody::channel_report& jobs = snapshot.channels.emplace_back();
  jobs.name = "jobs";
  jobs.capacity = 8;
  jobs.length = 3;
  jobs.closed = true;
  jobs.sends = 11;
  jobs.receives = 7;
  jobs.blocked_ms_total = 2500;
  custody::store_report& car = snapshot.stores.emplace_back();
  car.name = "car";
  car.version = 5;
  car.publishes = 4;
  car.pending_sets = 2;
  car.set_answers[custody::set_status::rejected] = 7;
  custody::subscriber_report& printer = snapshot.subscribers.emplace_back();
  printer.name = "printer";
  printer.store = "car";
  printer.policy = "block(4)";
  printer.backlog = 3;
  printer.missed = 9;
  custody::task_group_report& group = snapshot.task_groups.emplace_back();
  group.name = "car tasks";
  for (const custody::task_state state :
       {custody::task_state::blocked, custody::task_state::blocked,
        custody::task_state::finished}) {
    group.tasks.emplace_back().state = state;
  }
  const std::vector<MetricFamily> families = custody::metrics::families(snapshot);

  const MetricFamily* length = find(families, "custody_channel_length");
  ASSERT_NE(length, nullptr);
  EXPECT_EQ(length->type, MetricType::Gauge);
  ASSERT_EQ(length->metric.size(), 1u);
  EXPECT_EQ(length->metric[0].label[0].name, "channel");
  EXPECT_EQ(length->metric[0].label[0].value, "jobs");
  EXPECT_EQ(length->metric[0].gauge.value, 3);
  EXPECT_EQ(find(families, "custody_channel_capacity")->metric[0].gauge.value, 8);
  EXPECT_EQ(find(families, "custody_channel_closed")->metric[0].gauge.value, 1);
  const MetricFamily* sends = find(families, "custody_channel_sends_total");
  ASSERT_NE(sends, nullptr);
  EXPECT_EQ(sends->type, MetricType::Counter);
  EXPECT_EQ(sends->metric[0].counter.value, 11);
  EXPECT_EQ(find(families, "custody_channel_receives_total")->metric[0].counter.value, 7);
  EXPECT_EQ(find(families, "custody_channel_blocked_seconds_total")->metric[0].counter.value, 2.5);

  const MetricFamily* publishes = find(families, "custody_store_publishes_total");
  ASSERT_NE(publishes, nullptr);
  EXPECT_EQ(publishes->type, MetricType::Counter);
  EXPECT_EQ(publishes->metric[0].counter.value, 4);
  EXPECT_EQ(find(families, "custody_store_version")->metric[0].gauge.value, 5);
  EXPECT_EQ(find(families, "custody_store_pending_sets")->metric[0].gauge.value, 2);
  const MetricFamily* answers = find(families, "custody_store_set_answers_total");
  ASSERT_NE(answers, nullptr);
  ASSERT_EQ(answers->metric.size(), custody::set_status_count);  // zeros too: rates need them
  const auto& rejected = answers->metric[static_cast<std::size_t>(custody::set_status::rejected)];
  EXPECT_EQ(rejected.label[1].name, "status");
  EXPECT_EQ(rejected.label[1].value, "rejected");
  EXPECT_EQ(rejected.counter.value, 7);

  const MetricFamily* lag = find(families, "custody_subscriber_lag");
  ASSERT_NE(lag, nullptr);
  ASSERT_EQ(lag->metric[0].label.size(), 3u);
  EXPECT_EQ(lag->metric[0].label[2].value, "block(4)");
  EXPECT_EQ(lag->metric[0].gauge.value, 3);
  EXPECT_EQ(find(families, "custody_subscriber_missed_total")->metric[0].counter.value, 9);

  const MetricFamily* tasks = find(families, "custody_task_group_tasks");
  ASSERT_NE(tasks, nullptr);
  ASSERT_EQ(tasks->metric.size(), 3u);  // running, blocked, finished
  EXPECT_EQ(tasks->metric[0].gauge.value, 0);
  EXPECT_EQ(tasks->metric[1].label[1].value, "blocked");
  EXPECT_EQ(tasks->metric[1].gauge.value, 2);
  EXPECT_EQ(tasks->metric[2].gauge.value, 1);
  for (const MetricFamily& f : families) EXPECT_FALSE(f.help.empty()) << f.name;
}

TEST(MetricsExporter, ABlockedSubscribersLagIsServedAsInspectReportsIt) {
  custody::metrics::Exporter exporter("127.0.0.1:0");
  ASSERT_NE(exporter.port(), 0);
  auto [owner, store] = custody::make_store<int>(0, {.name = "metered"});
  auto slow = store.subscribe(custody::policy::block(1), "slow reader");
  // The second publish finds the subscription full and waits for room.
  std::thread publisher([&o = owner] {
    (void)o.publish(1);
    (void)o.publish(2);
  });
  custody::inspection now;
  for (;;) {  // until the second publish is in: then the owner waits and nothing moves
    now = custody::inspect();
    const auto s = std::find_if(now.stores.begin(), now.stores.end(),
                                [](const auto& r) { return r.name == "metered"; });
    if (s != now.stores.end() && s->publishes == 2) break;
    std::this_thread::yield();
  }
  const auto sub = std::find_if(now.subscribers.begin(), now.subscribers.end(),
                                [](const auto& r) { return r.name == "slow reader"; });
  ASSERT_NE(sub, now.subscribers.end());

  constexpr std::string_view slow_lag =
      R"x(custody_subscriber_lag{subscriber="slow reader",store="metered",policy="block(1)"})x";
  const std::string body = scrape(exporter.address());
  const std::optional<double> lag = sample(body, slow_lag);
  ASSERT_TRUE(lag) << body;
  EXPECT_EQ(*lag, static_cast<double>(sub->backlog));
  EXPECT_EQ(*lag, 1);
  EXPECT_EQ(sample(body, R"(custody_store_publishes_total{store="metered"})"), 2);

  ASSERT_TRUE(slow.recv());  // room: the owner's wait ends
  publisher.join();
  EXPECT_EQ(sample(scrape(exporter.address()), slow_lag), 1);  // the second value, delivered now
}

TEST(MetricsExporter, AMalformedAddressIsRefusedByName) {
  for (const char* bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:x",
                          "[::1]:9464", "300.1.1.1:80"}) {
    try {
      custody::metrics::Exporter exporter(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\""), std::string::npos)
          << e.what();
    }
  }
}

TEST(MetricsExporter, APortInUseIsASystemErrorNamingTheAddress) {
  custody::metrics::Exporter first("127.0.0.1:0");
  const std::string taken = first.address();
  try {
    custody::metrics::Exporter second(taken);
    ADD_FAILURE() << taken << " was listened on twice";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
}

TEST(MetricsExporter, IsMadeExplicitlyAndNeverCopied) {
  static_assert(std::is_constructible_v<custody::metrics::Exporter, std::string_view>);
  static_assert(!std::is_convertible_v<std::string_view, custody::metrics::Exporter>);
  static_assert(!std::is_copy_constructible_v<custody::metrics::Exporter>);
  static_assert(!std::is_copy_assignable_v<custody::metrics::Exporter>);
}

}  // namespace metrics_test
}  // namespace
