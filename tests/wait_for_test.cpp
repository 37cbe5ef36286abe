// custody::wait_for_graph and custody::Watchdog: the graph of who waits for whom, its cycles
// (likely deadlocks), its text and DOT renderings, and the watchdog that reports a stalled
// task group.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/inspect.hpp>
#include <custody/task_group.hpp>
#include <custody/wait_for.hpp>
#include <custody/watchdog.hpp>

#include "support/find_program.hpp"
#include "support/inspection.hpp"

namespace {
namespace wait_for_test {

using namespace std::chrono_literals;
using custody_test::find;
using custody_test::inspect_until;

custody::task_report blocked_task(std::string name, std::string channel, bool sending = false) {
  custody::task_report t;
  t.name = std::move(name);
  t.state = custody::task_state::blocked;
  t.operation = (sending ? "send on \"" : "recv on \"") + channel + "\"";
  t.blocked_ms = 100;
  t.waits_on.push_back({std::move(channel), sending});
  return t;
}

custody::channel_report used_channel(std::string name, std::string sender, std::string receiver) {
  custody::channel_report c;
  c.name = std::move(name);
  c.last_sender = std::move(sender);
  c.last_receiver = std::move(receiver);
  return c;
}

/// Two tasks, each waiting to receive what the other last sent.
custody::inspection crossed_snapshot() {
  custody::inspection i;
  i.channels.push_back(used_channel("to_a", "B", "A"));
  i.channels.push_back(used_channel("to_b", "A", "B"));
  i.task_groups.push_back({"pair", {blocked_task("A", "to_a"), blocked_task("B", "to_b")}});
  return i;
}

bool has_dot() { return !custody_test::find_program("dot").empty(); }

/// Whether Graphviz's dot accepts `text`.
bool dot_accepts(const std::string& text) {
  // One file per process: tests run in parallel, each in its own process.
  const std::string path =
      ::testing::TempDir() + "wait_for_test." + std::to_string(::getpid()) + ".dot";
  std::ofstream(path) << text;
  const bool accepted = std::system(("dot -Tsvg " + path + " -o /dev/null").c_str()) == 0;
  std::remove(path.c_str());
  return accepted;
}

TEST(WaitForGraph, CrossedWaitsAreALikelyDeadlock) {
  const custody::wait_for_graph graph(crossed_snapshot());
  ASSERT_TRUE(graph.likely_deadlock());
  EXPECT_EQ(graph.cycle(), (std::vector<std::string>{"A", "to_a", "B", "to_b", "A"}));
  const std::string text = graph.to_text();
  EXPECT_NE(text.find("likely deadlock: A -> to_a -> B -> to_b -> A"), std::string::npos);
  EXPECT_NE(text.find("  waits to receive from \"to_a\"; last sender \"B\""), std::string::npos);
}

TEST(WaitForGraph, AServerThatRunsBreaksTheCycle) {
  custody::inspection i = crossed_snapshot();
  i.task_groups[0].tasks[1] = custody::task_report{"B", custody::task_state::running, "", 0, {}};
  const custody::wait_for_graph graph(i);
  EXPECT_FALSE(graph.likely_deadlock());
  EXPECT_NE(graph.to_text().find("no wait-for cycle"), std::string::npos);
  EXPECT_EQ(graph.to_text().find("likely deadlock"), std::string::npos);
}

TEST(WaitForGraph, ASenderWaitsForTheLastReceiver) {
  custody::inspection i;
  i.channels.push_back(used_channel("requests", "client", "server"));
  i.channels.push_back(used_channel("replies", "server", "client"));
  // The client cannot send a request until the server receives; the server waits for the
  // client to take its reply.
  i.task_groups.push_back(
      {"rpc", {blocked_task("client", "requests", true), blocked_task("server", "replies", true)}});
  const custody::wait_for_graph graph(i);
  EXPECT_EQ(graph.cycle(),
            (std::vector<std::string>{"client", "requests", "server", "replies", "client"}));
  EXPECT_NE(graph.to_text().find("waits to send on \"requests\"; last receiver \"server\""),
            std::string::npos);
}

TEST(WaitForGraph, ALongerCycleIsFoundFromAnyStart) {
  custody::inspection i;
  i.channels.push_back(used_channel("c1", "t3", ""));
  i.channels.push_back(used_channel("c2", "t1", ""));
  i.channels.push_back(used_channel("c3", "t2", ""));
  i.channels.push_back(used_channel("free", "", ""));
  i.task_groups.push_back({"ring",
                           {blocked_task("t0", "free"), blocked_task("t1", "c1"),
                            blocked_task("t2", "c2"), blocked_task("t3", "c3")}});
  const custody::wait_for_graph graph(i);
  EXPECT_EQ(graph.cycle(), (std::vector<std::string>{"t1", "c1", "t3", "c3", "t2", "c2", "t1"}));
}

TEST(WaitForGraph, DotNamesEveryNodeAndParses) {
  custody::inspection i = crossed_snapshot();
  i.channels.push_back(used_channel("say \"hi\"\\", "A", ""));
  custody::store_report car;
  car.name = "car";
  car.version = 3;
  i.stores.push_back(car);
  i.subscribers.push_back({"display", "car", "latest", 0, 0, false});
  i.task_groups[0].tasks.push_back(blocked_task("C", "display"));
  const custody::wait_for_graph graph(i);
  const std::string dot = graph.to_dot();
  EXPECT_EQ(dot.rfind("digraph wait_for {", 0), 0u);
  for (const char* node : {"\"task:A\"", "\"task:B\"", "\"task:C\"", "\"channel:to_a\"",
                           "\"channel:to_b\"", "\"store:car\"", "\"channel:display\""}) {
    EXPECT_NE(dot.find(node), std::string::npos) << node;
  }
  EXPECT_NE(dot.find("\"task:A\" -> \"channel:to_a\" [label=\"waits to receive\",color=red"),
            std::string::npos);
  EXPECT_NE(
      dot.find("\"channel:to_a\" -> \"task:B\" [style=dashed,label=\"last sender\",color=red"),
      std::string::npos);
  EXPECT_NE(graph.to_text().find("waits to receive from subscription \"display\" of store \"car\""),
            std::string::npos);
  if (!has_dot()) GTEST_SKIP() << "Graphviz dot is not installed";
  EXPECT_TRUE(dot_accepts(dot)) << dot;
  EXPECT_FALSE(dot_accepts("digraph { \"unterminated }")) << "the check must be able to fail";
}

TEST(WatchdogApi, TakesANamedGroupAThresholdAndAnAction) {
  static_assert(std::is_constructible_v<custody::Watchdog, const custody::TaskGroup&,
                                        std::chrono::milliseconds, custody::watchdog_action>);
  static_assert(!std::is_copy_constructible_v<custody::Watchdog>);
  static_assert(!std::is_move_constructible_v<custody::Watchdog>);
  static_assert(std::is_convertible_v<decltype(custody::log_wait_for()), custody::watchdog_action>);
  custody::TaskGroup unnamed;
  EXPECT_THROW(custody::Watchdog(unnamed, 10ms, custody::log_wait_for()), std::invalid_argument);
  custody::TaskGroup named("api");
  EXPECT_THROW(custody::Watchdog(named, 0ms, custody::log_wait_for()), std::invalid_argument);
  EXPECT_THROW(custody::Watchdog(named, 10ms, nullptr), std::invalid_argument);
}

/// The first task of the group named `group` in `snapshot` (spawned before the snapshot).
const custody::task_report& first_task(const custody::inspection& snapshot,
                                       const std::string& group) {
  for (const custody::task_group_report& g : snapshot.task_groups) {
    if (g.name == group) return g.tasks.at(0);
  }
  throw std::logic_error("no task group " + group);
}

/// A watchdog action handing each graph to the test.
custody::watchdog_action hand_over(custody::Channel<custody::wait_for_graph>& reports) {
  return [reports](const custody::wait_for_graph& graph) mutable {
    (void)reports.try_send(graph);  // never blocks the watchdog; the test reads the first ones
  };
}

TEST(Watchdog, ReportsARealDeadlockWithBothTasksChannelsAndTheCycle) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> to_a(1, "to_a");
  custody::Channel<int> to_b(1, "to_b");
  custody::TaskGroup group("deadlocked");
  custody::Watchdog watchdog(group, 20ms, hand_over(reports));
  // Each sends once (so each is the last sender the other sees), receives that value, then
  // waits for a second value that only the other, itself waiting, could send.
  const auto task = [](custody::Channel<int> mine, custody::Channel<int> theirs) {
    return [mine, theirs](std::stop_token stop) mutable {
      ASSERT_EQ(theirs.send(1), custody::status::ok);
      ASSERT_TRUE(mine.recv());
      EXPECT_EQ(mine.recv(stop).status(), custody::status::stopped);
    };
  };
  group.spawn("A", task(to_a, to_b));
  group.spawn("B", task(to_b, to_a));
  const custody::received<custody::wait_for_graph> report = reports.recv();
  ASSERT_TRUE(report);
  const custody::wait_for_graph& graph = *report;
  ASSERT_TRUE(graph.likely_deadlock()) << graph.to_text();
  EXPECT_EQ(graph.cycle(), (std::vector<std::string>{"A", "to_a", "B", "to_b", "A"}));
  const std::string text = custody::wait_for_report(graph);
  for (const char* part : {"task \"A\" of group \"deadlocked\": blocked",
                           "task \"B\" of group \"deadlocked\": blocked",
                           "waits to receive from \"to_a\"; last sender \"B\"",
                           "waits to receive from \"to_b\"; last sender \"A\"",
                           "likely deadlock: A -> to_a -> B -> to_b -> A"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  if (has_dot()) {
    EXPECT_TRUE(dot_accepts(graph.to_dot())) << graph.to_dot();
  }
  group.request_stop();
  group.wait();
}

TEST(Watchdog, AStallWithoutACycleIsReportedWithoutADeadlock) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> never(0, "never-sent");
  custody::TaskGroup group("stalled");
  custody::Watchdog watchdog(group, 10ms, hand_over(reports));
  group.spawn("waiter", [never](std::stop_token stop) mutable { (void)never.recv(stop); });
  const custody::received<custody::wait_for_graph> report = reports.recv();
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->likely_deadlock());
  const std::string text = report->to_text();
  EXPECT_NE(text.find("waits to receive from \"never-sent\"; no task known at the other end"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("likely deadlock"), std::string::npos);
  group.request_stop();
  group.wait();
}

constexpr std::chrono::milliseconds threshold = 10ms;

TEST(Watchdog, AGroupWithARunningTaskIsNotReported) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> idle(0, "idle");
  custody::TaskGroup group("half-busy");
  custody::Watchdog watchdog(group, threshold, hand_over(reports));
  group.spawn("sleeper", [idle](std::stop_token stop) mutable { (void)idle.recv(stop); });
  // Runs while the watchdog looks a dozen times at a sleeper blocked beyond the threshold,
  // then blocks too: only then is the group stalled.
  group.spawn("worker", [idle](std::stop_token stop) mutable {
    while (!stop.stop_requested()) {
      const custody::inspection now = custody::inspect();
      const custody::task_report& sleeper = first_task(now, "half-busy");
      if (sleeper.state == custody::task_state::blocked &&
          sleeper.blocked_ms > 4 * threshold.count()) {
        break;
      }
      std::this_thread::yield();
    }
    (void)idle.recv(stop);
  });
  const custody::received<custody::wait_for_graph> first = reports.recv();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->tasks().size(), 2u);
  for (const custody::wait_for_task& t : first->tasks()) {
    EXPECT_EQ(t.state, custody::task_state::blocked) << t.name << " was reported while running";
  }
  group.request_stop();
  group.wait();
}

TEST(Watchdog, ReportsAgainOnlyAfterATaskRan) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> poke(0, "poke");
  custody::TaskGroup group("poked");
  custody::Watchdog watchdog(group, 10ms, hand_over(reports));
  group.spawn("target", [poke](std::stop_token stop) mutable {
    while (poke.recv(stop)) {
    }
  });
  ASSERT_TRUE(reports.recv());
  // The same stall, watched for a while longer (the watchdog looks every 2.5 ms): no report.
  for (;;) {
    const custody::inspection now = custody::inspect();
    const custody::task_report& target = first_task(now, "poked");
    ASSERT_EQ(target.state, custody::task_state::blocked);
    if (target.blocked_ms > 80) break;
    std::this_thread::yield();
  }
  EXPECT_FALSE(reports.try_recv()) << "the same stall was reported twice";
  ASSERT_EQ(poke.send(1), custody::status::ok);  // it runs, then stalls again
  const custody::received<custody::wait_for_graph> second = reports.recv();
  ASSERT_TRUE(second);
  // The second stall began after the first report: the target's receive completed since.
  ASSERT_EQ(second->tasks().size(), 1u);
  EXPECT_EQ(second->tasks()[0].state, custody::task_state::blocked);
  group.request_stop();
  group.wait();
}

TEST(Watchdog, GoesOnAfterAnActionThrows) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> poke(0, "poke-throw");
  custody::TaskGroup group("throwing");
  custody::Watchdog watchdog(group, 10ms, [reports](const custody::wait_for_graph& graph) mutable {
    (void)reports.try_send(graph);
    throw std::runtime_error("the action failed");
  });
  group.spawn("target", [poke](std::stop_token stop) mutable {
    while (poke.recv(stop)) {
    }
  });
  ASSERT_TRUE(reports.recv());
  ASSERT_EQ(poke.send(1), custody::status::ok);
  ASSERT_TRUE(reports.recv()) << "no report after the action threw";
  group.request_stop();
  group.wait();
}

// A task that runs and blocks again while the watchdog looks away (here: its thread is held
// in the action; on a loaded machine, not scheduled) makes a new stall, reported again although
// no snapshot saw the group running.
TEST(Watchdog, ReportsANewStallThatNoSnapshotSawBegin) {
  custody::Channel<custody::wait_for_graph> reports(4);
  custody::Channel<int> resume(1);
  custody::Channel<int> poke(0, "poke-unseen");
  custody::TaskGroup group("unseen");
  custody::Watchdog watchdog(
      group, 10ms, [reports, resume, first = true](const custody::wait_for_graph& graph) mutable {
        (void)reports.try_send(graph);
        if (std::exchange(first, false)) (void)resume.recv();
      });
  group.spawn("target", [poke](std::stop_token stop) mutable {
    while (poke.recv(stop)) {
    }
  });
  ASSERT_TRUE(reports.recv());
  ASSERT_EQ(poke.send(1), custody::status::ok);
  // The target took the value and is waiting again, for longer than the threshold.
  inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "unseen");
    return g && g->tasks.size() == 1 && g->tasks[0].state == custody::task_state::blocked &&
           g->tasks[0].blocked_ms > 10 && find(i.channels, "poke-unseen")->receives == 1;
  });
  ASSERT_EQ(resume.send(1), custody::status::ok);
  EXPECT_TRUE(reports.recv_for(10s)) << "the new stall was taken for the reported one";
  group.request_stop();
  group.wait();
}

TEST(WatchdogDeathTest, AbortWritesTheReportBeforeAborting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        custody::Channel<int> nothing(0, "nothing");
        custody::TaskGroup group("doomed");
        custody::Watchdog watchdog(group, 5ms, custody::abort_with_wait_for());
        group.spawn("stuck", [nothing](std::stop_token stop) mutable { (void)nothing.recv(stop); });
        group.wait();
      },
      "custody watchdog: every task of the group is blocked; wait-for report:\n"
      "task \"stuck\" of group \"doomed\": blocked for [0-9]+ ms in recv on \"nothing\"\n"
      "  waits to receive from \"nothing\"; no task known at the other end\n"
      "no wait-for cycle");
}

}  // namespace wait_for_test
}  // namespace
