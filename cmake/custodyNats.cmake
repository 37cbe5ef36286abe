# custody::nats: custody's stores over NATS JetStream (include <custody/nats.hpp>). Defined only
# when the NATS C client (pkg-config module libnats; Debian: libnats-dev) and nlohmann::json
# (Debian: nlohmann-json3-dev) are found; the rest of custody needs neither.
#
# Used by custody's own build and by its installed package alike: after including this file,
# `if(TARGET custody::nats)` tells whether it is available.
include_guard(GLOBAL)

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  # Debian's CMake package for the client is broken; its pkg-config file is not.
  pkg_check_modules(custody_libnats QUIET IMPORTED_TARGET GLOBAL libnats)
endif()
find_package(nlohmann_json 3 QUIET)

if(TARGET PkgConfig::custody_libnats AND TARGET nlohmann_json::nlohmann_json
   AND NOT TARGET custody::nats)
  add_library(custody::nats INTERFACE IMPORTED GLOBAL)
  target_link_libraries(custody::nats INTERFACE
    custody::custody PkgConfig::custody_libnats nlohmann_json::nlohmann_json)
endif()
