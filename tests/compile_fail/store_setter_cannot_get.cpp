// expect: cannot get\(\): it lacks the get capability
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Setter<int> setter = store;
  return setter.get();
}
