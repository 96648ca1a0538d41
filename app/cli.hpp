// The command-line frame: global flags, the environment, the table of subcommands, and the one
// place where bitnet::Error becomes an exit code.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fixtures/config.hpp"
#include "core/fixtures/resolve.hpp"

namespace CLI {
class App;
}

namespace bitnet::kernels {
struct KernelTable;
}

namespace bitnet::app {

// What app/ read from the environment and the global flags; core only ever sees typed values.
struct Context {
  // BITNET_CACHE_DIR (else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet), BITNET_FIXTURE_PATH,
  // BITNET_OFFLINE; `fixtures` flags override them.
  fixtures::FixtureConfig fixtures;
  std::vector<std::filesystem::path> manifests;     // BITNET_MANIFEST: merged over the built-in one
  bool color = true;                                // false under NO_COLOR or when not a terminal
  std::string backend;                              // BITNET_BACKEND ("" = best for this CPU)
  int threads = 0;                                  // BITNET_THREADS (0 = all cores)
  std::filesystem::path llama_dir;                  // BITNET_LLAMA_DIR ("" = not set up)
  std::filesystem::path log_file;                   // --log-file ("" = none)
};

using RunFn = std::function<int(const Context&)>;

struct CommandSpec {
  std::string_view name;
  std::string_view summary;
  RunFn (*setup)(CLI::App& sub);  // declares the flags; returns what runs after parsing
};

RunFn setup_inspect(CLI::App& sub);
RunFn setup_generate(CLI::App& sub);
RunFn setup_bench(CLI::App& sub);
RunFn setup_tokenize(CLI::App& sub);
RunFn setup_fixtures(CLI::App& sub);
RunFn setup_crossval(CLI::App& sub);
RunFn setup_convert(CLI::App& sub);
RunFn setup_debug_report(CLI::App& sub);
RunFn setup_memcheck(CLI::App& sub);

// Parses argv, runs the chosen command, maps errors to exit codes (CLI.md).
int run(int argc, char** argv);

// The kernel table for --backend/BITNET_BACKEND ("" = best for this CPU); logs the choice.
const kernels::KernelTable& select_kernels(const std::string& name);

// Resolves a MODEL argument (path, fixture:NAME or synthetic:SHAPE[:TYPE]...) to a file. A fixture
// is checksum-verified and downloaded if need be; a synthetic model is generated into
// <cache dir>/synthetic/ the first time it is asked for.
std::filesystem::path resolve_model(const Context& ctx, std::string_view spec);
// The built-in manifest with every file of `files` merged over it, in order.
fixtures::Manifest load_manifests(const std::vector<std::filesystem::path>& files);

}  // namespace bitnet::app
