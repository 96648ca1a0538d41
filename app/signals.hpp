// Cancellation of long-running commands: Ctrl-C (SIGINT), SIGTERM and the --timeout watchdog set
// one flag that the command polls; it then flushes its output, removes its temporary files and
// exits 130 (interrupted), 143 (terminated) or 124 (timed out). While no code polls the flag, or
// at a second signal, the handler removes the registered temporary files (core/base/temp_files.hpp)
// and the signal's default action ends the process at once.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/base/error.hpp"

namespace bitnet::app {

enum class CancelReason : int { none = 0, interrupt = 1, timeout = 2, terminate = 3 };

// Installs the SIGINT and SIGTERM handlers; once, at start-up. Until a command polls the flag,
// they only remove the temporary files and let the signal kill.
void install_cancel_handlers();

// Declares that this command polls the flag from now on (SIGINT and SIGTERM then set it instead of
// killing), and returns it. The flag is also set by the timeout.
const std::atomic<bool>& install_interrupt_handler();
const std::atomic<bool>& cancel_flag();
CancelReason cancel_reason();

// install_interrupt_handler() for a scope: code that polls the flag inside a command that does not
// (writing a synthetic model). At the end the previous state returns.
class CancelPolling {
 public:
  CancelPolling();
  ~CancelPolling();
  CancelPolling(const CancelPolling&) = delete;
  CancelPolling& operator=(const CancelPolling&) = delete;

 private:
  bool previous_;
};

// Sets the flag with `why` unless it is already set (the first reason wins); wakes the watchdog.
// Async-signal-safe. Returns whether this call set it.
bool request_cancel(CancelReason why);

// The wall-clock limit of this run (--timeout; 0 = none), for messages.
void set_time_limit(double seconds);
double time_limit();

// What a cancelled command reports: Error(timeout) "timed out after S s (--timeout S)",
// Error(interrupted) "interrupted (Ctrl-C)" or Error(terminated) "terminated (SIGTERM)".
Error cancel_error();
// Throws cancel_error() when the flag is set.
void throw_if_cancelled();

// The semaphore the watchdog sleeps on: posted by SIGINT, SIGTERM, SIGQUIT and request_cancel.
void wake_watchdog();
// Waits until woken or until `deadline_ns` (CLOCK_MONOTONIC nanoseconds; 0 = no deadline).
void wait_for_wake(int64_t deadline_ns);

}  // namespace bitnet::app
