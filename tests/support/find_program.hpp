#pragma once
// Finding a program the way a shell would, without starting one: a test process that runs
// threads should not fork a shell only to ask (under ThreadSanitizer a fork of a threaded
// process can hang).

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace custody_test {

/// The path of the executable `name` in a directory of PATH, then of `extra_dirs` (more
/// directories, ':'-separated); empty when there is none.
inline std::string find_program(const std::string& name, const std::string& extra_dirs = {}) {
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): tests don't setenv
  const std::string dirs = std::string(path != nullptr ? path : "") + ":" + extra_dirs;
  std::size_t begin = 0;
  while (begin < dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', begin), dirs.size());
    std::string candidate = dirs.substr(begin, end - begin) + "/" + name;
    if (end > begin && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return {};
}

}  // namespace custody_test
