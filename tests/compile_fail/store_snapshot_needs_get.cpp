// expect: every argument must be a store view with the get capability
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Setter<int> setter = store;
  (void)custody::snapshot(store, setter);
}
