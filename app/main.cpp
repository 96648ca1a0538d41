// bitnet: entry point. Everything else lives in the app library so tests can drive it.
#include "app/cli.hpp"

int main(int argc, char** argv) { return bitnet::app::run(argc, argv); }
