#pragma once
// custody on Asio executors: the asynchronous forms of custody's blocking operations, for
// coroutines (asio::awaitable) and callbacks alike. Needs the custody::asio target (standalone
// Asio); the rest of custody does not.
//
//   asio::awaitable<void> echo(custody::Receiver<int> in, custody::Sender<int> out) {
//     for (;;) {
//       auto r = co_await custody::async_recv(in, asio::use_awaitable);
//       if (!r) co_return;
//       co_await custody::async_send(out, *r, asio::use_awaitable);
//     }
//   }

#include "asio/channel.hpp"
#include "asio/select.hpp"
#include "asio/store.hpp"
#include "asio/task.hpp"
#include "asio/task_group.hpp"
