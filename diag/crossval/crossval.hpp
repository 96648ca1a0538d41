// `bitnet crossval` without the printing: load the model, ask the reference about each prompt,
// follow its tokens with our engine, compare, and return the report (app/ prints it and picks the
// exit code). Errors of the model (invalid_input), of the reference (fixture, timeout, failure)
// are thrown as bitnet::Error; disagreement is a report that does not pass.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/kernels/kernels.hpp"
#include "diag/crossval/compare.hpp"
#include "diag/crossval/engine.hpp"
#include "diag/crossval/golden.hpp"
#include "diag/crossval/layers.hpp"
#include "diag/crossval/reference.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::diag {

// Flags that override the per-model-type defaults of default_thresholds().
struct ThresholdOverrides {
  std::optional<double> max_logit_diff, rel_logit_diff, max_kl, min_top1, tie;
};

struct CrossvalOptions {
  std::filesystem::path model;
  std::optional<ReferenceSpec> reference;  // none: only --record
  const kernels::KernelTable* kernels = nullptr;      // ours
  const kernels::KernelTable* ref_kernels = nullptr;  // backend:NAME, resolved by app/
  ThreadPool* pool = nullptr;
  infer::KvType kv_type = infer::KvType::f16;  // ours, and a backend:NAME reference's
  std::vector<std::string> prompts;        // may be empty for golden:FILE (its own prompt)
  std::optional<size_t> n_predict;         // default: the golden's length, else 32
  size_t top_k = 8;
  PromptBatch batch = PromptBatch::all;
  std::chrono::milliseconds timeout{300000};
  ThresholdOverrides overrides;
  std::optional<std::string> pre;          // byte-level BPE pre-tokenizer override
  bool record = false;                     // also run ours free-running, as goldens
  // --layers: the taps of one position of the first prompt, ours against a llama.cpp, backend:NAME
  // or float reference (crossval.cpp picks the step: this one, else the first mismatch, else the last).
  struct Layers {
    bool on = false;
    std::optional<size_t> step;
    std::vector<std::string> taps;  // only these names (empty: all)
    double tolerance = 1e-3;        // on each tap's relative L2 error
    infer::TapFault fault_ours, fault_ref;  // test-only damage
  } layers;
  // Checked between prompts and passed to reference programs: when set (Ctrl-C, --timeout) the
  // run stops with Error(interrupted).
  const std::atomic<bool>* cancel = nullptr;
};

struct MetadataField {
  std::string name;
  std::string ours, ref;  // "none" for an absent token
  bool ok() const { return ours == ref; }
};

struct CrossvalReport {
  std::string model;
  std::string reference;         // the REF as given ("" when only recording)
  std::string reference_engine;  // what the reference says it is
  std::string our_engine;
  std::string batch;             // "1" or "all"
  bool quantized = false;        // which default thresholds applied
  std::string kv_type = "f16";   // ours (and a backend:NAME reference's)
  Thresholds thresholds;
  bool metadata_checked = false; // false when the reference states no vocabulary facts
  std::vector<MetadataField> metadata;
  std::vector<PromptReport> prompts;
  std::vector<Golden> recorded;  // with CrossvalOptions::record, one per prompt
  std::optional<LayersReport> layers;  // with --layers
  TapCapture layer_ours, layer_ref;    // the compared rows, for --dump-taps
  double seconds = 0;

  bool metadata_ok() const;
  bool pass() const;             // metadata agrees and every prompt passes
};

CrossvalReport run_crossval(const CrossvalOptions& opt);

}  // namespace bitnet::diag
