#pragma once
// Owning pointers for the NATS client's objects: each released exactly once, by the function
// the client provides for it.

#include <nats/nats.h>

#include <memory>

namespace custody::nats {

namespace detail {
template <class Object, void (*Destroy)(Object*)>
struct destroyer {
  void operator()(Object* p) const noexcept { Destroy(p); }
};
}  // namespace detail

/// A message, owned.
using message = std::unique_ptr<natsMsg, detail::destroyer<natsMsg, natsMsg_Destroy>>;
/// A key-value entry, owned.
using kv_entry = std::unique_ptr<kvEntry, detail::destroyer<kvEntry, kvEntry_Destroy>>;
/// A key-value watcher, owned.
using kv_watcher = std::unique_ptr<kvWatcher, detail::destroyer<kvWatcher, kvWatcher_Destroy>>;
/// A key-value bucket handle, owned.
using kv_store = std::unique_ptr<kvStore, detail::destroyer<kvStore, kvStore_Destroy>>;
/// A JetStream context, owned.
using js_context = std::unique_ptr<jsCtx, detail::destroyer<jsCtx, jsCtx_Destroy>>;

}  // namespace custody::nats
