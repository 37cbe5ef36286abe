#pragma once
// Standard output and error for several tasks at once: whole lines, never interleaved, each
// flushed as it is written so that a pipe sees it at once.

#include <cstdio>
#include <mutex>
#include <string_view>

#include "tasks.hpp"

namespace car {

class Console {
 public:
  void out(std::string_view line) { write(stdout, line); }
  void err(std::string_view line) { write(stderr, line); }

  LineSink out_sink() {
    return [this](std::string_view line) { out(line); };
  }
  LineSink err_sink() {
    return [this](std::string_view line) { err(line); };
  }

 private:
  void write(std::FILE* stream, std::string_view line) {
    std::lock_guard lock(mutex_);
    std::fwrite(line.data(), 1, line.size(), stream);
    std::fputc('\n', stream);
    std::fflush(stream);
  }

  std::mutex mutex_;
};

}  // namespace car
