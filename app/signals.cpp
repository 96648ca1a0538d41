// SIGINT and SIGTERM -> the cancellation flag (or, when nothing polls it, temporary files removed
// and the default action); the timeout reason.
#include "signals.hpp"

#include <semaphore.h>
#include <signal.h>

#include <cerrno>
#include <ctime>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "core/base/temp_files.hpp"

namespace bitnet::app {
namespace {

std::atomic<bool> g_cancelled{false};
std::atomic<int> g_reason{0};
std::atomic<double> g_time_limit{0};
sem_t g_wake;
std::once_flag g_wake_once;

sem_t* wake_sem() {
  std::call_once(g_wake_once, [] { sem_init(&g_wake, 0, 0); });
  return &g_wake;
}

std::atomic<bool> g_polled{false};  // a command polls the flag: a signal cancels, it does not kill

extern "C" void on_cancel_signal(int sig) {
  const CancelReason why = sig == SIGTERM ? CancelReason::terminate : CancelReason::interrupt;
  if (g_polled.load() && request_cancel(why)) return;
  // Nothing would notice the flag, or this is the second signal (the user insists): end now, as
  // the default action would, but without leaving half-written files behind.
  remove_registered_temp_files();
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);  // blocked until this handler returns, then fatal
}

std::string seconds_text(double s) { return fmt::format("{:g}", s); }

}  // namespace

void install_cancel_handlers() {
  wake_sem();
  struct sigaction sa {};
  sa.sa_handler = on_cancel_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking read (the --chat prompt) returns EINTR and the command sees Ctrl-C.
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>& install_interrupt_handler() {
  g_polled.store(true);
  return g_cancelled;
}

CancelPolling::CancelPolling() : previous_(g_polled.exchange(true)) {}
CancelPolling::~CancelPolling() { g_polled.store(previous_); }

const std::atomic<bool>& cancel_flag() { return g_cancelled; }

CancelReason cancel_reason() { return static_cast<CancelReason>(g_reason.load()); }

bool request_cancel(CancelReason why) {
  int expected = 0;
  if (!g_reason.compare_exchange_strong(expected, static_cast<int>(why))) return false;
  g_cancelled.store(true);
  wake_watchdog();
  return true;
}

void set_time_limit(double seconds) { g_time_limit.store(seconds); }
double time_limit() { return g_time_limit.load(); }

Error cancel_error() {
  if (cancel_reason() == CancelReason::timeout) {
    const std::string s = seconds_text(time_limit());
    return make_error(ErrorCode::timeout, "timed out after {} s (--timeout {})", s, s);
  }
  if (cancel_reason() == CancelReason::terminate) return make_error(ErrorCode::terminated, "terminated (SIGTERM)");
  return make_error(ErrorCode::interrupted, "interrupted (Ctrl-C)");
}

void throw_if_cancelled() {
  if (g_cancelled.load()) throw cancel_error();
}

void wake_watchdog() { sem_post(wake_sem()); }  // sem_post is async-signal-safe

void wait_for_wake(int64_t deadline_ns) {
  sem_t* s = wake_sem();
  if (deadline_ns <= 0) {
    while (sem_wait(s) != 0 && errno == EINTR) {
    }
    return;
  }
  timespec ts{static_cast<time_t>(deadline_ns / 1000000000), static_cast<long>(deadline_ns % 1000000000)};
  while (sem_clockwait(s, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace bitnet::app
