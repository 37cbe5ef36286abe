// expect: a store's value type must be copyable
#include <memory>

#include <custody/store.hpp>

int main() { auto made = custody::make_store(std::make_unique<int>(1)); }
