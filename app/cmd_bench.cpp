// `bitnet bench`: prompt-processing and generation speed of this engine (llama-bench's pp/tg
// tests), as a Markdown table (default), JSON or CSV with llama-bench's field names where
// they exist. --reference llama.cpp[:DIR] runs the same tests through llama.cpp (our adapter's
// bench mode), alternating repetitions with ours, and adds its rows and the ratio ours/theirs.
// Only the report goes to stdout.
#include <unistd.h>

#include <cstdio>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/build_info.hpp"
#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/signals.hpp"
#include "core/base/cpu_features.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/kernels/dispatch.hpp"
#include "diag/bench.hpp"
#include "diag/crossval/reference.hpp"

namespace bitnet::app {
namespace {

struct BenchFlags {
  EngineFlags engine;  // -m, -t (a list), --backend
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t reps = 5;
  std::string output = "md";
  std::string reference;
  bool kernels = false;
};

// The reference's rows, one per row of ours (same test and thread count), and its name.
struct RefRows {
  std::string name;  // "llama.cpp"
  std::vector<diag::BenchResult> rows;
};

double ratio(const diag::BenchResult& ours, const diag::BenchResult& theirs) {
  return theirs.avg_ts > 0 ? ours.avg_ts / theirs.avg_ts : 0.0;
}

std::string human_size(uint64_t b) {
  return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30))
                           : fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
}

std::string human_params(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.2f} K", static_cast<double>(n) / 1e3);
}

std::string markdown(const diag::BenchReport& r, const RefRows* ref) {
  std::string o;
  if (!r.results.empty()) o.append("| model | size | params | backend | threads | test | t/s |");
  if (!r.results.empty()) {
    o.append(ref ? " ratio |\n" : "\n");
    o.append("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    o.append(ref ? " ---: |\n" : "\n");
  }
  for (size_t i = 0; i < r.results.size(); ++i) {
    const auto& x = r.results[i];
    o.append(fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} |", r.model_type, human_size(r.model_size),
                         human_params(r.model_n_params), r.kernel_table, x.n_threads, x.test, x.avg_ts, x.stddev_ts));
    if (!ref) {
      o.append("\n");
      continue;
    }
    const auto& y = ref->rows[i];
    o.append(fmt::format(" {:.2f} |\n", ratio(x, y)));
    o.append(fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} | |\n", r.model_type, human_size(r.model_size),
                         human_params(r.model_n_params), ref->name, y.n_threads, y.test, y.avg_ts, y.stddev_ts));
  }
  if (ref) o.append(fmt::format("\nratio: t/s of ours / t/s of {} (repetitions alternated)\n", ref->name));
  for (const auto& x : r.results) {
    if (x.roofline_ts <= 0) continue;
    o.append(fmt::format("\ndecode roofline, {} thread{}: read bandwidth {:.1f} GB/s (over {:.1f} MB), {:.1f} MB "
                         "read per token -> at most {:.2f} t/s; {} ran at {:.0f}% of it\n",
                         x.n_threads, x.n_threads == 1 ? "" : "s", x.bandwidth_gbs,
                         static_cast<double>(x.bandwidth_probe_bytes) / 1e6,
                         static_cast<double>(x.bytes_per_token) / 1e6, x.roofline_ts, x.test,
                         100.0 * x.avg_ts / x.roofline_ts));
    if (x.huge_page_bytes && x.weights_bytes > 0) {
      // The weights stream from huge pages only where the kernel grants them (docs/memcheck.md).
      const uint64_t huge = std::min(*x.huge_page_bytes, x.weights_bytes);
      o.append(fmt::format("weights in 2 MiB pages: {:.1f} of {:.1f} MB{}\n", static_cast<double>(huge) / 1e6,
                           static_cast<double>(x.weights_bytes) / 1e6,
                           huge * 10 < x.weights_bytes * 9 ? " (transparent huge pages refused or off: decode reads 4 KiB "
                                                             "pages, about 15% slower; see debug-report)"
                                                           : ""));
    }
  }
  if (!r.kernels.empty()) {
    o.append(fmt::format("{}{} ({}, {} params)\n\n| kernel table |", o.empty() ? "" : "\n", r.model_type,
                         human_size(r.model_size), human_params(r.model_n_params)));
    o.append(" entry | tensors | type | rows x cols | tokens | threads | us/call | GOPS | GB/s |\n"
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (const auto& k : r.kernels)
      o.append(fmt::format("| {} | {} | {} | {} | {} x {} | {} | {} | {:.1f} | {} | {:.2f} |\n", k.backend, k.entry,
                           k.tensors, k.type, k.rows, k.cols, k.n_tokens, k.n_threads, k.best_seconds * 1e6,
                           k.gops > 0 ? fmt::format("{:.1f}", k.gops) : std::string("-"), k.gbs));
    o.append("\nus/call: fastest of the samples; a matmul entry's time includes quantizing its activations. "
             "GOPS: 2 x rows x cols x tokens per second; GB/s: weight bytes (a quantizer: its f32 input) per second.\n");
  }
  return o;
}

// llama-bench's per-sample fields: each sample in whole nanoseconds, their mean and sample
// standard deviation (computed from the printed integers, so a script that recomputes them from
// samples_ns gets the same numbers up to the final truncation), and each sample's tokens per second.
struct SampleStats {
  std::vector<uint64_t> ns;
  double avg_ns = 0, stddev_ns = 0;
  std::vector<double> ts;
};
SampleStats sample_stats(const std::vector<double>& seconds, int64_t tokens) {
  SampleStats s;
  if (seconds.empty()) return s;
  for (double x : seconds) {
    s.ns.push_back(static_cast<uint64_t>(x * 1e9));
    s.ts.push_back(x > 0 ? static_cast<double>(tokens) / x : 0.0);
  }
  for (uint64_t v : s.ns) s.avg_ns += static_cast<double>(v) / static_cast<double>(s.ns.size());
  double sq = 0;
  for (uint64_t v : s.ns) sq += (static_cast<double>(v) - s.avg_ns) * (static_cast<double>(v) - s.avg_ns);
  s.stddev_ns = s.ns.size() > 1 ? std::sqrt(sq / static_cast<double>(s.ns.size() - 1)) : 0.0;
  return s;
}

// `started`: when the run began, as every row's test_time (llama-bench stamps each test; ours run
// back to back in one invocation).
std::string json(const diag::BenchReport& r, const RefRows* ref, const std::string& started) {
  JsonWriter j;
  j.begin_array();
  for (size_t i = 0; i < r.results.size() * (ref ? 2 : 1); ++i) {
    const bool theirs = ref && i % 2 == 1;
    const size_t k = ref ? i / 2 : i;
    const auto& x = theirs ? ref->rows[k] : r.results[k];
    j.begin_object();
    j.key("model_filename").value(r.model_path).key("model_type").value(r.model_type);
    j.key("model_size").value(r.model_size).key("model_n_params").value(r.model_n_params);
    if (theirs) {
      j.key("backends").value(ref->name);
    } else {
      j.key("backends").value("CPU").key("kernel_table").value(r.kernel_table);
      if (ref) j.key("ratio").value(ratio(x, ref->rows[k]));
    }
    j.key("build_commit").value(build::commit).key("cpu_info").value(cpu_features().brand);
    j.key("n_threads").value(x.n_threads).key("n_prompt").value(x.n_prompt).key("n_gen").value(x.n_gen);
    j.key("test").value(x.test).key("test_time").value(started);
    const SampleStats st = sample_stats(x.seconds, x.n_prompt + x.n_gen);
    j.key("avg_ns").value(static_cast<uint64_t>(st.avg_ns)).key("stddev_ns").value(static_cast<uint64_t>(st.stddev_ns));
    j.key("samples_ns").begin_array();
    for (uint64_t v : st.ns) j.value(v);
    j.end_array();
    j.key("avg_ts").value(x.avg_ts).key("stddev_ts").value(x.stddev_ts);
    j.key("samples_ts").begin_array();
    for (double t : st.ts) j.value(t);
    j.end_array();
    if (!theirs && x.roofline_ts > 0) {
      j.key("bytes_per_token").value(x.bytes_per_token).key("bandwidth_gbs").value(x.bandwidth_gbs);
      j.key("bandwidth_probe_bytes").value(x.bandwidth_probe_bytes);
      j.key("roofline_ts").value(x.roofline_ts).key("roofline_pct").value(100.0 * x.avg_ts / x.roofline_ts);
      j.key("weights_bytes").value(x.weights_bytes);
      if (x.huge_page_bytes) j.key("huge_page_bytes").value(*x.huge_page_bytes);
    }
    j.end_object();
  }
  for (const auto& k : r.kernels) {
    j.begin_object();
    j.key("test").value("kernel").key("backends").value("CPU").key("kernel_table").value(k.backend);
    j.key("entry").value(k.entry).key("tensors").value(k.tensors).key("type").value(k.type);
    j.key("rows").value(k.rows).key("cols").value(k.cols).key("n_tokens").value(k.n_tokens);
    j.key("n_threads").value(k.n_threads);
    j.key("samples_ns").begin_array();
    for (double s : k.seconds) j.value(static_cast<uint64_t>(s * 1e9));
    j.end_array();
    j.key("best_ns").value(static_cast<uint64_t>(k.best_seconds * 1e9)).key("bytes").value(k.bytes);
    j.key("gops").value(k.gops).key("gbs").value(k.gbs);
    j.end_object();
  }
  j.end_array();
  return j.str() + "\n";
}

std::string csv(const diag::BenchReport& r, const RefRows* ref) {
  std::string o = "model_filename,model_type,model_size,model_n_params,backends,kernel_table,n_threads,n_prompt,n_gen,"
                  "test,avg_ts,stddev_ts,roofline_pct,entry,tensors,rows,cols,n_tokens,best_ns,gops,gbs";
  o.append(ref ? ",ratio\n" : "\n");
  auto row = [&](const diag::BenchResult& x, const std::string& backends, const std::string& table) {
    o.append(fmt::format("\"{}\",\"{}\",{},{},{},{},{},{},{},{},{:.6f},{:.6f},", r.model_path, r.model_type, r.model_size,
                         r.model_n_params, backends, table, x.n_threads, x.n_prompt, x.n_gen, x.test, x.avg_ts, x.stddev_ts));
    if (table.empty() || x.roofline_ts <= 0) {
      o.append(",,,,,,,,");
    } else {
      o.append(fmt::format("{:.2f},,,,,,,,", 100.0 * x.avg_ts / x.roofline_ts));
    }
  };
  for (size_t i = 0; i < r.results.size(); ++i) {
    row(r.results[i], "CPU", r.kernel_table);
    if (!ref) {
      o.append("\n");
      continue;
    }
    o.append(fmt::format(",{:.6f}\n", ratio(r.results[i], ref->rows[i])));
    row(ref->rows[i], ref->name, "");
    o.append(",\n");
  }
  for (const auto& k : r.kernels) {
    o.append(fmt::format("\"{}\",\"{}\",{},{},CPU,{},{},0,0,kernel,,,,{},\"{}\",{},{},{},{},{:.6f},{:.6f}", r.model_path,
                         r.model_type, r.model_size, r.model_n_params, k.backend, k.n_threads, k.entry, k.tensors, k.rows,
                         k.cols, k.n_tokens, static_cast<uint64_t>(k.best_seconds * 1e9), k.gops, k.gbs));
    o.append(ref ? ",\n" : "\n");
  }
  return o;
}

}  // namespace

RunFn setup_bench(CLI::App& sub) {
  auto f = std::make_shared<BenchFlags>();
  add_engine_flags(sub, f->engine, {.thread_list = true, .threads_help = "Thread counts, comma-separated (default: all cores)"});
  sub.add_option("-p,--n-prompt", f->n_prompt, "Prompt tokens of the pp test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub.add_option("-n,--n-gen", f->n_gen, "Generated tokens of the tg test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub.add_option("-r,--repetitions", f->reps, "Timed repetitions after one warm-up")->check(CLI::Range(1, 1000));
  CLI::Option* output =
      sub.add_option("-o,--output", f->output, "md (default), json or csv")->check(CLI::IsMember({"md", "json", "csv"}));
  sub.add_flag_callback("--json", [f] { f->output = "json"; }, "The same as -o json (every command's spelling)")
      ->excludes(output);
  sub.add_option("--reference", f->reference,
                 "Also run the tests through llama.cpp[:DIR] (DIR from BITNET_LLAMA_DIR), alternating repetitions, "
                 "and print the ratio ours/theirs");
  sub.add_flag("--kernels", f->kernels,
               "Also time each kernel-table entry at the model's shapes on every backend this CPU runs "
               "(only --backend's when given)");
  sub.footer("Examples:\n  bitnet bench -m model.gguf -p 512 -n 128 -t 1,2 -o json\n"
             "  bitnet bench -m model.gguf -t 2 --reference llama.cpp\n"
             "  bitnet bench -m synthetic:2b4t -p 0 -n 0 --kernels -t 2");
  return [f](const Context& ctx) {
    if (f->n_prompt == 0 && f->n_gen == 0 && !f->kernels)
      throw make_error(ErrorCode::usage, "nothing to run: -p and -n are both 0 (give one, or --kernels)");
    const std::string started = utc_now();
    const std::atomic<bool>& cancelled = install_interrupt_handler();
    diag::BenchOptions o;
    o.n_prompt = f->n_prompt;
    o.n_gen = f->n_gen;
    o.reps = f->reps;
    // Before every timed step: Ctrl-C or --timeout stops the run there (bench prints no partial table).
    const bool show_progress = ::isatty(STDERR_FILENO) != 0;
    o.progress = [show_progress](const std::string& what) {
      throw_if_cancelled();
      if (show_progress) std::fprintf(stderr, "\r\033[Kbench: %s", what.c_str());
    };
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
        throw make_error(ErrorCode::usage, "bench --reference '{}': only llama.cpp[:DIR] can be benchmarked", f->reference);
    };
    Engine e = resolve_engine(ctx, f->engine, {.model = true}, check_reference);
    const std::filesystem::path& path = e.model_path;
    o.threads = e.thread_counts;
    o.kernels = e.kernels;
    // --kernels times every backend this CPU runs, or only the one --backend (BITNET_BACKEND) names.
    if (f->kernels && !f->engine.backend.empty()) o.kernel_bench.tables.push_back(e.kernels);
    if (f->kernels && f->engine.backend.empty())
      for (const kernels::Backend& b : kernels::registered_backends())
        if (b.supported()) o.kernel_bench.tables.push_back(&b.table());
    // Theirs, one repetition (after its own warm-ups) after each of ours.
    std::map<int, diag::RefBenchRun> theirs;
    if (ref_spec) {
      o.after_rep = [&](int threads, int) {
        diag::RefBenchRequest q;
        q.model = std::filesystem::absolute(path);
        q.n_prompt = o.n_prompt;
        q.n_gen = o.n_gen;
        q.reps = 1;
        q.threads = threads;
        q.cancel = &cancelled;
        throw_if_cancelled();
        diag::RefBenchRun run = diag::run_reference_bench(*ref_spec, q, std::chrono::hours(1));
        auto& acc = theirs[threads];
        acc.pp_seconds.insert(acc.pp_seconds.end(), run.pp_seconds.begin(), run.pp_seconds.end());
        acc.tg_seconds.insert(acc.tg_seconds.end(), run.tg_seconds.begin(), run.tg_seconds.end());
      };
    }
    diag::BenchReport r = diag::run_bench(path.string(), *e.model, o);
    throw_if_cancelled();  // cancelled during the last step
    if (show_progress) std::fputs("\r\033[K", stderr);
    RefRows ref_rows;
    ref_rows.name = "llama.cpp";
    if (ref_spec) {
      for (const auto& x : r.results) {
        diag::BenchResult y = x;
        const bool pp = x.n_prompt > 0;
        y.seconds = pp ? theirs[x.n_threads].pp_seconds : theirs[x.n_threads].tg_seconds;
        diag::summarize(y, pp ? x.n_prompt : x.n_gen);
        ref_rows.rows.push_back(std::move(y));
      }
    }
    const RefRows* ref = ref_spec ? &ref_rows : nullptr;
    std::string out = f->output == "json" ? json(r, ref, started) : f->output == "csv" ? csv(r, ref) : markdown(r, ref);
    write_stdout(out);
    return 0;
  };
}

}  // namespace bitnet::app
