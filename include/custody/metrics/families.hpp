#pragma once
// custody::metrics::families(): one custody::inspection as Prometheus metric families, one
// sample per named object with its name as a label. Pure conversion: nothing here reads live
// objects or serves anything (metrics.hpp does).
//
// Names are custody_<object>_<what>, counters end in _total, and HELP says what each means
// (docs/metrics.md lists them all).

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../inspection.hpp"

namespace custody::metrics {

namespace detail {

using prometheus::MetricType;
using labels = std::vector<prometheus::ClientMetric::Label>;

/// One metric with a sample per report of a kind: its name, HELP text, type and value.
template <class Report>
struct per_object {
  const char* name;                ///< the metric's name
  const char* help;                ///< its HELP text
  MetricType type;                 ///< gauge or counter
  double (*value)(const Report&);  ///< its value for one report
};

// A new field of a report becomes a metric with one more row in its table.
inline constexpr per_object<channel_report> channel_metrics[] = {
    {"custody_channel_capacity", "Values the channel can buffer (0: unbuffered).",
     MetricType::Gauge, [](const channel_report& c) { return static_cast<double>(c.capacity); }},
    {"custody_channel_length", "Values buffered in the channel, not yet received.",
     MetricType::Gauge, [](const channel_report& c) { return static_cast<double>(c.length); }},
    {"custody_channel_closed", "1 once the channel is closed, else 0.", MetricType::Gauge,
     [](const channel_report& c) { return c.closed ? 1.0 : 0.0; }},
    {"custody_channel_sends_total", "Sends completed on the channel since it was made.",
     MetricType::Counter, [](const channel_report& c) { return static_cast<double>(c.sends); }},
    {"custody_channel_receives_total", "Receives completed on the channel since it was made.",
     MetricType::Counter, [](const channel_report& c) { return static_cast<double>(c.receives); }},
    {"custody_channel_blocked_seconds_total",
     "Time the channel's waiters spent asleep on it, added when each wakes.", MetricType::Counter,
     [](const channel_report& c) { return static_cast<double>(c.blocked_ms_total) / 1000.0; }},
};

inline constexpr per_object<store_report> store_metrics[] = {
    {"custody_store_version", "The store's version: 1 when made, one more with every publish.",
     MetricType::Gauge, [](const store_report& s) { return static_cast<double>(s.version); }},
    {"custody_store_publishes_total", "Values the store's owner published.", MetricType::Counter,
     [](const store_report& s) { return static_cast<double>(s.publishes); }},
    {"custody_store_pending_sets", "Set requests queued for the owner, not yet taken.",
     MetricType::Gauge, [](const store_report& s) { return static_cast<double>(s.pending_sets); }},
    {"custody_store_closed", "1 once the store's owner is gone, else 0.", MetricType::Gauge,
     [](const store_report& s) { return s.closed ? 1.0 : 0.0; }},
};

inline constexpr per_object<subscriber_report> subscriber_metrics[] = {
    {"custody_subscriber_lag",
     "Updates delivered to the subscription and not yet received (its backlog).", MetricType::Gauge,
     [](const subscriber_report& s) { return static_cast<double>(s.backlog); }},
    {"custody_subscriber_missed_total",
     "Updates the subscription missed (Subscription::missed()): overwritten or not delivered.",
     MetricType::Counter, [](const subscriber_report& s) { return static_cast<double>(s.missed); }},
};

inline labels labels_of(const channel_report& c) { return {{"channel", c.name}}; }
inline labels labels_of(const store_report& s) { return {{"store", s.name}}; }
inline labels labels_of(const subscriber_report& s) {
  return {{"subscriber", s.name}, {"store", s.store}, {"policy", s.policy}};
}

inline prometheus::ClientMetric sample(labels l, MetricType type, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(l);
  (type == MetricType::Counter ? m.counter.value : m.gauge.value) = value;
  return m;
}

inline prometheus::MetricFamily family(const char* name, const char* help, MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

template <class Report, std::size_t N>
void add_per_object(std::vector<prometheus::MetricFamily>& into,
                    const per_object<Report> (&table)[N], const std::vector<Report>& reports) {
  for (const per_object<Report>& m : table) {
    prometheus::MetricFamily f = family(m.name, m.help, m.type);
    for (const Report& r : reports) f.metric.push_back(sample(labels_of(r), m.type, m.value(r)));
    into.push_back(std::move(f));
  }
}

inline prometheus::MetricFamily set_answers(const std::vector<store_report>& stores) {
  prometheus::MetricFamily f = family(
      "custody_store_set_answers_total",
      "set() calls on the store that returned each status (label status).", MetricType::Counter);
  for (const store_report& s : stores) {
    for (std::size_t i = 0; i < set_status_count; ++i) {
      const auto status = static_cast<set_status>(i);
      f.metric.push_back(
          sample({{"store", s.name}, {"status", std::string(set_status_key(status))}},
                 MetricType::Counter, static_cast<double>(s.set_answers.by_status[i])));
    }
  }
  return f;
}

inline prometheus::MetricFamily tasks_by_state(const std::vector<task_group_report>& groups) {
  prometheus::MetricFamily f =
      family("custody_task_group_tasks",
             "Tasks of the group in each state: running, blocked (in a channel, select or store "
             "operation) or finished.",
             MetricType::Gauge);
  constexpr std::array states{task_state::running, task_state::blocked, task_state::finished};
  for (const task_group_report& g : groups) {
    for (const task_state state : states) {
      std::size_t n = 0;
      for (const task_report& t : g.tasks) n += t.state == state ? 1 : 0;
      f.metric.push_back(sample({{"group", g.name}, {"state", std::string(to_string(state))}},
                                MetricType::Gauge, static_cast<double>(n)));
    }
  }
  return f;
}

}  // namespace detail

/// Every metric of `snapshot`, one family per metric, each with a sample per named object
/// (none when there is no such object). Throws std::bad_alloc.
inline std::vector<prometheus::MetricFamily> families(const inspection& snapshot) {
  std::vector<prometheus::MetricFamily> out;
  detail::add_per_object(out, detail::channel_metrics, snapshot.channels);
  detail::add_per_object(out, detail::store_metrics, snapshot.stores);
  out.push_back(detail::set_answers(snapshot.stores));
  detail::add_per_object(out, detail::subscriber_metrics, snapshot.subscribers);
  out.push_back(detail::tasks_by_state(snapshot.task_groups));
  return out;
}

}  // namespace custody::metrics
