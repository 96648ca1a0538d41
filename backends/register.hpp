// Registers every optimised kernel table compiled into this build with core's dispatcher.
// Called once by app/ at start-up and by tests; harmless to call again.
#pragma once

namespace bitnet::backends {

void register_all();

// Names of the backends compiled in, for --version ("avx2 avx512").
const char* compiled();

}  // namespace bitnet::backends
