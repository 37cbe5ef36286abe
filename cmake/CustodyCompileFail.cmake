# Compile-fail tests: check that a piece of code does NOT compile, and that
# the compiler says why.
#
#   custody_add_compile_fail_test(<name> <source> <regex> [<definition>...])
#
# adds a CTest test <name> that compiles <source> with the project's include
# directory, -std=c++20 and -D<definition> for each definition given (syntax
# and semantic checks only, no code is generated). The test passes only if compilation fails AND the compiler
# output matches <regex> (a CMake regular expression).
#
#   custody_add_compile_fail_tests_from_dir(<dir> [<definition>...])
#
# registers every <dir>/*.cpp as compile_fail.<stem>, with the definitions. Each file must start with
# a line of the form
#   // expect: <regex>
include_guard(GLOBAL)

set(_CUSTODY_COMPILE_FAIL_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/CustodyCompileFailCheck.cmake")

function(custody_add_compile_fail_test name source regex)
  if(regex STREQUAL "")
    message(FATAL_ERROR "custody_add_compile_fail_test(${name}): empty regex")
  endif()
  get_filename_component(source "${source}" ABSOLUTE)
  if(NOT EXISTS "${source}")
    message(FATAL_ERROR "custody_add_compile_fail_test(${name}): ${source} does not exist")
  endif()

  # The regex may contain characters that CMake would otherwise treat as list
  # separators or escapes, so hand it to the check script through a file.
  string(MAKE_C_IDENTIFIER "${name}" safe_name)
  set(config "${CMAKE_CURRENT_BINARY_DIR}/compile_fail/${safe_name}.cmake")
  set(include_dirs "${PROJECT_SOURCE_DIR}/include")
  set(definitions "${ARGN}")
  file(CONFIGURE OUTPUT "${config}" CONTENT [==[
set(CF_COMPILER [=[@CMAKE_CXX_COMPILER@]=])
set(CF_SOURCE [=[@source@]=])
set(CF_INCLUDE_DIRS [=[@include_dirs@]=])
set(CF_REGEX [=[@regex@]=])
set(CF_DEFINITIONS [=[@definitions@]=])
]==] @ONLY)

  add_test(NAME "${name}"
           COMMAND "${CMAKE_COMMAND}" "-DCF_CONFIG=${config}" -P "${_CUSTODY_COMPILE_FAIL_SCRIPT}")
  set_tests_properties("${name}" PROPERTIES
    LABELS compile_fail
    TIMEOUT 120)
endfunction()

function(custody_add_compile_fail_tests_from_dir dir)
  file(GLOB sources CONFIGURE_DEPENDS "${dir}/*.cpp")
  foreach(source IN LISTS sources)
    get_filename_component(stem "${source}" NAME_WE)
    file(READ "${source}" head LIMIT 4096)
    if(NOT head MATCHES "^[ \t]*//[ \t]*expect:[ \t]*([^\r\n]*[^ \t\r\n])")
      message(FATAL_ERROR
        "${source}: compile-fail tests must start with a line '// expect: <regex>'")
    endif()
    custody_add_compile_fail_test("compile_fail.${stem}" "${source}" "${CMAKE_MATCH_1}" ${ARGN})
  endforeach()
endfunction()
