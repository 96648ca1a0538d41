// run_crossval: the data flow of DESIGN.md ("Data flow: bitnet crossval") for one model and a list
// of prompts. The reference runs first; ours then follows its tokens, so a tokenizer or an early
// greedy difference never hides how the logits compare further on.
#include "diag/crossval/crossval.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/model/model.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "diag/crossval/float_reference.hpp"

namespace bitnet::diag {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Thresholds apply(Thresholds t, const ThresholdOverrides& o) {
  if (o.max_logit_diff) t.max_logit_diff = *o.max_logit_diff;
  if (o.rel_logit_diff) t.rel_logit_diff = *o.rel_logit_diff;
  if (o.max_kl) t.max_kl = *o.max_kl;
  if (o.min_top1) t.min_top1 = *o.min_top1;
  if (o.tie) t.tie = *o.tie;
  return t;
}

std::string show(const std::optional<int64_t>& v) { return v ? fmt::to_string(*v) : "none"; }

std::vector<MetadataField> compare_vocab(const VocabFacts& ours, const VocabFacts& ref) {
  std::vector<MetadataField> out;
  auto add = [&](const char* name, const std::optional<int64_t>& a, const std::optional<int64_t>& b, bool stated) {
    if (stated) out.push_back({name, show(a), show(b)});
  };
  // A reference that states the vocabulary states every field; "none" there is a real answer.
  add("n_vocab", ours.n_tokens, ref.n_tokens, ref.n_tokens.has_value());
  add("bos", ours.bos, ref.bos, true);
  add("eos", ours.eos, ref.eos, true);
  add("eot", ours.eot, ref.eot, true);
  if (ref.add_bos) out.push_back({"add_bos", ours.add_bos.value_or(false) ? "true" : "false", *ref.add_bos ? "true" : "false"});
  return out;
}

// One reference answer for one prompt (text, or only the golden's ids when text is absent).
RefRun ask_reference(const CrossvalOptions& o, const model::Model& model, const Engine& ours, const Engine* ref_engine,
                     const std::optional<Golden>& golden, const std::optional<std::string>& prompt, size_t n_predict) {
  const ReferenceSpec& ref = *o.reference;
  if (ref.kind == RefKind::float_oracle) {
    const auto t0 = Clock::now();
    RefRun r;
    r.golden = oracle_generate(model, ours.tokenize(*prompt), prompt, n_predict, o.top_k, oracle_options(ref),
                               [&](TokenId id) { return ours.piece(id); }, o.cancel);
    r.seconds = since(t0);
    return r;
  }
  if (ref.kind == RefKind::golden) {
    RefRun r;
    r.golden = *golden;
    if (r.golden.steps.size() > n_predict) r.golden.steps.resize(n_predict);
    return r;
  }
  if (ref.kind == RefKind::backend) {
    const auto t0 = Clock::now();
    RefRun r;
    r.golden = ref_engine->generate(ref_engine->tokenize(*prompt), prompt, n_predict, o.top_k, o.batch);
    r.seconds = since(t0);
    return r;
  }
  RefRequest req;
  req.model = std::filesystem::absolute(o.model);
  req.prompt = *prompt;
  req.n_predict = n_predict;
  req.top_k = o.top_k;
  req.cancel = o.cancel;
  RefRun r = run_command_reference(ref, req, o.timeout);
  if (r.golden.steps.size() != n_predict)
    throw make_error(ErrorCode::failure, "reference '{}' answered {} steps where {} were asked for", ref.text,
                     r.golden.steps.size(), n_predict);
  return r;
}

// The reference's prompt ids decoded and tokenized again by our tokenizer, with the leading
// BOS as the reference has it (a golden may or may not start with one). A golden recorded with
// another model's vocabulary does not survive this; one recorded with ours does.
std::vector<TokenId> reread_ids(const Engine& ours, const std::vector<TokenId>& ref) {
  std::vector<TokenId> ids = ours.tokenize(ours.text(ref));
  const std::optional<int64_t> bos = ours.vocab_facts().bos;
  auto starts_with_bos = [&](const std::vector<TokenId>& v) { return bos && !v.empty() && v.front() == *bos; };
  if (starts_with_bos(ids) && !starts_with_bos(ref)) ids.erase(ids.begin());
  else if (!starts_with_bos(ids) && starts_with_bos(ref)) ids.insert(ids.begin(), ref.front());
  return ids;
}

// The sequence whose last position gives step `step`'s logits: the reference's prompt and its
// tokens before that step.
std::vector<TokenId> sequence_to(const Golden& g, size_t step) {
  std::vector<TokenId> seq = g.prompt_ids;
  for (size_t i = 0; i < step; ++i) seq.push_back(g.steps[i].id);
  return seq;
}

// One session's taps at the last position of seq, fed as the comparison fed it.
TapCapture session_taps(const model::Model& model, const kernels::KernelTable& kernels, const CrossvalOptions& o,
                        const std::vector<TokenId>& seq, const infer::TapFault& fault) {
  infer::SessionOptions so;
  so.n_ctx = static_cast<uint32_t>(seq.size());
  so.pool = o.pool;
  so.kv_type = o.kv_type;
  so.fault = fault;
  infer::Session s(model, kernels, so);
  TapCapture out;
  s.set_tap_observer(capture_position(out, static_cast<uint32_t>(seq.size() - 1), o.layers.taps));
  if (o.batch == PromptBatch::one) {
    for (TokenId id : seq) s.eval(std::span<const TokenId>(&id, 1));
  } else {
    s.eval(seq);
  }
  return out;
}

// --record --layers: our taps at one step (--step, else the last) of the recorded run.
void record_layers(const CrossvalOptions& o, const model::Model& model, Golden& g) {
  const size_t step = o.layers.step.value_or(g.steps.size() - 1);
  if (step >= g.steps.size())
    throw make_error(ErrorCode::usage, "--step {}: the run has steps 0 to {}", step, g.steps.size() - 1);
  g.layers = GoldenLayers{step, session_taps(model, *o.kernels, o, sequence_to(g, step), o.layers.fault_ours)};
}

// --layers for the first prompt: which step, then both sides' taps at its position, compared.
void compare_layers(const CrossvalOptions& o, const model::Model& model, const Golden& ref, const PromptReport& pr,
                    CrossvalReport& rep) {
  size_t step = pr.mismatches.empty() ? ref.steps.size() - 1 : pr.mismatches.front().step;
  if (o.reference->kind == RefKind::golden) {
    // A recorded golden answers for the one step it holds taps of.
    if (!ref.layers)
      throw make_error(ErrorCode::invalid_input, "{}: no taps recorded; record them with crossval --record FILE --layers",
                       o.reference->file.string());
    if (o.layers.step && *o.layers.step != ref.layers->step)
      throw make_error(ErrorCode::usage, "--step {}: {} holds the taps of step {} only", *o.layers.step,
                       o.reference->file.string(), ref.layers->step);
    if (ref.layers->step >= ref.steps.size())
      throw make_error(ErrorCode::usage, "-n {}: {} holds the taps of step {}; compare at least {} steps", ref.steps.size(),
                       o.reference->file.string(), ref.layers->step, ref.layers->step + 1);
    step = ref.layers->step;
  } else if (o.layers.step) {
    if (*o.layers.step >= ref.steps.size())
      throw make_error(ErrorCode::usage, "--step {}: the run has steps 0 to {}", *o.layers.step, ref.steps.size() - 1);
    step = *o.layers.step;
  }
  const std::vector<TokenId> seq = sequence_to(ref, step);
  const auto pos = static_cast<uint32_t>(seq.size() - 1);
  rep.layer_ours = session_taps(model, *o.kernels, o, seq, o.layers.fault_ours);
  if (o.reference->kind == RefKind::golden) {
    rep.layer_ref = ref.layers->taps;
    if (!o.layers.taps.empty())
      std::erase_if(rep.layer_ref, [&](const CapturedTap& t) {
        return std::find(o.layers.taps.begin(), o.layers.taps.end(), t.name) == o.layers.taps.end();
      });
  } else if (o.reference->kind == RefKind::backend) {
    rep.layer_ref = session_taps(model, *o.ref_kernels, o, seq, o.layers.fault_ref);
  } else if (o.reference->kind == RefKind::llama_cpp) {
    // Our cache type, and flash attention off: llama.cpp's CPU flash attention sums V in F16, which
    // would show as a divergence at every kqv_out (docs/perplexity.md).
    RefTapsRequest req{std::filesystem::absolute(o.model), seq, std::string(infer::kv_type_name(o.kv_type)), "off",
                       o.cancel};
    rep.layer_ref = run_reference_taps(*o.reference, req, o.timeout);
    if (!o.layers.taps.empty())
      std::erase_if(rep.layer_ref, [&](const CapturedTap& t) {
        return std::find(o.layers.taps.begin(), o.layers.taps.end(), t.name) == o.layers.taps.end();
      });
  } else {
    FloatOracleOptions fo = oracle_options(*o.reference);
    fo.taps = capture_position(rep.layer_ref, pos, o.layers.taps);
    fo.fault = o.layers.fault_ref;
    float_oracle_logits(model, seq, fo);
  }
  rep.layers = compare_taps(rep.layer_ours, rep.layer_ref, o.layers.tolerance);
  rep.layers->step = step;
  rep.layers->position = pos;
}

}  // namespace

bool CrossvalReport::metadata_ok() const {
  for (const MetadataField& f : metadata)
    if (!f.ok()) return false;
  return true;
}

bool CrossvalReport::pass() const {
  if (!metadata_ok()) return false;
  for (const PromptReport& p : prompts)
    if (!p.pass()) return false;
  return true;
}

CrossvalReport run_crossval(const CrossvalOptions& o) {
  static log::Logger& lg = log::get("crossval");
  BITNET_CHECK(o.kernels != nullptr);
  const auto t0 = Clock::now();
  auto model = model::Model::load(o.model);
  tokenizer::VocabLoadOptions vo;
  vo.pre = o.pre;
  const tokenizer::Tokenizer tok(tokenizer::read_vocab(model->file(), vo));
  const Engine ours(*model, tok, *o.kernels, o.pool, o.kv_type);

  CrossvalReport rep;
  rep.model = o.model.string();
  rep.our_engine = ours.name();
  rep.batch = o.batch == PromptBatch::one ? "1" : "all";
  // An 8-bit KV cache rounds every key and value as a quantized format rounds its activations:
  // its logits are held to the quantized formats' tolerances.
  rep.kv_type = std::string(infer::kv_type_name(o.kv_type));
  rep.quantized = has_quantized_weights(*model) || o.kv_type == infer::KvType::q8_0;
  rep.thresholds = apply(default_thresholds(rep.quantized), o.overrides);

  // llama.cpp keeps a Q8_0 V cache only with flash attention, whose attention output is laid out
  // otherwise: its kqv_out would not be the tensor ours is.
  if (o.layers.on && o.reference && o.reference->kind == RefKind::llama_cpp && o.kv_type == infer::KvType::q8_0)
    throw make_error(ErrorCode::usage, "--layers against llama.cpp with --kv-type q8_0: llama.cpp needs flash attention "
                                       "for that cache, and its attention tensors then differ in layout from ours; use "
                                       "--kv-type f16 or f32 for --layers");
  if (o.layers.on && o.reference && o.reference->kind == RefKind::command)
    throw make_error(ErrorCode::usage,
                     "--layers compares our taps with llama.cpp, another kernel table (backend:NAME), the float "
                     "oracle (float[:SCHEME]) or a golden recorded with --layers; '{}' gives logits only",
                     o.reference->text);

  std::optional<Engine> ref_engine;
  std::optional<Golden> golden;
  std::vector<std::optional<std::string>> prompts(o.prompts.begin(), o.prompts.end());
  if (o.reference) {
    rep.reference = o.reference->text;
    if (o.reference->kind == RefKind::golden) {
      golden = read_golden_file(o.reference->file);
      if (prompts.size() > 1)
        throw make_error(ErrorCode::usage, "a golden file answers one prompt; {} were given", prompts.size());
      if (prompts.empty()) prompts.push_back(golden->prompt);  // its own text, when it says
    } else if (o.reference->kind == RefKind::backend) {
      BITNET_CHECK(o.ref_kernels != nullptr);
      ref_engine.emplace(*model, tok, *o.ref_kernels, o.pool, o.kv_type);
    }
  }
  if (prompts.empty()) throw make_error(ErrorCode::usage, "no prompt: give -p TEXT or --prompts FILE");
  const size_t n_predict = o.n_predict.value_or(golden ? golden->steps.size() : 32);

  auto check_cancel = [&](size_t i) {
    if (o.cancel != nullptr && o.cancel->load())
      throw make_error(ErrorCode::interrupted, "crossval: cancelled at prompt {} of {}", i + 1, prompts.size());
  };
  for (size_t i = 0; i < prompts.size(); ++i) {
    check_cancel(i);
    const std::optional<std::string>& prompt = prompts[i];
    if (o.reference && o.reference->kind != RefKind::golden && !prompt)
      throw make_error(ErrorCode::usage, "reference '{}' needs prompt text", o.reference->text);
    std::vector<TokenId> our_ids = prompt ? ours.tokenize(*prompt) : golden->prompt_ids;
    if (o.record) {
      log::info(lg, "recording our run for prompt {}", i + 1);
      rep.recorded.push_back(ours.generate(our_ids, prompt, n_predict, o.top_k, o.batch));
      if (o.layers.on && i == 0) record_layers(o, *model, rep.recorded.back());
    }
    if (!o.reference) continue;

    log::info(lg, "prompt {}: asking {}", i + 1, o.reference->text);
    RefRun run = ask_reference(o, *model, ours, ref_engine ? &*ref_engine : nullptr, golden, prompt, n_predict);
    if (!run.golden.engine.empty()) rep.reference_engine = run.golden.engine;
    if (run.golden.vocab && !rep.metadata_checked) {
      rep.metadata_checked = true;
      rep.metadata = compare_vocab(ours.vocab_facts(), *run.golden.vocab);
    }
    PromptReport pr;
    pr.prompt = prompt.value_or("");
    pr.seconds_ref = run.seconds;
    pr.ref_stderr = run.err;
    pr.tokens.ref = run.golden.prompt_ids;
    if (prompt) {
      pr.tokens.checked = true;
      pr.tokens.ours = our_ids;
      pr.tokens.first_diff = first_difference(pr.tokens.ours, pr.tokens.ref);
    } else {
      pr.tokens.from_ids = true;
      pr.tokens.ours = reread_ids(ours, pr.tokens.ref);
      pr.tokens.first_diff = first_difference(pr.tokens.ours, pr.tokens.ref);
    }
    check_cancel(i);
    const auto t1 = Clock::now();
    const std::vector<OurStep> steps = ours.follow(run.golden, o.top_k, o.batch);
    pr.seconds_ours = since(t1);
    Naming naming;
    naming.piece = [&](TokenId id) { return ours.piece(id); };
    naming.text = [&](std::span<const TokenId> ids) { return ours.text(ids); };
    compare_steps(run.golden, steps, rep.thresholds, naming, pr);
    if (o.layers.on && i == 0) compare_layers(o, *model, run.golden, pr, rep);
    log::info(lg, "prompt {}: {}/{} greedy ids agree, max |logit diff| {:.4g}", i + 1, pr.n_match, pr.n_steps, pr.max_abs);
    rep.prompts.push_back(std::move(pr));
  }
  rep.seconds = since(t0);
  return rep;
}

}  // namespace bitnet::diag
