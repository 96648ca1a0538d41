// The watchdog loop: sleep on the wake semaphore until the next deadline, a signal or the end.
#include "watchdog.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "app/crash_handler.hpp"
#include "app/signals.hpp"
#include "core/base/temp_files.hpp"

namespace bitnet::app {
namespace {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // sem_clockwait's clock there: a wall-clock step moves no deadline
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t to_ns(double s) { return static_cast<int64_t>(s * 1e9); }

}  // namespace

Watchdog::Watchdog(double timeout_s, double grace_s) : timeout_s_(timeout_s), grace_s_(grace_s) {
  set_time_limit(timeout_s);
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  stop_.store(true);
  wake_watchdog();
  thread_.join();
}

void Watchdog::loop() {
  int64_t deadline = timeout_s_ > 0 ? now_ns() + to_ns(timeout_s_) : 0;  // 0: none
  int64_t hard = 0;                                                    // forced exit, once cancelled
  for (;;) {
    int64_t next = deadline;
    if (hard != 0 && (next == 0 || hard < next)) next = hard;
    wait_for_wake(next);
    if (stop_.load()) return;
    if (take_quit_request()) dump_all_threads();
    const int64_t now = now_ns();
    if (deadline != 0 && now >= deadline) {
      // Where every thread was when the time ran out, before anything unwinds: a slow or hung run
      // explains itself (Ctrl-C first: no dump, the user knows why it stopped).
      if (!cancel_flag().load()) dump_all_threads(fmt::format("--timeout {:g} s reached", timeout_s_));
      request_cancel(CancelReason::timeout);  // no-op when Ctrl-C came first
      deadline = 0;
    }
    if (hard == 0 && cancel_flag().load()) hard = now + to_ns(grace_s_);
    if (hard != 0 && now >= hard) force_exit();
  }
}

void Watchdog::force_exit() const {
  const Error e = cancel_error();
  // Not through stdio: the stuck thread may hold stdout's or stderr's lock.
  const std::string line = fmt::format("error: {}; the command did not stop within {:g} s and was ended\n",
                                       e.what(), grace_s_);
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  remove_registered_temp_files();
  ::_exit(e.exit_code());
}

}  // namespace bitnet::app
