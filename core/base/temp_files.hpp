// Temporary files (OUT.tmp-PID, renamed over OUT when complete) and the process-wide registry of
// the ones being written, so a signal handler or the watchdog can remove them before the process
// ends without unwinding. Also tells a stale temporary file (its writer is gone) from a live one.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string_view>

namespace bitnet {

// Paths are copied; a process has at most a few registered at a time.
void register_temp_file(const std::filesystem::path& p);
void unregister_temp_file(const std::filesystem::path& p);
// Unlinks every registered file. Callable from a signal handler or while another thread is stuck:
// it neither allocates nor waits (if the registry is locked at that moment it does nothing).
void remove_registered_temp_files() noexcept;

// `final_path` + ".tmp-PID", registered while it lives. Not committed: the file is removed.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& final_path);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::filesystem::path& path() const { return tmp_; }
  // Renames the temporary file over the final path. Throws Error(failure) (the file is then removed).
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path tmp_;
  bool committed_ = false;
};

// The PID of "NAME.tmp-PID" (the name TempFile gives); nullopt for any other name.
std::optional<pid_t> temp_file_pid(std::string_view file_name);
// Whether a process with this PID exists (kill(pid, 0); one of another user counts as alive).
bool process_alive(pid_t pid);

}  // namespace bitnet
