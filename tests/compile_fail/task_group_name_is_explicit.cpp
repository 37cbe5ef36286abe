// expect: conversion from .*string.* to .*TaskGroup
// A name makes a group inspectable, a deliberate choice: a string never turns into a TaskGroup
// by itself (the constructor taking the name is explicit).

#include <string>

#include <custody/task_group.hpp>

int main() {
  custody::TaskGroup group = std::string("workers");
  group.wait();
}
