// expect: satisf.*can_set
// A Getter reads; asking the owner for a change needs a Setter (or a wider view).
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Getter<int> getter = store;
  (void)getter.set(2);
}
