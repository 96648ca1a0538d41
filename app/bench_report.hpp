// bench's report: the rows as a Markdown table, JSON array or CSV, written as the tests finish,
// with llama-bench's field names, the reference's rows and ratios, provenance and baseline deltas.
// Used by cmd_bench.cpp only; apart so that the command's file holds the flags and the run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "app/build_info.hpp"
#include "app/cli.hpp"
#include "core/base/cpu_features.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "diag/bench.hpp"
#include "diag/bench_compare.hpp"

namespace bitnet::app {

// A baseline row's comparison, for the delta table and the verdict.
struct RowDelta {
  std::string model, test;
  int threads = 0;
  diag::SampleComparison c;
};

inline std::string csv_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o.append(c == '"' ? "\"\"" : std::string(1, c));
  return o + "\"";
}

constexpr int32_t kMaxTestTokens = 1 << 20;

inline double ratio(const diag::BenchResult& ours, const diag::BenchResult& theirs) {
  return theirs.avg_ts > 0 ? ours.avg_ts / theirs.avg_ts : 0.0;
}

inline std::string human_size(uint64_t b) {
  return b >= (1ull << 30) ? fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30))
                           : fmt::format("{:.2f} MiB", static_cast<double>(b) / (1ull << 20));
}

inline std::string human_params(uint64_t n) {
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
inline SampleStats sample_stats(const std::vector<double>& seconds, int64_t tokens) {
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


}  // namespace bitnet::app
