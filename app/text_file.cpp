#include "app/text_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/base/error.hpp"

namespace bitnet::app {

namespace {

[[noreturn]] void cannot_read(const std::string& path, std::string_view what, const char* reason) {
  throw make_error(ErrorCode::invalid_input, "{}: cannot read {}: {}", path, what, reason);
}

}  // namespace

std::string read_text_file(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) cannot_read(path, what, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    cannot_read(path, what, "is a directory");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int e = errno;
      ::close(fd);
      cannot_read(path, what, std::strerror(e));
    }
  }
  ::close(fd);
  return text;
}

}  // namespace bitnet::app
