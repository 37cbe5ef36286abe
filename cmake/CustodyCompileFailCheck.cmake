# Run with: cmake -DCF_CONFIG=<file> -P CustodyCompileFailCheck.cmake
# <file> sets CF_COMPILER, CF_SOURCE, CF_INCLUDE_DIRS, CF_DEFINITIONS and CF_REGEX.
# Succeeds only if compiling CF_SOURCE fails with output matching CF_REGEX.
cmake_minimum_required(VERSION 3.25)

if(NOT CF_CONFIG OR NOT EXISTS "${CF_CONFIG}")
  message(FATAL_ERROR "CustodyCompileFailCheck: CF_CONFIG not given or missing")
endif()
include("${CF_CONFIG}")

set(include_flags)
foreach(dir IN LISTS CF_INCLUDE_DIRS)
  list(APPEND include_flags "-I${dir}")
endforeach()
foreach(definition IN LISTS CF_DEFINITIONS)
  list(APPEND include_flags "-D${definition}")
endforeach()

# LC_ALL=C keeps the compiler's quotes plain ASCII, so regexes can use '.
set(command "${CMAKE_COMMAND}" -E env LC_ALL=C LANG=C
    "${CF_COMPILER}" -std=c++20 -fsyntax-only ${include_flags} "${CF_SOURCE}")
execute_process(
  COMMAND ${command}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 110)

list(JOIN command " " command_line)
if(result EQUAL 0)
  message(NOTICE "command: ${command_line}\n${output}")
  message(FATAL_ERROR "compile-fail test: ${CF_SOURCE} compiled, but it must not.")
endif()
if(NOT output MATCHES "${CF_REGEX}")
  message(NOTICE "command: ${command_line}\n${output}")
  message(FATAL_ERROR
    "compile-fail test: ${CF_SOURCE} failed to compile as expected, but the compiler "
    "output (above) does not match the expected regex: ${CF_REGEX}")
endif()
message(STATUS "compile-fail test: ${CF_SOURCE} was rejected as expected (matched '${CF_REGEX}')")
