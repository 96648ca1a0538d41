// Cancellation of long-running commands: Ctrl-C (SIGINT) and the --timeout watchdog set one flag
// that the command polls; it then flushes its output, removes its temporary files and exits 130
// (interrupted) or 124 (timed out). A second Ctrl-C restores the default action and kills.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/base/error.hpp"

namespace bitnet::app {

enum class CancelReason : int { none = 0, interrupt = 1, timeout = 2 };

// Installs the SIGINT handler and returns the cancellation flag (set by Ctrl-C or the timeout).
const std::atomic<bool>& install_interrupt_handler();
const std::atomic<bool>& cancel_flag();
CancelReason cancel_reason();

// Sets the flag with `why` unless it is already set (the first reason wins); wakes the watchdog.
// Async-signal-safe. Returns whether this call set it.
bool request_cancel(CancelReason why);

// The wall-clock limit of this run (--timeout; 0 = none), for messages.
void set_time_limit(double seconds);
double time_limit();

// What a cancelled command reports: Error(timeout) "timed out after S s (--timeout S)" or
// Error(interrupted) "interrupted (Ctrl-C)".
Error cancel_error();
// Throws cancel_error() when the flag is set.
void throw_if_cancelled();

// The semaphore the watchdog sleeps on: posted by SIGINT, SIGQUIT and request_cancel.
void wake_watchdog();
// Waits until woken or until `deadline_ns` (CLOCK_MONOTONIC nanoseconds; 0 = no deadline).
void wait_for_wake(int64_t deadline_ns);

}  // namespace bitnet::app
