// The temporary-file registry and the TempFile guard.
#include "core/base/temp_files.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/base/error.hpp"

namespace bitnet {
namespace {

std::mutex g_mutex;
std::vector<std::filesystem::path> g_files;

constexpr std::string_view kTmpInfix = ".tmp-";

}  // namespace

void register_temp_file(const std::filesystem::path& p) {
  std::lock_guard lock(g_mutex);
  g_files.push_back(p);
}

void unregister_temp_file(const std::filesystem::path& p) {
  std::lock_guard lock(g_mutex);
  // The last registration of p: a path registered twice stays registered once.
  for (auto it = g_files.rbegin(); it != g_files.rend(); ++it)
    if (*it == p) {
      g_files.erase(std::next(it).base());
      return;
    }
}

void remove_registered_temp_files() noexcept {
  // try_lock: a signal may arrive while this very thread holds the lock, and a forced exit must not
  // wait for a thread stuck holding it. unlink() is async-signal-safe; c_str() does not allocate.
  std::unique_lock lock(g_mutex, std::try_to_lock);
  if (!lock.owns_lock()) return;
  for (const auto& p : g_files) ::unlink(p.c_str());
}

TempFile::TempFile(const std::filesystem::path& final_path) : final_(final_path), tmp_(final_path) {
  tmp_ += std::string(kTmpInfix) + std::to_string(::getpid());
  register_temp_file(tmp_);
}

TempFile::~TempFile() {
  if (!committed_) ::unlink(tmp_.c_str());
  unregister_temp_file(tmp_);
}

void TempFile::commit() {
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
    const int e = errno;
    throw make_error(ErrorCode::failure, "cannot rename {} to {}: {}", tmp_.string(), final_.string(), std::strerror(e));
  }
  committed_ = true;
}

std::optional<pid_t> temp_file_pid(std::string_view name) {
  const size_t at = name.rfind(kTmpInfix);
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  const std::string_view digits = name.substr(at + kTmpInfix.size());
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) return std::nullopt;
  return pid;
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace bitnet
