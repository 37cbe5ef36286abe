#include "log_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace car {

std::unique_ptr<LogFile> LogFile::open(const std::string& path, std::error_code& error) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    error.assign(errno, std::generic_category());
    return nullptr;
  }
  error.clear();
  return std::unique_ptr<LogFile>(new LogFile(fd, path));
}

LogFile::~LogFile() { ::close(fd_); }

std::error_code LogFile::write_line(std::string_view line) {
  std::string buffer;
  buffer.reserve(line.size() + 1);
  buffer.append(line);
  buffer.push_back('\n');
  std::string_view rest = buffer;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace car
