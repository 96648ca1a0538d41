// The engine set-up every command that runs a model shares: which model, which kernel table, how
// many threads, what context size, which pre-tokenizer. add_engine_flags declares a command's share
// of them; resolve_engine turns them into a model, a kernel table and a thread pool. One precedence
// for every value: the command's flag, then its BITNET_* variable, then the default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"
#include "core/model/model.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace bitnet::kernels {
struct KernelTable;
}

namespace bitnet::app {

struct Context;

inline constexpr std::string_view kDefaultModel = "fixture:stories260K";

// Which of the shared flags a command declares.
struct EngineFlagSet {
  enum class Model { none, flag, positional };  // -m,--model or a MODEL argument
  Model model = Model::flag;
  bool backend = true;       // --backend (BITNET_BACKEND)
  bool threads = true;       // -t,--threads (BITNET_THREADS)
  bool thread_list = false;  // -t takes "1,2,4" (bench): parsed by resolve_engine, flag and variable alike
  bool ctx = false;          // -c,--ctx-size
  bool pre = false;          // --pre
  bool kv = false;           // --kv-type, and llama.cpp's -ctk/-ctv
  // --backend and --threads are left out of --help: the command only reports what the
  // environment asks for (debug-report, whose -- ARGS run inherits that environment).
  bool hidden = false;
  std::string threads_help = "Threads (default: all cores)";
};

// The parsed values; CLI11 has already put a BITNET_* variable into a flag that was not given.
struct EngineFlags {
  EngineFlagSet declared;   // what add_engine_flags declared
  std::string model{kDefaultModel};
  std::string backend;      // "" = the best this CPU runs
  int threads = 0;          // 0 = all cores
  std::string thread_list;  // with thread_list: "" = {threads}
  uint32_t ctx = 0;         // 0 = the model's training context, at most 4096
  std::string pre;          // "" = the file's (tokenizer.ggml.pre)
  std::string kv_type, cache_type_k, cache_type_v;  // "" = not given
  const CLI::Option* threads_opt = nullptr;  // count() > 0: -t or BITNET_THREADS gave the value
};

void add_engine_flags(CLI::App& sub, EngineFlags& f, const EngineFlagSet& which = {});

// What resolve_engine loads besides the kernel table and the thread count.
struct EngineNeeds {
  bool model = false;  // Model::load (otherwise only the model's path is resolved)
  bool vocab = false;  // the tokenizer: from the loaded model, or from the GGUF file alone
  bool pool = false;   // a ThreadPool of `threads`
};

struct Engine {
  const kernels::KernelTable* kernels = nullptr;  // null when the command takes no --backend
  int threads = 1;
  std::vector<int> thread_counts;  // bench's -t list; else {threads}
  uint32_t n_ctx = 0;
  infer::KvType kv_type = infer::KvType::f16;
  std::optional<std::string> pre;
  std::filesystem::path model_path;
  std::unique_ptr<model::Model> model;
  std::optional<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;

  tokenizer::VocabLoadOptions vocab_options() const { return {pre}; }
};

// In this order, so a usage error costs no download: the kernel table (bitnet::Error(usage) for an
// unknown or unsupported one), the thread count, the model (a fixture is fetched and verified, a
// synthetic one generated), then what `needs` asks for. before_model runs once the kernel table and
// threads are known: checks that should fail before a download does (bench's --reference).
Engine resolve_engine(const Context& ctx, const EngineFlags& f, const EngineNeeds& needs,
                      const std::function<void(const Engine&)>& before_model = {});

// The KV cache type of --kv-type / -ctk / -ctv (f16 when none is given); bitnet::Error(usage)
// when two of them disagree.
infer::KvType resolve_kv_type(const EngineFlags& f);

// The thread count the flags ask for: -t or BITNET_THREADS, else every core (bench: the first of
// its list).
int resolved_threads(const EngineFlags& f);

// The kernel table by name ("" = best for this CPU); logs the choice.
const kernels::KernelTable& select_kernels(const std::string& name);

// Resolves a MODEL argument (path, fixture:NAME or synthetic:SHAPE[:TYPE]...) to a file. A fixture
// is checksum-verified and downloaded if need be; a synthetic model is generated into
// <cache dir>/synthetic/ the first time it is asked for, with `threads` threads.
std::filesystem::path resolve_model(const Context& ctx, std::string_view spec, int threads);

}  // namespace bitnet::app
