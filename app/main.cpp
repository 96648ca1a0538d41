// bitnet: entry point. Everything else lives in the app library; tests never link it, they run
// this executable (test/support/run.hpp).
#include "app/cli.hpp"

int main(int argc, char** argv) { return bitnet::app::run(argc, argv); }
