// bitnet::Error: the one exception type thrown at load, I/O and validation boundaries.
// It carries an exit-code category and a chain of messages, outermost first, printed as
// "error: ..." followed by "  caused by: ..." lines.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace bitnet {

// Values are the process exit codes of CLI.md.
enum class ErrorCode : int {
  failure = 1,
  usage = 2,
  invalid_input = 3,
  fixture = 4,
  crossval_mismatch = 5,
  memcheck = 6,
  regression = 7,  // bench or memcheck worse than a --baseline file
  timeout = 124,
  interrupted = 130,
  terminated = 143,  // SIGTERM: 128 + 15, what a shell reports for a process SIGTERM killed
};

class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message) : code_(code), chain_{std::move(message)} {}

  ErrorCode code() const noexcept { return code_; }
  int exit_code() const noexcept { return static_cast<int>(code_); }
  // Outermost message first.
  const std::vector<std::string>& chain() const noexcept { return chain_; }
  const char* what() const noexcept override { return chain_.front().c_str(); }

  // Adds an outer explanation; the previous messages become its causes.
  Error& wrap(std::string outer) {
    chain_.insert(chain_.begin(), std::move(outer));
    return *this;
  }

  // "error: a\n  caused by: b\n" with a trailing newline.
  std::string format() const;

 private:
  ErrorCode code_;
  std::vector<std::string> chain_;
};

template <typename... Args>
[[nodiscard]] Error make_error(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Error(code, fmt::format(f, std::forward<Args>(args)...));
}

// Internal invariant check that stays on in release builds. For programmer errors only,
// never for validating input (input gets a bitnet::Error).
[[noreturn]] void invariant_failed(const char* expr, const char* file, int line);

}  // namespace bitnet

#define BITNET_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::bitnet::invariant_failed(#cond, __FILE__, __LINE__))
