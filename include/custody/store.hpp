#pragma once
// custody/store.hpp: a value with exactly one owner.
//
// One owner task has sole authority over a piece of data. Consumers read snapshots of it, ask
// the owner to change it, and are told when it changes; only the owner ever modifies it.
//
//   auto [owner, store] = custody::make_store<Speed>(Speed{0});
//
//   // The owner task: answers requests, publishes what it measures.
//   std::jthread owner_task([owner = std::move(owner)](std::stop_token stop) mutable {
//     owner.set_stop_token(stop);
//     auto requests = owner.requests();
//     custody::Ticker tick(std::chrono::milliseconds(100));
//     auto ticks = tick.receiver();
//     for (bool running = true; running;) {
//       custody::select(
//           custody::on_recv(requests, [&](custody::SetRequest<Speed> r) {
//             if (r.value().kmh < 0) std::move(r).reject(std::errc::invalid_argument, "negative");
//             else owner.accept(std::move(r), Speed{std::min(r.value().kmh, 130.0)});
//           }),
//           custody::on_recv(ticks, [&](auto) { owner.update([&](Speed& s) { s = device.read(); });
//           }), custody::on_stop(stop, [&] { running = false; }));
//     }
//   });  // destroying the owner closes the store
//
//   // Consumers take the narrowest view they need.
//   void show(custody::Getter<Speed> g) { print(g.get()); }
//   void faster(custody::Setter<Speed> s) { auto r = s.set(Speed{50}); }
//   void log(custody::Subscriber<Speed> s) {
//     for (Speed v : s.subscribe(custody::policy::buffer(64).with_current())) write(v);
//   }
//
// Parts:
// - make_store, Owner, store_options            (store/owner.hpp)
// - StoreView and its aliases Getter, Setter, Subscriber, GetSetter, GetSubscriber,
//   SetSubscriber, Store                         (store/views.hpp)
// - set_result, set_status                      (store/result.hpp)
// - SetRequest                                  (store/request.hpp)
// - policy (block, latest, buffer)              (store/policy.hpp)
// - Subscription                                (store/subscription.hpp)
// - joint, Joint, snapshot                      (store/joint.hpp)
// - fanout, for user pipelines                  (fanout.hpp, included here)

#include "fanout.hpp"
#include "store/joint.hpp"
#include "store/owner.hpp"
#include "store/policy.hpp"
#include "store/request.hpp"
#include "store/result.hpp"
#include "store/subscription.hpp"
#include "store/views.hpp"
