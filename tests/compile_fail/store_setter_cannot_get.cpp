// expect: satisf.*can_get
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Setter<int> setter = store;
  return setter.get();
}
