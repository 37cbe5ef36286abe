// The asynchronous operations' constraints as traits: what tests/compile_fail/asio/*.cpp show
// failing to compile, requires-expressions and std::is_invocable answer false for, and the
// well-formed calls beside them answer true.

#include <exception>
#include <type_traits>

#include <gtest/gtest.h>

#include <custody/asio.hpp>

namespace {
namespace asio_traits_test {

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}
};

struct status_handler {
  void operator()(std::exception_ptr, custody::status) const {}
};

template <class T>
struct recv_handler {
  void operator()(std::exception_ptr, custody::received<T>) const {}
};

template <class T>
struct set_handler {
  void operator()(std::exception_ptr, custody::set_result<T>) const {}
};

template <class Handle>
concept can_async_send = requires(const Handle& h) {
  custody::async_send(h, 1, status_handler{});
};

template <class Handle, class T = int>
concept can_async_recv = requires(const Handle& h) {
  custody::async_recv(h, recv_handler<T>{});
};

template <class View>
concept can_async_set = requires(const View& v) {
  custody::async_set(v, 1, set_handler<int>{});
};

template <class Handle>
concept can_async_publish = requires(Handle& h) {
  custody::async_publish(h, 1, status_handler{});
};

TEST(AsioTraits, SendNeedsASendingHandle) {
  static_assert(can_async_send<custody::Sender<int>>);
  static_assert(can_async_send<custody::Channel<int>>);
  static_assert(!can_async_send<custody::Receiver<int>>);
  static_assert(!can_async_send<custody::Subscription<int>>);
}

TEST(AsioTraits, ReceiveNeedsAReceivingHandleAndANothrowMove) {
  static_assert(can_async_recv<custody::Receiver<int>>);
  static_assert(can_async_recv<custody::Channel<int>>);
  static_assert(can_async_recv<custody::Subscription<int>>);
  static_assert(!can_async_recv<custody::Sender<int>>);
  static_assert(can_async_recv<custody::Receiver<int>, int>);
  static_assert(!can_async_recv<custody::Receiver<throwing_move>, throwing_move>);
  static_assert(!can_async_recv<custody::Channel<throwing_move>, throwing_move>);
}

TEST(AsioTraits, SetNeedsTheSetCapability) {
  static_assert(can_async_set<custody::Store<int>>);
  static_assert(can_async_set<custody::Setter<int>>);
  static_assert(can_async_set<custody::GetSetter<int>>);
  static_assert(!can_async_set<custody::Getter<int>>);
  static_assert(!can_async_set<custody::Subscriber<int>>);
}

TEST(AsioTraits, OnlyTheOwnerPublishes) {
  static_assert(can_async_publish<custody::Owner<int>>);
  static_assert(!can_async_publish<custody::Store<int>>);
  static_assert(!can_async_publish<const custody::Owner<int>>);
}

// async_select's receive case rejects (with a static_assert, as select does) a callable taking
// by value a T whose move may throw; the trait it asks answers so.
TEST(AsioTraits, ReceiveCallableByValueIsToldApart) {
  auto by_value = [](throwing_move) {};
  auto by_reference = [](throwing_move&&) {};
  static_assert(custody::detail::takes_by_value<throwing_move, decltype(by_value)>());
  static_assert(!custody::detail::takes_by_value<throwing_move, decltype(by_reference)>());
  static_assert(!std::is_nothrow_move_constructible_v<throwing_move>);
  static_assert(std::is_invocable_v<decltype(by_reference)&, throwing_move&&>);
}

}  // namespace asio_traits_test
}  // namespace
