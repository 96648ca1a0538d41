// `bitnet crossval`: does this engine agree with a reference on this model? Flags -> CrossvalOptions,
// the report printed as a table (or --json), optionally JUnit XML and recorded goldens; exit 0 when
// it agrees, 5 when it does not (errors of the model or the reference keep their own codes).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/output_path.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "app/crossval_print.hpp"
#include "core/base/error.hpp"
#include "diag/crossval/crossval.hpp"

namespace bitnet::app {
namespace {

struct CrossvalFlags {
  EngineFlags engine;  // -m, -t, --backend, --pre
  std::string reference;
  std::vector<std::string> prompts;
  std::string prompts_file;
  int n_predict = -1;
  int top_k = 8;
  std::string prompt_batch = "all";
  double timeout = 300;
  int ref_threads = 1;
  // Threshold flags: the value, and the option to ask whether it was given (else the default).
  double max_logit_diff = 0, rel_logit_diff = 0, max_kl = 0, min_top1 = 0, tie = 0;
  CLI::Option *max_logit_diff_opt = nullptr, *rel_logit_diff_opt = nullptr, *max_kl_opt = nullptr, *min_top1_opt = nullptr,
              *tie_opt = nullptr;
  bool json = false;
  bool steps = false;
  std::string junit;
  std::string record;
  bool layers = false;
  size_t step = 0;
  CLI::Option* step_opt = nullptr;
  std::vector<std::string> taps;
  double tap_tol = 1e-3;
  std::string dump_taps;
  std::string test_fault, test_fault_ref;  // hidden: LAYER:NAME:DELTA
};

// "2:ffn_up:0.5" -> a planted fault of the forward pass (tests of --layers only).
infer::TapFault parse_fault(const std::string& flag, const std::string& s) {
  infer::TapFault f;
  if (s.empty()) return f;
  const size_t a = s.find(':'), b = s.rfind(':');
  try {
    if (a == std::string::npos || a == b) throw std::invalid_argument(s);
    f.layer = std::stoi(s.substr(0, a));
    f.name = s.substr(a + 1, b - a - 1);
    f.delta = std::stof(s.substr(b + 1));
  } catch (const std::exception&) {
    throw make_error(ErrorCode::usage, "{} '{}': expected LAYER:TAP:DELTA", flag, s);
  }
  return f;
}

// The tap names --tap may list.
void check_tap_names(const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    const bool known = std::find(infer::kLayerTaps.begin(), infer::kLayerTaps.end(), n) != infer::kLayerTaps.end() ||
                       std::find(infer::kFinalTaps.begin(), infer::kFinalTaps.end(), n) != infer::kFinalTaps.end();
    if (!known) {
      std::string all;
      for (auto x : infer::kLayerTaps) all += std::string(x) + ", ";
      throw make_error(ErrorCode::usage, "--tap {}: not a tap (taps: {}result_norm, result_output)", n, all);
    }
  }
}

// numpy's .npy (format 1.0): a little-endian f32 vector, so a tap opens with numpy.load.
std::string npy(const std::vector<float>& v) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", v.size());
  // Magic, version and length take 10 bytes; the header ends in a newline, padded to 64.
  header.append(63 - (10 + header.size()) % 64, ' ').push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return out;
}

// --dump-taps DIR: ours.layer03.ffn_gate.npy, ref.layer03.ffn_gate.npy, ours.result_norm.npy, ...
void dump_taps(const std::string& dir, const diag::CrossvalReport& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw make_error(ErrorCode::failure, "--dump-taps {}: cannot create it: {}", dir, ec.message());
  for (auto [side, taps] : {std::pair{"ours", &r.layer_ours}, std::pair{"ref", &r.layer_ref}})
    for (const diag::CapturedTap& t : *taps) {
      const std::string name = t.layer < 0 ? fmt::format("{}.{}.npy", side, t.name)
                                           : fmt::format("{}.layer{:02}.{}.npy", side, t.layer, t.name);
      write_file_atomically(std::filesystem::path(dir) / name, npy(t.values));
    }
}

std::vector<std::string> read_prompts(const std::string& path) {
  std::istringstream in(read_text_file(path, "the prompts file"));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) throw make_error(ErrorCode::invalid_input, "{}: no prompts (one per line)", path);
  return out;
}

// --record FILE with several prompts: FILE.p1.json, FILE.p2.json (the fixtures' naming).
std::string record_path(const std::string& path, size_t index, size_t count) {
  if (count == 1) return path;
  const std::filesystem::path p(path);
  return (p.parent_path() / fmt::format("{}.p{}{}", p.stem().string(), index + 1, p.extension().string())).string();
}

std::optional<double> given(const CLI::Option* opt, double v) { return opt->count() ? std::optional<double>(v) : std::nullopt; }

}  // namespace

RunFn setup_crossval(CLI::App& sub) {
  auto f = std::make_shared<CrossvalFlags>();
  add_engine_flags(sub, f->engine, {.pre = true, .kv = true, .threads_help = "Threads for our engine (default: all cores)"});
  sub.add_option("-r,--reference", f->reference,
                 "llama.cpp[:DIR] (default; DIR from BITNET_LLAMA_DIR), cmd:COMMAND, golden:FILE, backend:NAME or "
                 "float[:exact|q8_k|i8] (the float oracle: exact maths, or one activation scheme emulated)");
  sub.add_option("-p,--prompt", f->prompts, "A prompt (repeatable; default \"Once upon a time\")");
  sub.add_option("--prompts", f->prompts_file, "Read prompts from FILE, one per line");
  sub.add_option("-n,--n-predict", f->n_predict, "Steps to compare, 1 to 100000 (default: the golden's length, else 32)")
      ->check(CLI::Range(1, 100000));
  sub.add_option("--top-k", f->top_k, "Logits kept per step (default 8, as the goldens)")->check(CLI::Range(1, 1000));
  sub.add_option("--prompt-batch", f->prompt_batch, "Feed the prompt one token at a time (1, as bitnet.cpp) or at once (all)")
      ->check(CLI::IsMember({"1", "all"}));
  f->max_logit_diff_opt = sub.add_option("--max-logit-diff", f->max_logit_diff,
                                         "Max |ours - reference| over the reference's top-k, absolute part");
  f->rel_logit_diff_opt = sub.add_option("--rel-logit-diff", f->rel_logit_diff, "... plus this times |reference top-1 logit|");
  f->max_kl_opt = sub.add_option("--max-kl", f->max_kl, "Max KL divergence per step over the reference's top-k");
  f->min_top1_opt = sub.add_option("--min-top1", f->min_top1, "Min fraction of steps whose top-1 ids agree")
                        ->check(CLI::Range(0.0, 1.0));
  f->tie_opt = sub.add_option("--tie", f->tie, "Reference top-2 margin under which a greedy difference is a near-tie, not a failure");
  sub.add_option("--timeout", f->timeout, "Seconds a reference program may take per prompt (default 300)")->check(CLI::Range(0.1, 86400.0));
  sub.add_option("--ref-threads", f->ref_threads,
                 "Threads for the llama.cpp reference (default 1: its workers spin-wait, which on a busy machine can be "
                 "100x slower; results do not depend on it)")
      ->check(CLI::Range(1, 1024));
  sub.add_flag("--layers", f->layers,
               "Also compare every tap (named activation of every layer) of the first prompt at one step with the "
               "reference (llama.cpp, backend:NAME or float), and name the first one past --tap-tol");
  f->step_opt = sub.add_option("--step", f->step, "--layers: this step (default: the first mismatch, else the last)");
  sub.add_option("--tap", f->taps, "--layers: only these taps (attn_norm, Qcur, ..., l_out, result_norm, result_output)")
      ->delimiter(',');
  sub.add_option("--tap-tol", f->tap_tol, "--layers: tolerance on each tap's relative L2 error (default 1e-3)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--dump-taps", f->dump_taps, "--layers: write both sides' taps as numpy .npy files into DIR");
  sub.add_option("--test-fault", f->test_fault)->group("");
  sub.add_option("--test-fault-ref", f->test_fault_ref)->group("");
  sub.add_flag("--json", f->json, "Print the report as JSON instead of the table");
  sub.add_flag("--steps", f->steps, "Show every step in the table");
  sub.add_option("--junit", f->junit, "Also write JUnit XML here (one test case per prompt)");
  sub.add_option("--record", f->record, "Write our own greedy run in the golden format (FILE.pN.json for several prompts)");
  sub.footer("Thresholds default by model type: float weights ~1e-3 relative, quantized formats 0.15 absolute.\n"
             "Exit: 0 agree, 5 disagree, 4 reference not set up, 3 invalid model or golden, 124 reference timed out,\n"
             "1 reference failed.\n"
             "Examples:\n  bitnet crossval -m fixture:stories260K -p \"Once upon a time\" -n 64\n"
             "  bitnet crossval -m bitnet-tiny-i2_s.gguf --reference golden:bitnet-tiny-i2_s.bitnet.cpp.json --prompt-batch 1\n"
             "  bitnet crossval -m model.gguf --reference cmd:./my-engine --json --junit crossval.xml");
  return [f](const Context& ctx) {
    Engine e = resolve_engine(ctx, f->engine, {.pool = true});
    diag::CrossvalOptions o;
    o.model = e.model_path;
    o.overrides.max_logit_diff = given(f->max_logit_diff_opt, f->max_logit_diff);
    o.overrides.rel_logit_diff = given(f->rel_logit_diff_opt, f->rel_logit_diff);
    o.overrides.max_kl = given(f->max_kl_opt, f->max_kl);
    o.overrides.min_top1 = given(f->min_top1_opt, f->min_top1);
    o.overrides.tie = given(f->tie_opt, f->tie);
    o.pool = e.pool.get();
    o.cancel = &install_interrupt_handler();
    o.kernels = e.kernels;
    o.kv_type = e.kv_type;
    std::string ref = f->reference;
    if (ref.empty() && f->record.empty()) ref = "llama.cpp";
    if (!ref.empty()) {
      o.reference = diag::parse_reference(ref, ctx.llama_dir, f->ref_threads);
      if (o.reference->kind == diag::RefKind::backend) o.ref_kernels = &select_kernels(o.reference->backend);
    }
    o.prompts = f->prompts;
    if (!f->prompts_file.empty())
      for (std::string& p : read_prompts(f->prompts_file)) o.prompts.push_back(std::move(p));
    if (o.prompts.empty() && !(o.reference && o.reference->kind == diag::RefKind::golden))
      o.prompts.push_back("Once upon a time");
    if (f->n_predict >= 0) o.n_predict = static_cast<size_t>(f->n_predict);
    o.top_k = static_cast<size_t>(f->top_k);
    o.batch = f->prompt_batch == "1" ? diag::PromptBatch::one : diag::PromptBatch::all;
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(f->timeout * 1000));
    o.pre = e.pre;
    o.record = !f->record.empty();
    const bool layer_flags = f->step_opt->count() > 0 || !f->taps.empty() || !f->dump_taps.empty();
    if (layer_flags && !f->layers) throw make_error(ErrorCode::usage, "--step, --tap and --dump-taps go with --layers");
    check_tap_names(f->taps);
    o.layers.on = f->layers;
    if (f->step_opt->count() > 0) o.layers.step = f->step;
    o.layers.taps = f->taps;
    o.layers.tolerance = f->tap_tol;
    o.layers.fault_ours = parse_fault("--test-fault", f->test_fault);
    o.layers.fault_ref = parse_fault("--test-fault-ref", f->test_fault_ref);

    // Output paths first: a typo in a directory must not cost the whole run.
    if (!f->record.empty()) check_output_path("--record", f->record);
    if (!f->junit.empty()) check_output_path("--junit", f->junit);
    const diag::CrossvalReport r = diag::run_crossval(o);
    // The report before the files: if one cannot be written, the run's result is still shown.
    if (o.reference) write_stdout(f->json ? crossval_json(r) : crossval_table(r, f->steps));
    for (size_t i = 0; i < r.recorded.size(); ++i)
      write_file_atomically(record_path(f->record, i, r.recorded.size()), diag::write_golden(r.recorded[i]));
    if (!f->dump_taps.empty() && r.layers) dump_taps(f->dump_taps, r);
    if (!o.reference) return 0;
    if (!f->junit.empty()) write_file_atomically(f->junit, crossval_junit(r));
    return r.pass() ? 0 : static_cast<int>(ErrorCode::crossval_mismatch);
  };
}

}  // namespace bitnet::app
