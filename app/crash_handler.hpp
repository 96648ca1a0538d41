// Last-resort signal handlers. A crash (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) prints the
// signal, a backtrace with function names and how to report the bug, then dies of the same signal.
// SIGQUIT (Ctrl-\) prints every thread's stack to stderr and the program carries on.
#pragma once

#include <string_view>

namespace bitnet::app {

// Installs both; call once, early, from the main thread.
void install_crash_handlers();

// Prints every thread's backtrace to stderr, one thread at a time (each thread writes its own
// from a real-time signal handler), under a line saying why ("SIGQUIT", "--timeout 5 s reached").
// Called by the watchdog after a SIGQUIT and when --timeout ends a run; not from a handler.
void dump_all_threads(std::string_view why = "SIGQUIT");

// Whether a SIGQUIT arrived since the last call (the watchdog polls it when woken).
bool take_quit_request();

// Test-only (BITNET_TEST_FAULT): crash like a real bug would, through the installed handlers.
[[noreturn]] void crash_for_test(int sig);

}  // namespace bitnet::app
