// expect: use of deleted function|call to deleted constructor
// There is exactly one Owner per store.
#include <custody/store.hpp>

int main() {
  auto [owner, store] = custody::make_store(1);
  custody::Owner<int> copy = owner;
  (void)copy;
}
