// expect: a_consumer_view_can_never_become_an_owner
// The seed's rule "a fire-up function MUST NOT return DataStoreOwner", enforced.
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Owner<int> second = store;
  (void)second;
}
