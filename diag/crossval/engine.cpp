// Our engine's side of crossval: one Session per prompt, sized for exactly the prompt and the steps.
#include "diag/crossval/engine.hpp"

#include <algorithm>

#include "core/base/error.hpp"
#include "core/infer/sampler.hpp"
#include "core/infer/session.hpp"

namespace bitnet::diag {
namespace {

bool is_float_type(gguf::GgmlType t) {
  return t == gguf::GgmlType::F32 || t == gguf::GgmlType::F16 || t == gguf::GgmlType::BF16;
}

// Runs the prompt, then n_steps steps: at each, observe(step, logits), then feed next(step).
template <typename Observe, typename Next>
void run_steps(const model::Model& model, const kernels::KernelTable& kernels, ThreadPool* pool, infer::KvType kv_type,
               const infer::ResidentWeights& weights, std::span<const TokenId> prompt, size_t n_steps, PromptBatch batch, Observe observe, Next next) {
  infer::SessionOptions so;
  so.pool = pool;
  so.kv_type = kv_type;
  so.weights = &weights;
  so.n_ctx = static_cast<uint32_t>(prompt.size() + n_steps + 1);
  // One forward pass for the whole prompt, as llama.cpp's adapter feeds it.
  so.n_batch = static_cast<uint32_t>(std::max<size_t>(512, prompt.size()));
  infer::Session s(model, kernels, so);
  if (batch == PromptBatch::all) {
    s.eval(prompt);
  } else {
    for (const TokenId& id : prompt) s.eval(std::span<const TokenId>(&id, 1));
  }
  for (size_t step = 0; step < n_steps; ++step) {
    observe(step, s.logits());
    if (step + 1 < n_steps) {
      const TokenId id = next(step);
      s.eval(std::span<const TokenId>(&id, 1));
    }
  }
}

}  // namespace

Engine::Engine(const model::Model& model, const tokenizer::Tokenizer& tok, const kernels::KernelTable& kernels,
               ThreadPool* pool, infer::KvType kv_type)
    : model_(model), tok_(tok), kernels_(kernels), pool_(pool), kv_type_(kv_type) {}

Engine::~Engine() = default;

const infer::ResidentWeights& Engine::weights() const {
  if (!weights_) weights_ = std::make_unique<infer::ResidentWeights>(model_, kernels_, default_memory_pool(), pool_);
  return *weights_;
}

std::vector<TokenId> Engine::tokenize(std::string_view text) const {
  return tok_.encode_ids(text, /*add_special=*/true, /*parse_special=*/true);
}

std::string Engine::piece(TokenId id) const {
  if (id < 0 || static_cast<uint32_t>(id) >= tok_.n_tokens()) return "";
  return tok_.token_piece(id, true);
}

std::string Engine::text(std::span<const TokenId> ids) const {
  std::vector<TokenId> in;
  for (TokenId id : ids)
    if (id >= 0 && static_cast<uint32_t>(id) < tok_.n_tokens()) in.push_back(id);
  // Drop BOS ourselves: the decoder then also drops SPM's added leading space, as for user text.
  const auto& bos = tok_.vocab().bos;
  if (!in.empty() && bos && in.front() == *bos) in.erase(in.begin());
  return tok_.decode(in);
}

VocabFacts Engine::vocab_facts() const {
  const tokenizer::Vocab& v = tok_.vocab();
  auto id = [](const std::optional<TokenId>& t) { return t ? std::optional<int64_t>(*t) : std::nullopt; };
  VocabFacts f;
  f.n_tokens = model_.config().n_vocab;
  f.bos = id(v.bos);
  f.eos = id(v.eos);
  f.eot = id(v.eot);
  f.add_bos = v.add_bos;
  return f;
}

std::string Engine::name() const { return "bitnet (" + std::string(kernels_.name) + " kernels)"; }

Golden Engine::generate(const std::vector<TokenId>& prompt_ids, const std::optional<std::string>& prompt,
                        size_t n_predict, size_t k, PromptBatch batch) const {
  Golden g;
  g.engine = name();
  g.prompt = prompt;
  g.vocab = vocab_facts();
  g.prompt_ids = prompt_ids;
  if (g.prompt_ids.empty())
    throw make_error(ErrorCode::usage, "the prompt is empty and the model adds no BOS token");
  run_steps(
      model_, kernels_, pool_, kv_type_, weights(), g.prompt_ids, n_predict, batch,
      [&](size_t, std::span<const float> logits) {
        GoldenStep s;
        s.top = top_k(logits, k);
        s.id = s.top.front().id;
        s.piece = piece(s.id);
        g.steps.push_back(std::move(s));
      },
      [&](size_t step) { return g.steps[step].id; });
  return g;
}

std::vector<OurStep> Engine::follow(const Golden& ref, size_t k, PromptBatch batch) const {
  const uint32_t n_vocab = model_.config().n_vocab;
  auto check = [&](TokenId id, std::string_view where) {
    if (id < 0 || static_cast<uint32_t>(id) >= n_vocab)
      throw make_error(ErrorCode::invalid_input, "the reference's {} holds token {}, outside this model's vocabulary of {}",
                       where, id, n_vocab);
  };
  for (TokenId id : ref.prompt_ids) check(id, "prompt");
  for (const GoldenStep& s : ref.steps) {
    check(s.id, "continuation");
    for (const TopEntry& t : s.top) check(t.id, "top-k");
  }
  std::vector<OurStep> out;
  run_steps(
      model_, kernels_, pool_, kv_type_, weights(), ref.prompt_ids, ref.steps.size(), batch,
      [&](size_t step, std::span<const float> logits) {
        OurStep o;
        o.id = infer::argmax(logits);
        o.top = top_k(logits, k);
        for (const TopEntry& t : ref.steps[step].top) o.at_ref.push_back(logits[static_cast<size_t>(t.id)]);
        out.push_back(std::move(o));
      },
      [&](size_t step) { return ref.steps[step].id; });
  return out;
}

bool has_quantized_weights(const model::Model& model) {
  auto quantized = [](const kernels::WeightView& w) { return !is_float_type(w.type); };
  for (uint32_t i = 0; i < model.config().n_layer; ++i) {
    const model::LayerWeights& l = model.layer(i);
    for (const kernels::WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
      if (quantized(*w)) return true;
  }
  return quantized(model.output());
}

}  // namespace bitnet::diag
