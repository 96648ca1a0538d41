// The command-line frame: global flags, the environment, the table of subcommands, and the one
// place where bitnet::Error becomes an exit code.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace bitnet::app {

// What app/ read from the environment and the global flags; core only ever sees typed values.
struct Context {
  std::vector<std::filesystem::path> fixture_dirs;  // BITNET_FIXTURE_PATH
  // BITNET_CACHE_DIR, else $XDG_CACHE_HOME/bitnet, else $HOME/.cache/bitnet ("" when none is set).
  std::filesystem::path cache_dir;
  bool color = true;                                // false under NO_COLOR or when not a terminal
  std::string backend;                              // BITNET_BACKEND ("" = best for this CPU)
  int threads = 0;                                  // BITNET_THREADS (0 = all cores)
};

using RunFn = std::function<int(const Context&)>;

struct CommandSpec {
  std::string_view name;
  std::string_view summary;
  RunFn (*setup)(CLI::App& sub);  // declares the flags; returns what runs after parsing
};

RunFn setup_inspect(CLI::App& sub);
RunFn setup_generate(CLI::App& sub);
RunFn setup_tokenize(CLI::App& sub);
RunFn setup_convert(CLI::App& sub);

// Parses argv, runs the chosen command, maps errors to exit codes (CLI.md).
int run(int argc, char** argv);

// Resolves a MODEL argument (path, fixture:NAME or synthetic:SHAPE[:TYPE]...) to a file. A
// synthetic model is generated into <cache_dir>/synthetic/ the first time it is asked for.
std::filesystem::path resolve_model(const Context& ctx, std::string_view spec);

}  // namespace bitnet::app
