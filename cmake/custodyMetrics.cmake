# custody::metrics: custody::inspect() served as Prometheus metrics over HTTP (include
# <custody/metrics.hpp>). Defined only when prometheus-cpp with its core and pull parts is found
# (Debian: prometheus-cpp-dev); the rest of custody does not need it.
#
# Used by custody's own build and by its installed package alike: after including this file,
# `if(TARGET custody::metrics)` tells whether it is available.
include_guard(GLOBAL)

find_package(prometheus-cpp CONFIG QUIET COMPONENTS core pull)

if(TARGET prometheus-cpp::core AND TARGET prometheus-cpp::pull AND NOT TARGET custody::metrics)
  # Header-only like the rest of custody: the exporter is a few inline functions over
  # prometheus-cpp, which does the serving.
  add_library(custody::metrics INTERFACE IMPORTED GLOBAL)
  target_link_libraries(custody::metrics INTERFACE
    custody::custody prometheus-cpp::pull prometheus-cpp::core)
endif()
