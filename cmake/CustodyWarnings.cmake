# custody_project_options: an INTERFACE target that custody's own tests,
# benchmarks and examples link PRIVATE-ly. It carries the warning flags (and
# -Werror when CUSTODY_WERROR is ON) and the C++ standard. It is never installed or exported, so
# consumers of custody::custody are not affected.
include_guard(GLOBAL)

add_library(custody_project_options INTERFACE)
# Project targets are C++20 even when they do not link custody::custody
# (e.g. the test main, which only links GoogleTest).
target_compile_features(custody_project_options INTERFACE cxx_std_20)

if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(custody_project_options INTERFACE -Wall -Wextra -Wpedantic)
  if(CUSTODY_WERROR)
    target_compile_options(custody_project_options INTERFACE -Werror)
  endif()
elseif(MSVC)
  target_compile_options(custody_project_options INTERFACE /W4 /permissive-)
  if(CUSTODY_WERROR)
    target_compile_options(custody_project_options INTERFACE /WX)
  endif()
endif()
