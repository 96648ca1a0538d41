// Crash report and SIGQUIT thread dump. The crash path runs in a signal handler of a process in an
// unknown state, so it only uses async-signal-safe calls (write, backtrace_symbols_fd, raise)
// plus glibc's backtrace(), warmed up at install time so it does not load libgcc_s from the handler.
#include "crash_handler.hpp"

#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "app/signals.hpp"
#include "core/base/log.hpp"

namespace bitnet::app {
namespace {

constexpr int kMaxFrames = 64;
constexpr int kCrashSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};

std::atomic<int> g_crashing{0};
std::atomic<bool> g_quit{false};
std::atomic<bool> g_dump_done{false};
int g_dump_signal = 0;  // SIGRTMIN + 3, set at install (SIGRTMIN is not a constant)

void put_fd(int fd, const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// To stderr, and to the log file when there is one (--log-file), so a crash report survives in it.
void put(const char* s) {
  put_fd(STDERR_FILENO, s);
  if (const int fd = log::file_descriptor(); fd >= 0) put_fd(fd, s);
}

// Unsigned number in base 10 or 16 without printf (not async-signal-safe).
void put_num(uint64_t v, unsigned base) {
  char buf[24];
  char* p = buf + sizeof buf;
  *--p = '\0';
  do {
    *--p = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  put(p);
}

const char* describe(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGABRT: return "SIGABRT (aborted)";
    case SIGBUS: return "SIGBUS (bad memory access, e.g. a truncated memory-mapped file)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGILL: return "SIGILL (illegal instruction: code for a CPU feature this machine lacks?)";
    default: return "unexpected signal";
  }
}

void put_backtrace() {
  void* frames[kMaxFrames];
  const int n = backtrace(frames, kMaxFrames);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  if (const int fd = log::file_descriptor(); fd >= 0) backtrace_symbols_fd(frames, n, fd);
}

extern "C" void on_crash(int sig, siginfo_t* info, void*) {
  if (g_crashing.fetch_add(1) != 0) {
    // Another thread is writing its report and will end the process; stay out of its way.
    for (;;) ::pause();
  }
  put("\nbitnet: fatal signal ");
  put(describe(sig));
  if (sig != SIGABRT && info != nullptr && info->si_code > 0) {  // > 0: raised by the kernel, with an address
    put(" at address 0x");
    put_num(reinterpret_cast<uintptr_t>(info->si_addr), 16);
  }
  put(" in thread ");
  put_num(static_cast<uint64_t>(::syscall(SYS_gettid)), 10);
  put("\nbacktrace (innermost first; C++ names are mangled, pipe through c++filt):\n");
  put_backtrace();
  put("This is a bug in bitnet. Please report it, and attach the output of\n"
      "  bitnet debug-report -- <the arguments that crashed>\n"
      "(it reruns the command and describes the build, the machine and the model).\n");
  // SA_RESETHAND already restored the default action and SA_NODEFER leaves the signal unblocked:
  // raising it again ends the process with this signal, so the exit status stays a signal death.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

extern "C" void on_quit(int) {
  g_quit.store(true);
  wake_watchdog();
}

extern "C" void on_dump(int) {
  put_backtrace();
  g_dump_done.store(true);
}

alignas(16) char g_alt_stack[64 * 1024];

}  // namespace

void install_crash_handlers() {
  // A stack overflow can only be reported from another stack (this one serves the main thread).
  stack_t ss{};
  ss.ss_sp = g_alt_stack;
  ss.ss_size = sizeof g_alt_stack;
  ::sigaltstack(&ss, nullptr);
  {
    void* warm[2];
    (void)backtrace(warm, 2);  // loads the unwinder now, not inside a handler
  }
  struct sigaction sa {};
  sa.sa_sigaction = on_crash;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
  for (int sig : kCrashSignals) ::sigaction(sig, &sa, nullptr);

  struct sigaction q {};
  q.sa_handler = on_quit;
  sigemptyset(&q.sa_mask);
  q.sa_flags = SA_RESTART;
  ::sigaction(SIGQUIT, &q, nullptr);

  g_dump_signal = SIGRTMIN + 3;
  struct sigaction d {};
  d.sa_handler = on_dump;
  sigemptyset(&d.sa_mask);
  d.sa_flags = SA_RESTART;
  ::sigaction(g_dump_signal, &d, nullptr);
}

bool take_quit_request() { return g_quit.exchange(false); }

void dump_all_threads(std::string_view why) {
  const pid_t pid = ::getpid();
  const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
  std::vector<pid_t> tids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::strtol(e.path().filename().c_str(), nullptr, 10));
    if (tid > 0 && tid != self) tids.push_back(tid);
  }
  put(fmt::format("\nbitnet: {}: stacks of {} threads (the program continues)\n", why, tids.size()).c_str());
  for (pid_t tid : tids) {
    std::string name;
    std::ifstream(fmt::format("/proc/self/task/{}/comm", tid)) >> name;
    put(fmt::format("--- thread {} ({}){} ---\n", tid, name, tid == pid ? ", main" : "").c_str());
    g_dump_done.store(false);
    if (::syscall(SYS_tgkill, pid, tid, g_dump_signal) != 0) {
      put("(gone)\n");
      continue;
    }
    // Serialized: one thread writes at a time. A thread that blocks the signal never answers.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!g_dump_done.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!g_dump_done.load()) put("(no answer within 1 s)\n");
  }
  put("--- end of thread dump ---\n");
}

void crash_for_test(int sig) {
  ::raise(sig);  // as abort() does for SIGABRT
  std::_Exit(1);  // not reached: the handler re-raises with the default action
}

}  // namespace bitnet::app
