// `bitnet bench`: prompt-processing and generation speed of this engine (llama-bench's pp/tg
// tests, optionally after -d tokens of context), as a Markdown table (default), JSON or CSV
// with llama-bench's field names where they exist. --reference llama.cpp[:DIR] runs the same
// tests through llama.cpp (our adapter's bench mode), alternating repetitions with ours, and adds
// its rows and the ratio ours/theirs. Every row carries its provenance (build, CPU, THP, date);
// --save-baseline FILE keeps the samples, --baseline FILE re-runs its tests and flags rows slower
// beyond threshold and noise (diag/bench_compare.hpp), exit 7. Only the report goes to stdout.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/build_info.hpp"
#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/bench_report.hpp"
#include "app/output_path.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "core/base/cpu_features.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "core/kernels/dispatch.hpp"
#include "diag/bench.hpp"
#include "diag/bench_compare.hpp"
#include "diag/crossval/reference.hpp"

namespace bitnet::app {
namespace {

struct BenchFlags {
  EngineFlags engine;  // -m (a list), -t (a list), --backend
  std::string n_prompt = "512";  // lists, as llama-bench's: "128,512"
  std::string n_gen = "128";
  std::vector<std::string> pg;   // --pg PP,TG (llama-bench's -pg), repeatable
  std::string n_depth = "0";     // -d: context before each test, a list
  int32_t reps = 5;
  std::string output = "md";
  std::string reference;
  bool kernels = false;
  bool exact_logits = false;
  std::string baseline, save_baseline;
  double threshold_pct = 5;
  // What --baseline takes from its file: given on the command line too is a usage error.
  std::vector<const CLI::Option*> test_opts;
};

// "512" or "128,512": each a whole number in [0, kMaxTestTokens].
std::vector<int32_t> parse_lengths(std::string_view flag, const std::string& text) {
  std::vector<int32_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > kMaxTestTokens)
      throw make_error(ErrorCode::usage, "bench {} '{}': '{}' is not a token count in [0, {}]", flag, text, item,
                       kMaxTestTokens);
    out.push_back(static_cast<int32_t>(v));
  }
  if (out.empty()) throw make_error(ErrorCode::usage, "bench {} '': give a token count in [0, {}]", flag, kMaxTestTokens);
  return out;
}

// llama-bench's order: for each depth (the outer loop), every pp test, then every tg, then every pg.
std::vector<diag::BenchTest> bench_tests(const BenchFlags& f) {
  const std::vector<int32_t> prompts = parse_lengths("-p", f.n_prompt), gens = parse_lengths("-n", f.n_gen);
  std::vector<std::pair<int32_t, int32_t>> pgs;
  for (const std::string& pg : f.pg) {
    const std::vector<int32_t> v = parse_lengths("--pg", pg);
    if (v.size() != 2 || v[0] == 0 || v[1] == 0)
      throw make_error(ErrorCode::usage, "bench --pg '{}': give PP,TG, two positive token counts (e.g. 512,128)", pg);
    pgs.emplace_back(v[0], v[1]);
  }
  std::vector<diag::BenchTest> tests;
  for (int32_t d : parse_lengths("-d", f.n_depth)) {
    for (int32_t p : prompts)
      if (p > 0) tests.push_back({p, 0, d});
    for (int32_t n : gens)
      if (n > 0) tests.push_back({0, n, d});
    for (auto [p, n] : pgs) tests.push_back({p, n, d});
  }
  return tests;
}

// Bench's -m list: "a.gguf,b.gguf", or -m given more than once (joined with commas by CLI11).
std::vector<std::string> model_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw make_error(ErrorCode::usage, "bench -m '{}': give a model", text);
  return out;
}

template <typename T>
std::string join(const std::vector<T>& v, std::string_view sep = ", ") {
  std::string o;
  for (const T& x : v) {
    if (!o.empty()) o.append(sep);
    o.append(fmt::format("{}", x));
  }
  return o;
}

}  // namespace

RunFn setup_bench(CLI::App& sub) {
  auto f = std::make_shared<BenchFlags>();
  add_engine_flags(sub, f->engine, {.thread_list = true, .kv = true, .threads_help = "Thread counts, comma-separated (default: all cores)"});
  // -m a,b or -m a -m b: one model after the other, as llama-bench.
  sub.get_option("-m")
      ->multi_option_policy(CLI::MultiOptionPolicy::Join)
      ->delimiter(',')
      ->type_name("MODEL[,MODEL...]")
      ->description("Models, comma-separated or -m repeated (path, fixture:NAME or synthetic:SHAPE[:TYPE]...)");
  f->test_opts.push_back(sub.get_option("-t"));
  f->test_opts.push_back(sub.add_option("-p,--n-prompt", f->n_prompt, "Prompt lengths of the pp tests, comma-separated (0: none)")
      ->type_name("N[,N...]"));
  f->test_opts.push_back(sub.add_option("-n,--n-gen", f->n_gen, "Generation lengths of the tg tests, comma-separated (0: none)")
      ->type_name("N[,N...]"));
  f->test_opts.push_back(sub.add_option("--pg", f->pg,
                 "PP,TG: a prompt of PP tokens, then TG generated after it, timed together (llama-bench's -pg; "
                 "-pg is accepted too; repeatable)")
      ->type_name("PP,TG"));
  f->test_opts.push_back(sub.add_option("-d,--n-depth", f->n_depth,
                 "Tokens already in the context before each test, comma-separated: every test runs at each depth, "
                 "the context evaluated untimed (llama-bench's -d; default 0)")
      ->type_name("N[,N...]"));
  f->test_opts.push_back(
      sub.add_option("-r,--repetitions", f->reps, "Timed repetitions after one warm-up")->check(CLI::Range(1, 1000)));
  CLI::Option* output =
      sub.add_option("-o,--output", f->output, "md (default), json or csv")->check(CLI::IsMember({"md", "json", "csv"}));
  sub.add_flag_callback("--json", [f] { f->output = "json"; }, "The same as -o json (every command's spelling)")
      ->excludes(output);
  sub.add_option("--reference", f->reference,
                 "Also run the pp and tg tests through llama.cpp[:DIR] (DIR from BITNET_LLAMA_DIR), alternating "
                 "repetitions, and print the ratio ours/theirs");
  sub.add_flag("--kernels", f->kernels,
               "Also time each kernel-table entry at the model's shapes on every backend this CPU runs "
               "(only --backend's when given)");
  sub.add_flag("--exact-logits", f->exact_logits,
               "tg: compute every logit of every step, as llama-bench does. By default a step computes the 40 best "
               "exactly (generate's default top-k) through the output screen when the output matrix is F16/BF16/F32");
  f->test_opts.push_back(sub.get_option("--exact-logits"));
  f->test_opts.push_back(sub.get_option("--kv-type"));
  sub.add_option("--save-baseline", f->save_baseline,
                 "After a complete run, write its tests, every repetition's t/s and the build/machine provenance to FILE")
      ->type_name("FILE");
  sub.add_option("--baseline", f->baseline,
                 "Re-run the tests of a --save-baseline FILE (its models unless -m is given, its -p/-n/-d/-t/-r) and "
                 "compare row by row: slower by more than --regression-threshold and 2 standard deviations is a "
                 "regression (exit 7)")
      ->type_name("FILE");
  sub.add_option("--regression-threshold", f->threshold_pct, "With --baseline: the slowdown, in percent, a regression must pass")
      ->check(CLI::Range(0.0, 100.0))
      ->type_name("PCT");
  sub.footer("Rows are printed as each test finishes; Ctrl-C or --timeout keeps the finished ones.\n\n"
             "Examples:\n  bitnet bench -m model.gguf -p 512 -n 128 -t 1,2 -o json\n"
             "  bitnet bench -m a.gguf,b.gguf -p 128,512 -n 0 -pg 512,128\n"
             "  bitnet bench -m model.gguf -t 2 --reference llama.cpp\n"
             "  bitnet bench -m model.gguf -p 512 -n 128 -d 0,4096\n"
             "  bitnet bench -m synthetic:2b4t -p 0 -n 0 --kernels -t 2\n"
             "  bitnet bench -m model.gguf -t 2 --save-baseline base.json   (later: bitnet bench --baseline base.json)");
  const CLI::Option* model_opt = sub.get_option("-m");
  const CLI::Option* backend_opt = sub.get_option("--backend");
  return [f, model_opt, backend_opt](const Context& ctx) {
    static log::Logger& lg = log::get("bench");
    const diag::Provenance prov = diag::current_provenance(build::commit, build::dirty, build::build_type, build::compiler);
    if (std::string_view(build::build_type) != "Release")
      log::warn(lg, "this is a {} build, not Release: its speed says little about a Release build's",
                *build::build_type ? build::build_type : "untyped");
    std::optional<diag::BenchBaseline> baseline;
    if (!f->baseline.empty()) {
      for (const CLI::Option* opt : f->test_opts)
        // -t's count includes BITNET_THREADS, which the baseline's thread counts override.
        if (opt != nullptr && opt->count() > 0 && !(opt->get_name() == "--threads" && std::getenv("BITNET_THREADS")))
          throw make_error(ErrorCode::usage, "bench --baseline {}: {} comes from the baseline; leave it out",
                           f->baseline, opt->get_name());
      if (f->kernels || !f->reference.empty())
        throw make_error(ErrorCode::usage, "bench --baseline: not with --kernels or --reference");
      baseline = diag::parse_bench_baseline(read_text_file(f->baseline, "the bench baseline"), f->baseline);
      const std::vector<std::string> d = diag::provenance_differences(baseline->provenance, prov);
      if (!d.empty()) log::warn(lg, "the baseline {} was made on another machine or build: {}", f->baseline, join(d));
    }
    if (!f->save_baseline.empty()) check_output_path("--save-baseline", f->save_baseline);
    std::vector<diag::BenchTest> tests = baseline ? std::vector<diag::BenchTest>{} : bench_tests(*f);
    if (!baseline && tests.empty() && !f->kernels)
      throw make_error(ErrorCode::usage, "nothing to run: -p and -n are both 0 (give one, or --kernels)");
    if (!f->reference.empty() && !f->pg.empty())
      throw make_error(ErrorCode::usage, "bench --pg with --reference: the llama.cpp adapter runs pp and tg tests only");
    // With --baseline: the baseline's models in its order, unless -m names others to compare
    // (then the i-th model given stands for the baseline's i-th).
    std::vector<std::string> models;
    std::vector<std::string> base_models;
    if (baseline)
      for (const diag::BaselineRow& r : baseline->rows)
        if (std::find(base_models.begin(), base_models.end(), r.model) == base_models.end()) base_models.push_back(r.model);
    models = baseline && model_opt->count() == 0 ? base_models : model_list(f->engine.model);
    if (baseline && models.size() != base_models.size())
      throw make_error(ErrorCode::usage, "bench --baseline {}: it holds {} model{}, -m gives {}", f->baseline,
                       base_models.size(), base_models.size() == 1 ? "" : "s", models.size());
    install_interrupt_handler();
    diag::BenchOptions o;
    o.tests = tests;
    o.reps = baseline ? baseline->reps : f->reps;
    if (f->exact_logits || (baseline && baseline->exact_logits)) o.top_k = 0;
    // Before every timed step: Ctrl-C or --timeout stops the run there.
    const bool show_progress = ::isatty(STDERR_FILENO) != 0;
    auto clear_progress = [show_progress] {
      if (show_progress) std::fputs("\r\033[K", stderr);
    };
    o.progress = [show_progress](const std::string& what) {
      throw_if_cancelled();
      if (show_progress) std::fprintf(stderr, "\r\033[Kbench: %s", what.c_str());
    };
    ReportWriter out(f->output, f->reference.empty() ? "" : "llama.cpp", prov, baseline.has_value());
    diag::BenchBaseline saved;
    saved.provenance = prov;
    saved.reps = o.reps;
    saved.exact_logits = o.top_k == 0;
    std::vector<RowDelta> deltas;
    const diag::CompareRule rule{.threshold = f->threshold_pct / 100.0};
    try {
      for (size_t mi = 0; mi < models.size(); ++mi) {
        const std::string& model = models[mi];
        EngineFlags ef = f->engine;
        ef.model = model;
        // The baseline's rows of this model: its tests and thread counts in their order, its
        // kernel table (unless --backend) and KV cache type.
        std::vector<const diag::BaselineRow*> base_rows;
        if (baseline) {
          std::vector<int> threads;
          o.tests.clear();
          for (const diag::BaselineRow& r : baseline->rows) {
            if (r.model != base_models[mi]) continue;
            base_rows.push_back(&r);
            if (std::find(threads.begin(), threads.end(), r.n_threads) == threads.end()) threads.push_back(r.n_threads);
            const diag::BenchTest t{r.n_prompt, r.n_gen, r.n_depth};
            if (std::none_of(o.tests.begin(), o.tests.end(), [&](const diag::BenchTest& x) {
                  return x.n_prompt == t.n_prompt && x.n_gen == t.n_gen && x.n_depth == t.n_depth;
                }))
              o.tests.push_back(t);
          }
          ef.thread_list = join(threads, ",");
          ef.kv_type = base_rows.front()->kv_type;
          ef.cache_type_k.clear();
          ef.cache_type_v.clear();
          if (backend_opt == nullptr || backend_opt->count() == 0) ef.backend = base_rows.front()->kernel_table;
        }
        // The reference is checked before the model is resolved: a missing one fails at once (exit 4).
        std::optional<diag::ReferenceSpec> ref_spec;
        auto check_reference = [&](const Engine& e) {
          if (f->reference.empty()) return;
          try {
            ref_spec = diag::parse_reference(f->reference, ctx.llama_dir, e.threads);
          } catch (Error& err) {
            throw err.wrap(fmt::format("bitnet bench --reference {}", f->reference));
          }
          if (ref_spec->kind != diag::RefKind::llama_cpp)
            throw make_error(ErrorCode::usage, "bench --reference '{}': only llama.cpp[:DIR] can be benchmarked",
                             f->reference);
        };
        Engine e = resolve_engine(ctx, ef, {.model = true}, check_reference);
        const std::filesystem::path& path = e.model_path;
        o.threads = e.thread_counts;
        o.kernels = e.kernels;
        o.kv_type = e.kv_type;
        o.kernel_bench.tables.clear();
        // --kernels times every backend this CPU runs, or only the one --backend (BITNET_BACKEND) names.
        if (f->kernels && !f->engine.backend.empty()) o.kernel_bench.tables.push_back(e.kernels);
        if (f->kernels && f->engine.backend.empty())
          for (const kernels::Backend& b : kernels::registered_backends())
            if (b.supported()) o.kernel_bench.tables.push_back(&b.table());
        // Theirs: one repetition of the same test (after its own warm-ups) after each of ours.
        std::vector<double> their_seconds;
        if (ref_spec) {
          o.after_rep = [&](int threads, const diag::BenchTest& t, int) {
            diag::RefBenchRequest q;
            q.model = std::filesystem::absolute(path);
            q.n_prompt = t.n_prompt;
            q.n_gen = t.n_gen;
            q.n_depth = t.n_depth;
            q.reps = 1;
            q.threads = threads;
            // The same cache as ours; llama.cpp keeps a quantized V only with flash attention.
            q.kv_type = std::string(infer::kv_type_name(e.kv_type));
            if (e.kv_type == infer::KvType::q8_0) q.flash_attn = "on";
            q.cancel = &cancel_flag();
            throw_if_cancelled();
            const diag::RefBenchRun run = diag::run_reference_bench(*ref_spec, q, std::chrono::hours(1));
            const auto& s = t.n_prompt > 0 ? run.pp_seconds : run.tg_seconds;
            their_seconds.insert(their_seconds.end(), s.begin(), s.end());
          };
        }
        o.on_result = [&](const diag::BenchReport& model_info, const diag::BenchResult& x) {
          clear_progress();
          std::vector<double> ts;
          for (double sec : x.seconds) ts.push_back(static_cast<double>(int64_t{x.n_prompt} + x.n_gen) / sec);
          saved.rows.push_back({model, path.filename().string(), model_info.model_size, x.test, x.n_prompt, x.n_gen,
                                x.n_depth, x.n_threads, model_info.kernel_table, model_info.kv_type, ts});
          std::optional<RowDelta> delta;
          for (const diag::BaselineRow* b : base_rows)
            if (b->test == x.test && b->n_threads == x.n_threads) {
              if (b->kernel_table != model_info.kernel_table)
                log::warn(lg, "{} {}: kernel table {} (baseline {})", model, x.test, model_info.kernel_table,
                          b->kernel_table);
              delta = RowDelta{model, x.test, x.n_threads, diag::compare_samples(b->samples_ts, ts, rule)};
              deltas.push_back(*delta);
            }
          if (!ref_spec) return out.row(model_info, x, nullptr, delta ? &*delta : nullptr);
          diag::BenchResult y = x;
          y.seconds = std::exchange(their_seconds, {});
          y.roofline_ts = 0;
          diag::summarize(y, static_cast<double>(x.n_prompt) + x.n_gen);
          out.row(model_info, x, &y);
        };
        const diag::BenchReport r = diag::run_bench(path.string(), *e.model, o);
        throw_if_cancelled();  // cancelled during the last step
        clear_progress();
        out.kernels(r);
      }
    } catch (const Error& err) {
      clear_progress();
      out.close(false);
      throw;
    }
    out.close(true, f->baseline);
    if (!f->save_baseline.empty()) write_file_atomically(f->save_baseline, diag::bench_baseline_json(saved));
    if (!baseline) return 0;
    if (deltas.size() != baseline->rows.size())
      log::warn(lg, "{} of the baseline's {} rows had no row of this run to compare with",
                baseline->rows.size() - deltas.size(), baseline->rows.size());
    std::vector<std::string> slower;
    for (const RowDelta& d : deltas)
      if (d.c.regression)
        slower.push_back(fmt::format("{} {} ({} thread{}): {:.2f} t/s, {:.1f}% below the baseline's {:.2f} (noise {:.2f})",
                                     d.model, d.test, d.threads, d.threads == 1 ? "" : "s", d.c.new_mean,
                                     -100 * d.c.change, d.c.base_mean, d.c.noise));
    if (slower.empty()) return 0;
    Error err(ErrorCode::regression, slower.back());
    for (size_t i = slower.size() - 1; i-- > 0;) err.wrap(slower[i]);
    err.wrap(fmt::format("bench: {} of {} rows slower than the baseline {} (over {}% and 2 standard deviations)",
                         slower.size(), deltas.size(), f->baseline, f->threshold_pct));
    throw err;
  };
}

}  // namespace bitnet::app
