// The shared engine flags and their one resolution. The environment reaches them only through
// CLI11's envname, so BITNET_THREADS=0 fails with the very message -t 0 does, and a flag that was
// given always wins over the variable.
#include "app/engine_options.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <CLI/CLI.hpp>

#include "app/cli.hpp"
#include "app/signals.hpp"
#include "core/base/cpu_features.hpp"
#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/base/thread_pool.hpp"
#include "core/fixtures/resolve.hpp"
#include "core/gguf/reader.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/model/synthetic.hpp"

namespace bitnet::app {
namespace {

// "2" or "1,2,4" -> thread counts; {fallback} for "".
std::vector<int> parse_thread_list(const std::string& s, int fallback) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024)
      throw make_error(ErrorCode::usage, "-t '{}': expected thread counts like 2 or 1,2,4", s);
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) out.push_back(fallback);
  return out;
}

}  // namespace

void add_engine_flags(CLI::App& sub, EngineFlags& f, const EngineFlagSet& which) {
  f.declared = which;
  using Model = EngineFlagSet::Model;
  const std::string model_help = "A .gguf path, fixture:NAME or synthetic:SHAPE[:TYPE] (default: " +
                                 std::string(kDefaultModel) + ")";
  if (which.model == Model::flag) sub.add_option("-m,--model", f.model, model_help);
  if (which.model == Model::positional) sub.add_option("MODEL", f.model, model_help);
  if (which.threads) {
    CLI::Option* t = which.thread_list
                         ? sub.add_option("-t,--threads", f.thread_list, which.threads_help)
                         : sub.add_option("-t,--threads", f.threads, which.threads_help)->check(CLI::Range(1, 1024));
    // Hidden (debug-report): no envname, so a bad BITNET_THREADS is described, not fatal.
    if (which.hidden) t->group("");
    else f.threads_opt = t->envname("BITNET_THREADS");
  }
  if (which.ctx) sub.add_option("-c,--ctx-size", f.ctx, "Context size (default: the model's, at most 4096)");
  if (which.backend) {
    CLI::Option* b = sub.add_option("--backend", f.backend,
                                    "Kernel table: reference, avx2, avx512, amx (default: the best this CPU runs)");
    b->envname("BITNET_BACKEND");
    if (which.hidden) b->group("");
  }
  if (which.kv) {
    const auto types = CLI::IsMember({"f16", "q8_0", "f32"});
    sub.add_option("--kv-type", f.kv_type,
                   "KV cache type: f16 (default, as llama.cpp), q8_0 (half the bytes: faster at long contexts, "
                   "slightly different results) or f32")
        ->check(types)
        ->default_str("f16");
    sub.add_option("--cache-type-k", f.cache_type_k, "llama.cpp's -ctk (accepted too): --kv-type for K; K and V take one type")
        ->check(types);
    sub.add_option("--cache-type-v", f.cache_type_v, "llama.cpp's -ctv (accepted too): --kv-type for V; K and V take one type")
        ->check(types);
  }
  if (which.pre)
    sub.add_option("--pre", f.pre,
                   "Byte-level BPE pre-tokenizer: default, llama3 or gpt-2. Without it: the file's "
                   "tokenizer.ggml.pre, and for a file without one (the official 2B-4T) llama3, as Hugging Face "
                   "tokenizes it; bitnet.cpp uses 'default' there");
  // CLI11 reads an envname when the command line is done, and for every subcommand that has no
  // callback of this kind: a bad BITNET_THREADS would then break `bitnet fixtures list` and
  // `bitnet --help` too. With one, only the command that was asked for reads its variables.
  sub.parse_complete_callback([] {});
}

infer::KvType resolve_kv_type(const EngineFlags& f) {
  // --kv-type, -ctk and -ctv name one type here: any two that are given must agree.
  std::string type, from;
  for (const auto& [flag, value] : {std::pair<std::string_view, const std::string&>{"--kv-type", f.kv_type},
                                    {"-ctk", f.cache_type_k}, {"-ctv", f.cache_type_v}}) {
    if (value.empty()) continue;
    if (!type.empty() && value != type)
      throw make_error(ErrorCode::usage, "{} {} with {} {}: the K and V caches take one type here (f16, q8_0 or f32)",
                       from, type, flag, value);
    type = value;
    from = flag;
  }
  return type == "q8_0" ? infer::KvType::q8_0 : type == "f32" ? infer::KvType::f32 : infer::KvType::f16;
}

int resolved_threads(const EngineFlags& f) {
  const int threads = f.threads > 0 ? f.threads : ThreadPool::default_threads();
  return f.declared.thread_list ? parse_thread_list(f.thread_list, threads).front() : threads;
}

const kernels::KernelTable& select_kernels(const std::string& name) {
  static log::Logger& lg = log::get("kernels");
  kernels::Selection s = kernels::select_backend(name);
  log::info(lg, "kernel table '{}' ({}); CPU: {}; features: {}", s.table->name, s.why, cpu_features().brand,
            cpu_features().summary());
  return *s.table;
}

std::filesystem::path resolve_model(const Context& ctx, std::string_view spec, int threads) {
  if (model::is_synthetic(spec)) {
    const model::SyntheticSpec s = model::parse_synthetic(spec);
    if (ctx.fixtures.cache_dir.empty())
      throw make_error(ErrorCode::failure, "'{}': synthetic models are written to a cache directory, and none is set "
                       "(set BITNET_CACHE_DIR, XDG_CACHE_HOME or HOME)", spec);
    ThreadPool pool(threads > 0 ? threads : ThreadPool::default_threads());
    // Writing a 2B-4T model takes seconds: Ctrl-C, SIGTERM and --timeout stop it (the writer
    // removes its temporary file) even in a command that does not poll the flag itself.
    const CancelPolling polling;
    const std::filesystem::path path =
        model::synthetic_model_path(s, ctx.fixtures.synthetic_dir(), &pool, {.cancel = &cancel_flag(), .progress = {}});
    throw_if_cancelled();  // cancelled after the last check: the command that did not poll stops here
    return path;
  }
  if (!spec.starts_with(fixtures::kFixturePrefix)) return std::filesystem::path(spec);
  fixtures::Fixtures fx(ctx.fixtures, load_manifests(ctx.manifests));
  return fixtures::resolve_model(spec, fx);
}

Engine resolve_engine(const Context& ctx, const EngineFlags& f, const EngineNeeds& needs,
                      const std::function<void(const Engine&)>& before_model) {
  Engine e;
  if (f.declared.backend) e.kernels = &select_kernels(f.backend);
  const int threads = f.threads > 0 ? f.threads : ThreadPool::default_threads();
  e.thread_counts = f.declared.thread_list ? parse_thread_list(f.thread_list, threads) : std::vector<int>{threads};
  e.threads = e.thread_counts.front();
  e.n_ctx = f.ctx;
  e.kv_type = resolve_kv_type(f);
  static log::Logger& lg = log::get("engine");
  // Allowed, as llama.cpp allows them, but rarely what was meant: say so once.
  const int most = *std::max_element(e.thread_counts.begin(), e.thread_counts.end());
  if (most > ThreadPool::default_threads())
    log::warn(lg, "-t {}: this machine runs {} threads at once; the extra threads wait for CPUs (slower, not faster)",
              most, ThreadPool::default_threads());
  if (!f.pre.empty()) e.pre = f.pre;
  if (before_model) before_model(e);
  e.model_path = resolve_model(ctx, f.model, e.threads);
  if (needs.model) {
    e.model = model::Model::load(e.model_path);
    if (const uint32_t train = e.model->config().n_ctx_train; train > 0 && e.n_ctx > train)
      log::warn(lg, "-c {}: the model was trained on {} tokens of context; past that its output may degrade", e.n_ctx,
                train);
  }
  if (needs.vocab) {
    // The tokenizer alone needs no weights: only the GGUF's metadata is read.
    if (e.model) e.tokenizer.emplace(tokenizer::read_vocab(e.model->file(), e.vocab_options()));
    else e.tokenizer.emplace(tokenizer::read_vocab(gguf::GgufFile::open(e.model_path), e.vocab_options()));
  }
  if (needs.pool) e.pool = std::make_unique<ThreadPool>(e.threads);
  return e;
}

}  // namespace bitnet::app
