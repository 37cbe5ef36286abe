// A named store's counters in custody::inspect(): publishes, and what its set() calls returned
// by status, in the report and in its text and JSON renderings.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <custody/inspect.hpp>
#include <custody/store.hpp>

namespace {
namespace inspect_store_counters_test {

using custody::set_status;

custody::store_report report_of(const std::string& name) {
  const custody::inspection now = custody::inspect();
  const auto it = std::find_if(now.stores.begin(), now.stores.end(),
                               [&](const custody::store_report& r) { return r.name == name; });
  EXPECT_NE(it, now.stores.end()) << name;
  return it == now.stores.end() ? custody::store_report{} : *it;
}

TEST(InspectStoreCounters, PublishesCountFromZeroWhereVersionsStartAtOne) {
  auto [owner, store] = custody::make_store<int>(0, {.name = "publishes"});
  EXPECT_EQ(report_of("publishes").publishes, 0u);
  ASSERT_EQ(owner.publish(1), custody::status::ok);
  ASSERT_EQ(owner.update([](int& v) { v += 1; }), custody::status::ok);
  ASSERT_EQ(owner.update([](int&) { return false; }), custody::status::ok);  // not published
  const custody::store_report r = report_of("publishes");
  EXPECT_EQ(r.publishes, 2u);
  EXPECT_EQ(r.version, owner.version());
}

TEST(InspectStoreCounters, EverySetStatusTheOwnerGivesIsCounted) {
  auto [owner, store] = custody::make_store<int>(0, {.name = "answered"});
  std::thread setter([s = store] {
    EXPECT_EQ(s.set(1).status(), set_status::accepted);
    EXPECT_EQ(s.set(2).status(), set_status::rejected);
    EXPECT_EQ(s.set(3).status(), set_status::dropped);
    EXPECT_EQ(s.set_if(999, 4).status(), set_status::conflict);
  });
  auto requests = owner.requests();
  ASSERT_EQ(owner.accept(*requests.recv()), custody::status::ok);
  (void)std::move(*requests.recv()).reject(std::errc::invalid_argument, "refused");
  { auto let_go = requests.recv(); }                               // destroyed unanswered: dropped
  ASSERT_EQ(owner.accept(*requests.recv()), custody::status::ok);  // version 2, not 999
  setter.join();

  const custody::set_answer_counts counts = report_of("answered").set_answers;
  EXPECT_EQ(counts[set_status::accepted], 1u);
  EXPECT_EQ(counts[set_status::rejected], 1u);
  EXPECT_EQ(counts[set_status::dropped], 1u);
  EXPECT_EQ(counts[set_status::conflict], 1u);
  EXPECT_EQ(counts[set_status::timeout], 0u);
}

TEST(InspectStoreCounters, AnswersKnownAtOnceOrAfterGivingUpAreCounted) {
  // Capacity 0: a set() waits in its send until the owner takes the request.
  auto [owner, store] = custody::make_store<int>(0, {.request_capacity = 0, .name = "refused"});
  // Known at once: the deadline has passed, the stop token has fired.
  EXPECT_EQ(store.set_until(1, std::chrono::steady_clock::now()).status(), set_status::timeout);
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(store.set(2, stopped.get_token()).status(), set_status::stopped);
  // Given up in the send: nobody takes the request.
  EXPECT_EQ(store.set_for(3, std::chrono::milliseconds(1)).status(), set_status::timeout);
  owner.close();
  EXPECT_EQ(store.set(4).status(), set_status::owner_gone);

  const custody::set_answer_counts counts = report_of("refused").set_answers;
  EXPECT_EQ(counts[set_status::timeout], 2u);
  EXPECT_EQ(counts[set_status::stopped], 1u);
  EXPECT_EQ(counts[set_status::owner_gone], 1u);
  EXPECT_EQ(counts[set_status::accepted], 0u);
}

TEST(InspectStoreCounters, TextAndJsonShowPublishesAndAnswers) {
  auto [owner, store] = custody::make_store<int>(0, {.name = "rendered"});
  ASSERT_EQ(owner.publish(1), custody::status::ok);
  owner.close();
  EXPECT_EQ(store.set(2).status(), set_status::owner_gone);
  custody::inspection only;
  only.stores.push_back(report_of("rendered"));
  EXPECT_EQ(only.to_text(),
            "store \"rendered\": version 2, publishes 1, pending sets 0, closed\n"
            "  set answers: owner gone 1\n");
  EXPECT_NE(only.to_json().find("\"publishes\":1,\"pending_sets\":0,\"set_answers\":{"
                                "\"accepted\":0,\"rejected\":0,\"dropped\":0,\"owner_gone\":1,"
                                "\"timeout\":0,\"stopped\":0,\"disconnected\":0,\"conflict\":0}"),
            std::string::npos)
      << only.to_json();
}

TEST(InspectStoreCounters, StatusKeysAreTheEnumeratorsNames) {
  static_assert(custody::set_status_count == 8);
  static_assert(custody::set_status_key(set_status::owner_gone) == "owner_gone");
  static_assert(custody::set_status_key(set_status::accepted) == "accepted");
  static_assert(custody::set_status_key(set_status::conflict) == "conflict");
}

}  // namespace inspect_store_counters_test
}  // namespace
