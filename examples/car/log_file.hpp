#pragma once
// Where the file task writes its lines.

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace car {

/// A destination for whole lines. Used by one task at a time.
class LineWriter {
 public:
  virtual ~LineWriter() = default;
  /// Writes `line` and a newline. Empty on success.
  virtual std::error_code write_line(std::string_view line) = 0;
  /// What to call the destination in messages.
  virtual const std::string& name() const = 0;
};

/// A file opened for appending. Each line goes to the kernel in one write(2), with no buffer of
/// our own, so a crash of this program loses at most the line being written.
class LogFile final : public LineWriter {
 public:
  /// Opens (creating if needed) `path` for appending. Returns null and sets `error` on failure.
  static std::unique_ptr<LogFile> open(const std::string& path, std::error_code& error);

  ~LogFile() override;
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  std::error_code write_line(std::string_view line) override;
  const std::string& name() const override { return path_; }

 private:
  LogFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
};

}  // namespace car
