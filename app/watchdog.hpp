// The watchdog thread of a command run: enforces --timeout (sets the cancellation flag the Ctrl-C
// path uses), ends a cancelled run that does not stop within a grace period (exit 124 or 130,
// registered temporary files removed), and prints the thread dump after a SIGQUIT.
#pragma once

#include <atomic>
#include <thread>

namespace bitnet::app {

class Watchdog {
 public:
  // timeout_s: wall-clock limit (0 = none); grace_s: how long a cancelled command may take to stop.
  Watchdog(double timeout_s, double grace_s);
  ~Watchdog();  // stops and joins the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void loop();
  [[noreturn]] void force_exit() const;

  double timeout_s_;
  double grace_s_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bitnet::app
