// expect: satisf.*can_subscribe
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::GetSetter<int> view = store;
  (void)view.subscribe(custody::policy::latest());
}
