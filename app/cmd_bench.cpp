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

// A baseline row's comparison, for the delta table and the verdict.
struct RowDelta {
  std::string model, test;
  int threads = 0;
  diag::SampleComparison c;
};

std::string csv_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o.append(c == '"' ? "\"\"" : std::string(1, c));
  return o + "\"";
}

constexpr int32_t kMaxTestTokens = 1 << 20;

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

// The report, written row by row as the tests finish (Markdown table, JSON array or CSV), so that
// Ctrl-C or --timeout keeps every finished row on standard output; close() writes what only the
// end can say (ratio legend, roofline notes, kernel tables) or, for an interrupted run, just
// closes the JSON array.
class ReportWriter {
 public:
  ReportWriter(std::string format, std::string ref_name, diag::Provenance prov, bool baseline)
      : format_(std::move(format)), ref_name_(std::move(ref_name)), prov_(std::move(prov)), baseline_(baseline) {
    csv_prov_ = fmt::format("{},{},{},{},{},{},{},", csv_quote(prov_.build_commit), prov_.build_dirty ? "true" : "false",
                            csv_quote(prov_.build_type), csv_quote(prov_.compiler), csv_quote(prov_.cpu_info),
                            csv_quote(prov_.cpu_flags), csv_quote(prov_.thp));
  }

  // delta: the row's comparison with --baseline (null: none, or no such row in the baseline).
  void row(const diag::BenchReport& model, const diag::BenchResult& x, const diag::BenchResult* theirs,
           const RowDelta* delta = nullptr) {
    std::string o;
    if (format_ == "md") {
      if (rows_ == 0) {
        // Provenance once, above the table: the same for every row of one run.
        o.append(fmt::format("build: {}\n\n", diag::provenance_line(prov_)));
        o.append("| model | size | params | backend | threads | test | t/s |");
        o.append(ref() ? " ratio |\n" : "\n");
        o.append("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
        o.append(ref() ? " ---: |\n" : "\n");
      }
      // A KV cache other than llama.cpp's default f16 is named with the table (llama-bench adds
      // type_k/type_v columns then).
      // The reference runs with the same cache type (bench asks llama.cpp for it).
      const std::string kv = model.kv_type == "f16" ? "" : ", kv " + model.kv_type;
      o.append(md_row(model, model.kernel_table + kv, x));
      o.append(theirs ? fmt::format(" {:.2f} |\n", ratio(x, *theirs)) : "\n");
      if (theirs) o.append(md_row(model, ref_name_ + kv, *theirs)).append(" |\n");
      if (x.roofline_ts > 0) notes_.append(roofline_note(x));
      if (delta) delta_md_.append(delta_md_row(*delta));
    } else if (format_ == "json") {
      o.append(json_row(model, x, theirs, false, delta));
      if (theirs) o.append(json_row(model, *theirs, &x, true));
    } else {
      if (rows_ == 0) o.append(csv_header());
      o.append(csv_row(model, x, "CPU", model.kernel_table)).append(theirs ? fmt::format(",{:.6f}", ratio(x, *theirs)) : "");
      o.append(csv_delta(delta)).append("\n");
      if (theirs) o.append(csv_row(model, *theirs, ref_name_, "")).append(",\n");
    }
    ++rows_;
    write_stdout(o);
  }

  void kernels(const diag::BenchReport& model) {
    if (model.kernels.empty()) return;
    if (format_ == "md") {
      kernel_md_.append(fmt::format("\n{} ({}, {} params)\n\n| kernel table |", model.model_type,
                                    human_size(model.model_size), human_params(model.model_n_params)));
      kernel_md_.append(" entry | tensors | type | rows x cols | tokens | threads | us/call | GOPS | GB/s |\n"
                        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
      for (const auto& k : model.kernels)
        kernel_md_.append(fmt::format("| {} | {} | {} | {} | {} x {} | {} | {} | {:.1f} | {} | {:.2f} |\n", k.backend,
                                      k.entry, k.tensors, k.type, k.rows, k.cols, k.n_tokens, k.n_threads,
                                      k.best_seconds * 1e6,
                                      k.gops > 0 ? fmt::format("{:.1f}", k.gops) : std::string("-"), k.gbs));
      return;
    }
    std::string o;
    if (format_ == "csv" && rows_ == 0) o.append(csv_header());
    for (const auto& k : model.kernels) {
      if (format_ == "json") {
        o.append(json_kernel(model, k));
      } else {
        o.append(fmt::format("\"{}\",\"{}\",{},{},{},CPU,{},{},0,0,0,kernel,,,,{},\"{}\",{},{},{},{},{:.6f},{:.6f}",
                             model.model_path, model.model_type, model.model_size, model.model_n_params, csv_prov_, k.backend,
                             k.n_threads, k.entry, k.tensors, k.rows, k.cols, k.n_tokens,
                             static_cast<uint64_t>(k.best_seconds * 1e9), k.gops, k.gbs));
        o.append(ref() ? "," : "").append(csv_delta(nullptr)).append("\n");
      }
      ++rows_;
    }
    write_stdout(o);
  }

  // complete: every test ran (false: interrupted, only the JSON array is closed).
  void close(bool complete, const std::string& baseline_file = "") {
    if (format_ == "json") {
      // An interrupted run closes the array it started; one that failed before its first row
      // printed nothing and adds nothing.
      if (json_elements_ > 0 || complete) write_stdout(json_elements_ == 0 ? "[]\n" : "\n]\n");
      return;
    }
    if (format_ != "md" || !complete) return;
    std::string o;
    if (ref() && rows_ > 0) o.append(fmt::format("\nratio: t/s of ours / t/s of {} (repetitions alternated)\n", ref_name_));
    o.append(notes_);
    if (baseline_)
      o.append(fmt::format("\nagainst the baseline {}:\n\n| model | threads | test | baseline t/s | t/s | change | "
                           "noise (2 sd) | verdict |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n{}",
                           baseline_file, delta_md_));
    if (!kernel_md_.empty()) o.append(rows_ == 0 ? kernel_md_.substr(1) : kernel_md_);
    if (!kernel_md_.empty())
      o.append("\nus/call: fastest of the samples; a matmul entry's time includes quantizing its activations. "
               "GOPS: 2 x rows x cols x tokens per second; GB/s: weight bytes (a quantizer: its f32 input) per second.\n");
    write_stdout(o);
  }

 private:
  bool ref() const { return !ref_name_.empty(); }

  static std::string delta_md_row(const RowDelta& d) {
    return fmt::format("| {} | {} | {} | {:.2f} ± {:.2f} | {:.2f} ± {:.2f} | {:+.1f}% | {:.2f} | {} |\n", d.model,
                       d.threads, d.test, d.c.base_mean, d.c.base_sd, d.c.new_mean, d.c.new_sd, 100 * d.c.change,
                       d.c.noise, d.c.regression ? "REGRESSION" : "ok");
  }

  std::string csv_delta(const RowDelta* d) const {
    if (!baseline_) return "";
    if (!d) return ",,,";
    return fmt::format(",{:.6f},{:.4f},{}", d->c.base_mean, 100 * d->c.change, d->c.regression ? "true" : "false");
  }

  static std::string md_row(const diag::BenchReport& m, const std::string& backend, const diag::BenchResult& x) {
    return fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} |", m.model_type, human_size(m.model_size),
                       human_params(m.model_n_params), backend, x.n_threads, x.test, x.avg_ts, x.stddev_ts);
  }

  static std::string roofline_note(const diag::BenchResult& x) {
    std::string o = fmt::format("\ndecode roofline, {} thread{}: read bandwidth {:.1f} GB/s (over {:.1f} MB), {:.1f} MB "
                                "read per token -> at most {:.2f} t/s; {} ran at {:.0f}% of it\n",
                                x.n_threads, x.n_threads == 1 ? "" : "s", x.bandwidth_gbs,
                                static_cast<double>(x.bandwidth_probe_bytes) / 1e6,
                                static_cast<double>(x.bytes_per_token) / 1e6, x.roofline_ts, x.test,
                                100.0 * x.avg_ts / x.roofline_ts);
    if (x.screen_bytes > 0)
      o.append(fmt::format("output screened for the 40 best logits: {:.0f} rows per step computed exactly, plus the "
                           "{:.1f} MB int8 copy (counted above instead of the whole matrix; --exact-logits: all)\n",
                           x.output_rows, static_cast<double>(x.screen_bytes) / 1e6));
    if (x.huge_page_bytes && x.weights_bytes > 0) {
      // The weights stream from huge pages only where the kernel grants them (docs/memcheck.md).
      const uint64_t huge = std::min(*x.huge_page_bytes, x.weights_bytes);
      o.append(fmt::format("weights in 2 MiB pages: {:.1f} of {:.1f} MB{}\n", static_cast<double>(huge) / 1e6,
                           static_cast<double>(x.weights_bytes) / 1e6,
                           huge * 10 < x.weights_bytes * 9 ? " (transparent huge pages refused or off: decode reads 4 KiB "
                                                             "pages, about 15% slower; see debug-report)"
                                                           : ""));
    }
    return o;
  }

  // One array element (with the separator before it). theirs: a reference row, `other` is ours;
  // otherwise `other` is the reference's row of the same test, if any.
  std::string json_row(const diag::BenchReport& m, const diag::BenchResult& x, const diag::BenchResult* other,
                       bool theirs, const RowDelta* delta = nullptr) {
    JsonWriter j;
    j.begin_object();
    j.key("model_filename").value(m.model_path).key("model_type").value(m.model_type);
    j.key("model_size").value(m.model_size).key("model_n_params").value(m.model_n_params);
    if (theirs) {
      j.key("backends").value(ref_name_);
      j.key("type_k").value(m.kv_type).key("type_v").value(m.kv_type);
    } else {
      j.key("backends").value("CPU").key("kernel_table").value(m.kernel_table);
      j.key("type_k").value(m.kv_type).key("type_v").value(m.kv_type);
      if (other) j.key("ratio").value(ratio(x, *other));
    }
    j.key("build_commit").value(build::commit).key("cpu_info").value(cpu_features().brand);
    j.key("build_dirty").value(prov_.build_dirty).key("build_type").value(prov_.build_type);
    j.key("compiler").value(prov_.compiler).key("cpu_flags").value(prov_.cpu_flags).key("thp").value(prov_.thp);
    j.key("n_threads").value(x.n_threads).key("n_prompt").value(x.n_prompt).key("n_gen").value(x.n_gen);
    j.key("n_depth").value(x.n_depth);
    j.key("test").value(x.test).key("test_time").value(utc_text(x.started));
    const SampleStats st = sample_stats(x.seconds, int64_t{x.n_prompt} + x.n_gen);
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
      if (x.screen_bytes > 0) j.key("output_rows").value(x.output_rows).key("screen_bytes").value(x.screen_bytes);
    }
    if (delta) {
      j.key("baseline_avg_ts").value(delta->c.base_mean).key("baseline_stddev_ts").value(delta->c.base_sd);
      j.key("delta_pct").value(100 * delta->c.change).key("noise_ts").value(delta->c.noise);
      j.key("regression").value(delta->c.regression);
    }
    j.end_object();
    return element(j.str());
  }

  std::string json_kernel(const diag::BenchReport& m, const diag::KernelBenchRow& k) {
    JsonWriter j;
    j.begin_object();
    j.key("model_filename").value(m.model_path);
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
    return element(j.str());
  }

  // An element of the streamed array: "[\n" before the first, ",\n" before the others.
  std::string element(const std::string& object) {
    std::string o = json_elements_ == 0 ? "[\n" : ",\n";
    ++json_elements_;
    return o.append(object);
  }

  std::string csv_header() const {
    std::string o = "model_filename,model_type,model_size,model_n_params,build_commit,build_dirty,build_type,compiler,"
                    "cpu_info,cpu_flags,thp,test_time,backends,kernel_table,n_threads,n_prompt,n_gen,"
                    "n_depth,test,avg_ts,stddev_ts,roofline_pct,entry,tensors,rows,cols,n_tokens,best_ns,gops,gbs";
    if (ref()) o.append(",ratio");
    return o.append(baseline_ ? ",baseline_avg_ts,delta_pct,regression\n" : "\n");
  }

  std::string csv_row(const diag::BenchReport& m, const diag::BenchResult& x, const std::string& backends,
                      const std::string& table) const {
    std::string o = fmt::format("\"{}\",\"{}\",{},{},{}{},{},{},{},{},{},{},{},{:.6f},{:.6f},", m.model_path, m.model_type,
                                m.model_size, m.model_n_params, csv_prov_, utc_text(x.started), backends, table,
                                x.n_threads, x.n_prompt, x.n_gen, x.n_depth, x.test, x.avg_ts, x.stddev_ts);
    if (table.empty() || x.roofline_ts <= 0) return o.append(",,,,,,,,");
    return o.append(fmt::format("{:.2f},,,,,,,,", 100.0 * x.avg_ts / x.roofline_ts));
  }

  std::string format_, ref_name_;
  diag::Provenance prov_;
  bool baseline_ = false;
  std::string csv_prov_;  // the provenance columns, test_time excepted
  size_t rows_ = 0, json_elements_ = 0;
  std::string notes_, kernel_md_, delta_md_;
};

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
