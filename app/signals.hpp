// Ctrl-C handling for long-running commands: the first SIGINT sets a flag the command polls
// (it then flushes its output and exits 130); a second one restores the default and kills.
#pragma once

#include <atomic>

namespace bitnet::app {

// Installs the handler and returns the flag it sets.
const std::atomic<bool>& install_interrupt_handler();

}  // namespace bitnet::app
