# Install rules: headers, the custody::custody target and a CMake package so
# that consumers can use find_package(custody CONFIG).
include_guard(GLOBAL)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS custody EXPORT custodyTargets)

if(EXISTS "${PROJECT_SOURCE_DIR}/include")
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/"
          DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
          FILES_MATCHING PATTERN "*.hpp")
endif()

set(CUSTODY_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/custody")

install(EXPORT custodyTargets
        NAMESPACE custody::
        DESTINATION "${CUSTODY_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/custodyConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/custodyConfig.cmake"
  INSTALL_DESTINATION "${CUSTODY_INSTALL_CMAKEDIR}")

write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/custodyConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)

install(FILES "${PROJECT_BINARY_DIR}/custodyConfig.cmake"
              "${PROJECT_BINARY_DIR}/custodyConfigVersion.cmake"
        DESTINATION "${CUSTODY_INSTALL_CMAKEDIR}")
