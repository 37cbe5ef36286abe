// expect: store_views_only_narrow
// A Getter handed to a function must not be turned back into a Store that can set.
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Getter<int> getter = store;
  custody::Store<int> widened = getter;
  (void)widened;
}
