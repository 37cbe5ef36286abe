// custody::inspect(): named channels, stores, subscriptions and task groups appear with what
// they are doing; unnamed ones never do; destroyed ones are gone.

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/channel.hpp>
#include <custody/inspect.hpp>
#include <custody/select.hpp>
#include <custody/store.hpp>
#include <custody/task_group.hpp>

#include "support/inspection.hpp"

namespace {
namespace inspect_test {

using custody_test::find;
using custody_test::inspect_until;

TEST(InspectNames, ChannelNameCapacityLengthAndClosedRoundTrip) {
  custody::Channel<int> named(4, "jobs");
  ASSERT_EQ(named.try_send(1), custody::status::ok);
  ASSERT_EQ(named.try_send(2), custody::status::ok);
  const custody::inspection open = custody::inspect();
  const custody::channel_report* jobs = find(open.channels, "jobs");
  ASSERT_NE(jobs, nullptr);
  EXPECT_EQ(jobs->capacity, 4u);
  EXPECT_EQ(jobs->length, 2u);
  EXPECT_FALSE(jobs->closed);
  named.close();
  EXPECT_TRUE(find(custody::inspect().channels, "jobs")->closed);
}

TEST(InspectNames, UnnamedObjectsAreNotListedAndDestroyedOnesLeave) {
  const std::size_t before = custody::inspect().channels.size();
  {
    custody::Channel<int> unnamed(4);
    custody::Channel<int> empty_name(4, "");
    EXPECT_EQ(custody::inspect().channels.size(), before);
    custody::Channel<int> named(0, "short-lived");
    EXPECT_NE(find(custody::inspect().channels, "short-lived"), nullptr);
  }
  EXPECT_EQ(find(custody::inspect().channels, "short-lived"), nullptr);
  EXPECT_EQ(custody::inspect().channels.size(), before);
}

TEST(InspectNames, NamingIsAnExtraConstructorArgument) {
  static_assert(std::is_constructible_v<custody::Channel<int>, std::size_t, std::string>);
  static_assert(std::is_constructible_v<custody::Channel<int>, std::size_t>);
  static_assert(std::is_constructible_v<custody::TaskGroup, std::string>);
  static_assert(!std::is_convertible_v<std::string, custody::TaskGroup>);
  static_assert(std::is_default_constructible_v<custody::TaskGroup>);
}

TEST(InspectNames, StoreAndSubscriptionsRoundTrip) {
  auto [owner, store] = custody::make_store<int>(0, {.name = "speed"});
  auto lagging = store.subscribe(custody::policy::buffer(2), "display");
  auto latest = store.subscribe(custody::policy::latest(), "logger");
  auto unnamed = store.subscribe(custody::policy::latest());
  for (int v = 1; v <= 5; ++v) ASSERT_EQ(owner.publish(v), custody::status::ok);
  const custody::inspection now = custody::inspect();
  const custody::store_report* speed = find(now.stores, "speed");
  ASSERT_NE(speed, nullptr);
  EXPECT_EQ(speed->version, owner.version());
  EXPECT_EQ(speed->pending_sets, 0u);
  EXPECT_FALSE(speed->closed);
  const custody::subscriber_report* display = find(now.subscribers, "display");
  ASSERT_NE(display, nullptr);
  EXPECT_EQ(display->store, "speed");
  EXPECT_EQ(display->policy, "buffer(2)");
  EXPECT_EQ(display->backlog, 2u);
  // Missed counts reach missed() once the values after them are received.
  ASSERT_TRUE(lagging.recv());
  EXPECT_EQ(find(custody::inspect().subscribers, "display")->missed, lagging.missed());
  EXPECT_EQ(lagging.missed(), 3u);
  const custody::subscriber_report* logger = find(now.subscribers, "logger");
  ASSERT_NE(logger, nullptr);
  EXPECT_EQ(logger->policy, "latest");
  EXPECT_EQ(logger->backlog, 1u);
  EXPECT_EQ(now.subscribers.size(), 2u);
  owner.close();
  EXPECT_TRUE(find(custody::inspect().stores, "speed")->closed);
}

TEST(InspectNames, PendingSetRequestsAreCounted) {
  auto [owner, store] = custody::make_store<int>(0, {.request_capacity = 4, .name = "limits"});
  std::thread setter([s = store] {
    (void)s.set(7);  // answered when the owner closes
  });
  inspect_until([](const custody::inspection& i) {
    const custody::store_report* s = find(i.stores, "limits");
    return s && s->pending_sets == 1;
  });
  owner.close();
  setter.join();
}

TEST(InspectNames, TaskNameBecomesTheThreadName) {
  custody::TaskGroup group;
  custody::Channel<std::string> names(1);
  group.spawn("a-task-name-longer-than-fifteen", [names]() mutable {
    char buffer[32] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    (void)names.send(std::string(buffer));
  });
  EXPECT_EQ(*names.recv(), "a-task-name-lon");
  group.wait();
}

TEST(InspectBlocked, BlockedReceiverShowsTaskAndTaskStateShowsOperation) {
  custody::Channel<int> jobs(0, "jobs");
  custody::TaskGroup group("workers");
  group.spawn("worker", [jobs]() mutable { (void)jobs.recv(); });
  const custody::inspection blocked = inspect_until([](const custody::inspection& i) {
    const custody::channel_report* c = find(i.channels, "jobs");
    return c && c->receivers.size() == 1;
  });
  const custody::channel_report* c = find(blocked.channels, "jobs");
  EXPECT_EQ(c->receivers[0].task, "worker");
  EXPECT_EQ(c->receivers[0].cases, 1u);
  EXPECT_GE(c->receivers[0].blocked_ms, 0);
  const custody::inspection tasks = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "workers");
    return g && g->tasks.size() == 1 && g->tasks[0].state == custody::task_state::blocked;
  });
  EXPECT_EQ(find(tasks.task_groups, "workers")->tasks[0].name, "worker");
  EXPECT_EQ(find(tasks.task_groups, "workers")->tasks[0].operation, "recv on \"jobs\"");
  ASSERT_EQ(jobs.send(1), custody::status::ok);
  group.wait();
  const custody::inspection after = custody::inspect();
  const custody::task_group_report* g = find(after.task_groups, "workers");
  EXPECT_EQ(g->tasks[0].state, custody::task_state::finished);
}

TEST(InspectBlocked, BlockedSenderOnBufferedChannel) {
  custody::Channel<int> full(1, "full");
  ASSERT_EQ(full.try_send(0), custody::status::ok);
  custody::TaskGroup group("senders");
  group.spawn("producer", [full]() mutable { (void)full.send(1); });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::channel_report* c = find(i.channels, "full");
    return c && c->senders.size() == 1;
  });
  EXPECT_EQ(find(now.channels, "full")->senders[0].task, "producer");
  ASSERT_TRUE(full.recv());
  ASSERT_TRUE(full.recv());
  group.wait();
}

TEST(InspectBlocked, SelectCaseShowsItsIndexAndCaseCount) {
  custody::Channel<int> a(0, "a");
  custody::Channel<int> b(0, "b");
  custody::TaskGroup group("selecting");
  group.spawn("chooser", [a, b]() mutable {
    (void)custody::select(custody::on_recv(a, [](int) {}), custody::on_recv(b, [](int) {}));
  });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::channel_report* c = find(i.channels, "b");
    return c && c->receivers.size() == 1;
  });
  const custody::blocked_report& r = find(now.channels, "b")->receivers[0];
  EXPECT_EQ(r.task, "chooser");
  EXPECT_EQ(r.cases, 2u);
  EXPECT_EQ(r.case_index, 1u);
  const custody::inspection tasks = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "selecting");
    return g && g->tasks[0].state == custody::task_state::blocked;
  });
  EXPECT_EQ(find(tasks.task_groups, "selecting")->tasks[0].operation, "select of 2 cases");
  ASSERT_EQ(a.send(1), custody::status::ok);
  group.wait();
}

TEST(InspectBlocked, WaitWithoutChannelsIsNamedAsSuch) {
  custody::TaskGroup group("sleepers");
  group.spawn("sleeper", [](std::stop_token stop) {
    (void)custody::select(
        custody::on_deadline(std::chrono::steady_clock::now() + std::chrono::hours(1)),
        custody::on_stop(stop));
  });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "sleepers");
    return g && g->tasks[0].state == custody::task_state::blocked;
  });
  EXPECT_EQ(find(now.task_groups, "sleepers")->tasks[0].operation, "wait for a stop or a deadline");
  group.request_stop();
  group.wait();
}

/// A strict JSON checker: true when `text` is exactly one JSON value.
class json_checker {
 public:
  explicit json_checker(const std::string& text) : text_(text) {}
  bool valid() {
    skip();
    if (!value()) return false;
    skip();
    return pos_ == text_.size();
  }

 private:
  bool value() {
    skip();
    if (pos_ >= text_.size()) return false;
    const char c = text_[pos_];
    if (c == '{') return container('}', true);
    if (c == '[') return container(']', false);
    if (c == '"') return string();
    if (literal("true") || literal("false") || literal("null")) return true;
    return number();
  }
  bool container(char close, bool object) {
    ++pos_;
    skip();
    if (peek(close)) return ++pos_, true;
    for (;;) {
      skip();
      if (object && !(string() && (skip(), peek(':')) && ++pos_)) return false;
      if (!value()) return false;
      skip();
      if (peek(',')) {
        ++pos_;
        continue;
      }
      if (peek(close)) return ++pos_, true;
      return false;
    }
  }
  bool string() {
    if (!peek('"')) return false;
    for (++pos_; pos_ < text_.size(); ++pos_) {
      const char c = text_[pos_];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '"') return ++pos_, true;
      if (c == '\\') {
        ++pos_;
        if (pos_ >= text_.size() ||
            std::string("\"\\/bfnrtu").find(text_[pos_]) == std::string::npos) {
          return false;
        }
      }
    }
    return false;
  }
  bool number() {
    const std::size_t start = pos_;
    if (peek('-')) ++pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return pos_ > start && std::isdigit(static_cast<unsigned char>(text_[pos_ - 1]));
  }
  bool literal(const char* word) {
    const std::string w(word);
    if (text_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }
  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  const std::string& text_;
  std::size_t pos_ = 0;
};

TEST(InspectRender, CheckerRejectsBrokenJson) {
  EXPECT_TRUE(json_checker(R"({"a":[1,-2,{"b":"c\"d"}],"e":true})").valid());
  EXPECT_FALSE(json_checker(R"({"a":[1,2})").valid());
  EXPECT_FALSE(json_checker("{\"a\":\"line\nbreak\"}").valid());
  EXPECT_FALSE(json_checker(R"({"a" 1})").valid());
}

TEST(InspectRender, JsonParsesWithAwkwardNamesAndTextNamesEveryObject) {
  custody::Channel<int> odd(0, "quote\" back\\slash\nnewline");
  auto [owner, store] = custody::make_store<int>(0, {.name = "store \"one\""});
  auto sub = store.subscribe(custody::policy::block(4), "tab\there");
  custody::TaskGroup group("group");
  group.spawn("waiter", [odd]() mutable { (void)odd.recv(); });
  const custody::inspection now = inspect_until([](const custody::inspection& i) {
    const custody::task_group_report* g = find(i.task_groups, "group");
    return g && g->tasks[0].state == custody::task_state::blocked;
  });
  const std::string json = now.to_json();
  EXPECT_TRUE(json_checker(json).valid()) << json;
  EXPECT_NE(json.find(R"("name":"quote\" back\\slash\nnewline")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"x("policy":"block(4)")x"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("state":"blocked")"), std::string::npos) << json;
  const std::string text = now.to_text();
  EXPECT_NE(text.find("task group \"group\""), std::string::npos) << text;
  EXPECT_NE(text.find("task \"waiter\": blocked in recv on"), std::string::npos) << text;
  EXPECT_NE(text.find("store \"store \"one\"\": version 1"), std::string::npos) << text;
  EXPECT_NE(text.find("subscriber \"tab\there\" of store \"store \"one\"\": block(4), backlog 0"),
            std::string::npos)
      << text;
  ASSERT_EQ(odd.send(1), custody::status::ok);
  group.wait();
}

}  // namespace inspect_test
}  // namespace
