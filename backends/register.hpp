// Registers every optimised kernel table compiled into this build with core's dispatcher.
// Called once by app/ at start-up and by tests; harmless to call again.
#pragma once

namespace bitnet::backends {

void register_all();

// Names of the optimised tables compiled in, for --version and debug-report ("avx2 avx512 amx").
const char* compiled();

}  // namespace bitnet::backends
