# Run with:
#   cmake -DEXPECT_ABORT_COMMAND=<program> -DEXPECT_ABORT_REGEX=<regex> -P CustodyExpectAbort.cmake
# Succeeds only if <program> exits unsuccessfully (non-zero or killed by a
# signal) and its combined output matches <regex>.
cmake_minimum_required(VERSION 3.25)

if(NOT EXPECT_ABORT_COMMAND OR NOT EXPECT_ABORT_REGEX)
  message(FATAL_ERROR "CustodyExpectAbort: EXPECT_ABORT_COMMAND and EXPECT_ABORT_REGEX are required")
endif()

execute_process(
  COMMAND "${EXPECT_ABORT_COMMAND}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  TIMEOUT 50)

if(result EQUAL 0)
  message(NOTICE "${output}")
  message(FATAL_ERROR "${EXPECT_ABORT_COMMAND} exited successfully, but it was expected to abort.")
endif()
if(NOT output MATCHES "${EXPECT_ABORT_REGEX}")
  message(NOTICE "${output}")
  message(FATAL_ERROR
    "${EXPECT_ABORT_COMMAND} failed (${result}), but its output (above) does not match: "
    "${EXPECT_ABORT_REGEX}")
endif()
message(STATUS "${EXPECT_ABORT_COMMAND} aborted as expected (${result})")
