// Baselines for bench and memcheck: where a number came from (build and machine provenance), the
// bench baseline file (its tests and every repetition's tokens/s) and the noise-aware rule that
// calls a bench row a regression. Pure functions over plain structs; the app reads and writes files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::diag {

// Build and machine facts stamped on every bench row and baseline file. The build fields come from
// app/build_info.hpp (app fills them: diag may not include app/).
struct Provenance {
  std::string build_commit;
  bool build_dirty = false;
  std::string build_type;  // CMAKE_BUILD_TYPE
  std::string compiler;
  std::string cpu_info;    // CPU model (MachineInfo::cpu_model)
  std::string cpu_flags;   // "AVX2 FMA ..." (the flags the kernels care about that this CPU has)
  std::string thp;         // transparent huge pages: "always", "madvise", "never" or ""
  std::string date;        // UTC, ISO 8601, when the run started
};

// This machine's facts (CPU model and flags, THP) and the time now, with the build's as given.
Provenance current_provenance(std::string build_commit, bool build_dirty, std::string build_type, std::string compiler);

// "commit 1a2b3c4 (dirty), Release, GCC 12.2.0; CPU: ...; THP madvise; 2026-01-01T00:00:00Z".
std::string provenance_line(const Provenance& p);

// What differs between a baseline's provenance and this run's, one phrase each ("CPU 'A' (baseline
// 'B')"): the machine (CPU model, flags, THP) and the build (commit, dirty, type, compiler).
std::vector<std::string> provenance_differences(const Provenance& baseline, const Provenance& now);

// The rule. A row regressed when its mean tokens/s fell below the baseline's by more than both
// `threshold` (a fraction: 0.05 = 5%) of the baseline's mean and `sigmas` combined standard
// deviations, sigmas * sqrt(sd_base^2 + sd_new^2) (each the sample standard deviation of its
// run's repetitions; one repetition has sd 0). Both must hold: the threshold keeps tight but
// irrelevant shifts quiet, the noise term keeps a noisy machine's wobble quiet.
struct CompareRule {
  double threshold = 0.05;
  double sigmas = 2.0;
};

struct SampleComparison {
  double base_mean = 0, base_sd = 0;
  double new_mean = 0, new_sd = 0;
  double change = 0;  // new_mean / base_mean - 1 (negative: slower)
  double noise = 0;   // sigmas * sqrt(base_sd^2 + new_sd^2), in tokens/s
  bool regression = false;
};

// Mean and sample standard deviation of tokens/s samples.
void mean_sd(std::span<const double> samples, double& mean, double& sd);

SampleComparison compare_samples(std::span<const double> base_ts, std::span<const double> new_ts,
                                 const CompareRule& rule);

// One row of a bench baseline: the test's identity and its samples.
struct BaselineRow {
  std::string model;           // as given to -m (a path, fixture:NAME or synthetic:SHAPE)
  std::string model_filename;  // the resolved file's name (no directory)
  uint64_t model_size = 0;     // bytes of the file
  std::string test;            // "pp512", "tg128 @ d4096"
  int32_t n_prompt = 0, n_gen = 0, n_depth = 0;
  int n_threads = 0;
  std::string kernel_table;
  std::string kv_type;
  std::vector<double> samples_ts;  // one per repetition
};

struct BenchBaseline {
  Provenance provenance;
  int32_t reps = 0;
  bool exact_logits = false;
  std::vector<BaselineRow> rows;
};

constexpr std::string_view kBenchBaselineFormat = "bitnet-bench-baseline";

std::string bench_baseline_json(const BenchBaseline& b);

// Throws Error(invalid_input) "FILE: not a bench baseline: WHAT" naming the field or value at fault.
BenchBaseline parse_bench_baseline(std::string_view json, const std::string& file);

// memcheck's baseline: the workload that made the numbers, and the numbers compared exactly.
struct MemcheckBaselineTag {
  std::string tag;
  uint64_t peak = 0;  // tracked peak, bytes
};

struct MemcheckBaseline {
  Provenance provenance;
  // The workload; a run compared with the baseline must have the same.
  std::string model_filename;
  uint64_t model_file_size = 0;
  std::string prompt;
  int32_t n_gen = 0, repeat = 0;
  uint32_t n_ctx = 0;
  int threads = 0;
  std::string kv_type, kernel_table;
  // The numbers: any growth over them is a regression.
  std::vector<MemcheckBaselineTag> tags;
  uint64_t tracked_peak = 0;
  uint64_t rss_after_load = 0, peak_rss = 0, rss_after_teardown = 0;
};

constexpr std::string_view kMemcheckBaselineFormat = "bitnet-memcheck-baseline";

std::string memcheck_baseline_json(const MemcheckBaseline& b);
// Throws Error(invalid_input) "FILE: not a memcheck baseline: WHAT".
MemcheckBaseline parse_memcheck_baseline(std::string_view json, const std::string& file);

}  // namespace bitnet::diag
