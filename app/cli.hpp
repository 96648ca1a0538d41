// The command-line frame: global flags, the environment, the table of subcommands, and the one
// place where bitnet::Error becomes an exit code.
#pragma once

#include <ctime>
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

namespace bitnet::app {

// What app/ read from the environment and the global flags; core only ever sees typed values.
// BITNET_THREADS and BITNET_BACKEND are not here: they belong to the commands' -t and --backend
// (app/engine_options.hpp).
struct Context {
  // BITNET_CACHE_DIR (else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet), BITNET_FIXTURE_PATH,
  // BITNET_OFFLINE; `fixtures` flags override them.
  fixtures::FixtureConfig fixtures;
  std::vector<std::filesystem::path> manifests;     // BITNET_MANIFEST: merged over the built-in one
  bool color = true;                                // false under NO_COLOR or when not a terminal
  std::filesystem::path llama_dir;                  // BITNET_LLAMA_DIR ("" = not set up)
  std::filesystem::path log_file;                   // --log-file ("" = none)
  bool quiet = false;                               // -q: nothing on stderr but errors
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
RunFn setup_perplexity(CLI::App& sub);

// Parses argv, runs the chosen command, maps errors to exit codes (CLI.md). Output that could
// not be written to standard output makes a successful command exit 1.
int run(int argc, char** argv);

// A time as ISO 8601 UTC, "2026-12-07T12:00:00Z" (reports, bench's test_time); utc_now: now.
std::string utc_text(std::time_t t);
std::string utc_now();

// Writes s to standard output and flushes it. A write the system refuses (a full disk) throws
// Error(failure) "cannot write standard output: REASON", so no command reports success for
// output that was lost.
void write_stdout(std::string_view s);

// The built-in manifest with every file of `files` merged over it, in order.
fixtures::Manifest load_manifests(const std::vector<std::filesystem::path>& files);

}  // namespace bitnet::app
