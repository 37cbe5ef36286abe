// A named store counts the answers of its asynchronous sets (custody/asio/store.hpp) by status,
// as it counts the blocking ones: both go through one set call.

#include <algorithm>
#include <asio/use_future.hpp>
#include <future>
#include <string>

#include <gtest/gtest.h>

#include <custody/asio.hpp>
#include <custody/inspect.hpp>

namespace {
namespace asio_store_counters_test {

using custody::set_result;
using custody::set_status;

custody::set_answer_counts answers_of(const std::string& name) {
  const custody::inspection now = custody::inspect();
  const auto it = std::find_if(now.stores.begin(), now.stores.end(),
                               [&](const custody::store_report& r) { return r.name == name; });
  EXPECT_NE(it, now.stores.end()) << name;
  return it == now.stores.end() ? custody::set_answer_counts{} : it->set_answers;
}

TEST(AsyncSetCounters, AnswersOfAsynchronousSetsAreCountedByStatus) {
  auto made = custody::make_store<int>(0, {.name = "async counted"});
  custody::Owner<int>& owner = made.owner;
  custody::Store<int>& store = made.store;

  std::future<set_result<int>> accepted = custody::async_set(store, 1, asio::use_future);
  ASSERT_EQ(owner.accept(*owner.requests().recv()), custody::status::ok);
  EXPECT_EQ(accepted.get().status(), set_status::accepted);

  std::future<set_result<int>> dropped = custody::async_set(store, 2, asio::use_future);
  { auto let_go = owner.requests().recv(); }  // destroyed unanswered
  EXPECT_EQ(dropped.get().status(), set_status::dropped);

  owner.close();  // known at once from now on
  EXPECT_EQ(custody::async_set(store, 3, asio::use_future).get().status(), set_status::owner_gone);

  const custody::set_answer_counts counts = answers_of("async counted");
  EXPECT_EQ(counts[set_status::accepted], 1u);
  EXPECT_EQ(counts[set_status::dropped], 1u);
  EXPECT_EQ(counts[set_status::owner_gone], 1u);
  EXPECT_EQ(counts[set_status::rejected], 0u);
}

}  // namespace asio_store_counters_test
}  // namespace
