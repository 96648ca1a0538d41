// Output files: checked up front, written through a temporary name.
#include "output_path.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/base/error.hpp"
#include "core/base/temp_files.hpp"

namespace bitnet::app {

void check_output_path(std::string_view flag, const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw make_error(ErrorCode::failure, "{} {}: cannot create it: it is a directory", flag, path.string());
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir, ec))
    throw make_error(ErrorCode::failure, "{} {}: cannot create it: the directory {} does not exist", flag, path.string(),
                     dir.string());
  if (::access(dir.c_str(), W_OK) != 0)
    throw make_error(ErrorCode::failure, "{} {}: cannot create it in {}: {}", flag, path.string(), dir.string(),
                     std::strerror(errno));
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  TempFile tmp(path);  // removed on failure, and by a signal handler or the watchdog
  auto fail = [&](const std::string& reason) {
    return make_error(ErrorCode::failure, "{}: cannot write: {}", path.string(), reason);
  };
  {
    std::ofstream out(tmp.path(), std::ios::binary | std::ios::trunc);
    if (!out) throw fail(std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw fail(errno != 0 ? std::strerror(errno) : "the write failed");
  }
  try {
    tmp.commit();
  } catch (const Error& e) {
    throw fail(e.what());
  }
}

}  // namespace bitnet::app
