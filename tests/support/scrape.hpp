#pragma once
// Fetching a Prometheus /metrics page in tests, with curl as a scraper would.

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace custody_test {

/// The body of http://<address>/metrics, fetched with curl.
inline std::string scrape(const std::string& address) {
  const std::string command = "curl -sS --max-time 60 http://" + address + "/metrics";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {};
  std::string body;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) body.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return body;
}

}  // namespace custody_test
