// expect: can never become an Owner
// The seed's rule "a fire-up function MUST NOT return DataStoreOwner", enforced.
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Owner<int> second = store;
  (void)second;
}
