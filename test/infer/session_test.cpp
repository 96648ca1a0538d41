// Session behaviour: batching does not change results beyond float reassociation, limits and
// bad ids are clear errors, and load-time validation catches unusable models.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "backends/register.hpp"
#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/gguf/writer.hpp"
#include "core/infer/sampler.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"
#include "support/fixtures.hpp"
#include "support/golden.hpp"

namespace bitnet::infer {
namespace {

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The logits of `prompt` and then of each single-token step that `keep(step, n_past)` selects,
// for no pool and for pools of 2 and 3 threads (n_ctx 0: the session's default).
template <typename Keep>
std::vector<std::vector<float>> logits_per_thread_count(const model::Model& model, const kernels::KernelTable& k,
                                                        uint32_t n_ctx, const std::vector<TokenId>& prompt,
                                                        const std::vector<TokenId>& steps, Keep keep,
                                                        KvType kv = KvType::f16) {
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3}) {
    std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
    SessionOptions so;
    so.pool = pool.get();
    so.n_ctx = n_ctx;
    so.kv_type = kv;
    Session s(model, k, so);
    s.eval(prompt);
    std::vector<float> all(s.logits().begin(), s.logits().end());
    for (size_t i = 0; i < steps.size(); ++i) {
      s.eval(std::vector<TokenId>{steps[i]});
      if (keep(i, s.n_past())) all.insert(all.end(), s.logits().begin(), s.logits().end());
    }
    runs.push_back(std::move(all));
  }
  return runs;
}

// The same logits, bit for bit, with no pool and with pools of 2 and 3 threads: a prompt long
// enough for the prefill GEMMs, then single-token decodes (whose activation is split over the
// pool), on the reference table and on this CPU's best one.
TEST(Session, ResultsDoNotDependOnTheThreadCount) {
  backends::register_all();
  const kernels::KernelTable* best = kernels::select_backend("").table;
  for (const char* file : {"models/bitnet-tiny-tq2_0.gguf", "models/bitnet-tiny-i2_s.gguf", "models/stories260K.gguf"}) {
    auto model = model::Model::load(test::fixture_file(file));
    std::vector<TokenId> prompt(40);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 37 + 3) % model->config().n_vocab);
    for (const kernels::KernelTable* k : {&kernels::reference_table(), best}) {
      const auto runs = logits_per_thread_count(*model, *k, 0, prompt, {5, 17, 2}, [](size_t, uint32_t) { return true; });
      EXPECT_EQ(runs[0], runs[1]) << file << " " << k->name << ": 1 vs 2 threads";
      EXPECT_EQ(runs[0], runs[2]) << file << " " << k->name << ": 1 vs 3 threads";
    }
  }
}

// A decode step against a long cache splits its attention by key and channel range over the pool
// (Session::attention_one) instead of by KV head: the logits stay those of one thread, bit for
// bit, on both sides of the switch (Session::kSplitKeys) and for a pool of 3, whose key ranges
// do not fall on key blocks (nor, with a Q8_0 cache, its channel ranges on whole blocks).
TEST(Session, LongContextDecodeDoesNotDependOnTheThreadCount) {
  backends::register_all();
  const kernels::KernelTable* best = kernels::select_backend("").table;
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-tq2_0.gguf"));
  const uint32_t n_prompt = Session::kSplitKeys - 3, n_vocab = model->config().n_vocab;
  std::vector<TokenId> prompt(n_prompt), steps(140);  // keys from kSplitKeys - 2 to kSplitKeys + 137
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 53 + 7) % n_vocab);
  for (size_t i = 0; i < steps.size(); ++i) steps[i] = static_cast<int32_t>((i * 11 + 1) % n_vocab);
  // n_ctx past the model's 256: the test is about the cache, not the output.
  auto keep = [](size_t i, uint32_t n_past) { return i % 4 == 0 || n_past <= Session::kSplitKeys + 1; };
  for (KvType kv : {KvType::f16, KvType::q8_0}) {
    std::vector<float> first_table;
    for (const kernels::KernelTable* k : {&kernels::reference_table(), best}) {
      const auto runs = logits_per_thread_count(*model, *k, n_prompt + 200, prompt, steps, keep, kv);
      EXPECT_EQ(runs[0], runs[1]) << k->name << " " << kv_type_name(kv) << ": 1 vs 2 threads";
      EXPECT_EQ(runs[0], runs[2]) << k->name << " " << kv_type_name(kv) << ": 1 vs 3 threads";
      // And every table gives the reference's logits, with either cache.
      if (first_table.empty()) first_table = runs[0];
      else EXPECT_EQ(runs[0], first_table) << k->name << " " << kv_type_name(kv) << " vs the reference table";
    }
  }
}

// TQ1_0 weights are rewritten as TQ2_0 at load when the table has a TQ2_0 GEMM: the logits stay
// those of the reference table (which reads TQ1_0 as it is), bit for bit, and the copy is the
// planned "weights" buffer, 66 bytes per block instead of 54.
TEST(Session, Tq1RepackedAtLoadMatchesTheReference) {
  backends::register_all();
  const kernels::KernelTable* best = kernels::select_backend("").table;
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-tq1_0.gguf"));
  ASSERT_EQ(model->layer(0).wq.type, gguf::GgmlType::TQ1_0);
  const bool repacks = repacks_at_load(*best, model->layer(0).wq);
  EXPECT_EQ(repacks, best->gemm_tq2_0_q8_k != nullptr);
  EXPECT_FALSE(repacks_at_load(kernels::reference_table(), model->layer(0).wq));
  // The reference keeps TQ1_0: its copy is the file's bytes of every matrix plus the output.
  uint64_t file_bytes = 0;
  for (uint32_t l = 0; l < model->config().n_layer; ++l) {
    const model::LayerWeights& L = model->layer(l);
    for (const kernels::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
      file_bytes += pool_block_bytes(kernels::weight_bytes(*w));
  }
  file_bytes += pool_block_bytes(kernels::weight_bytes(model->output()));
  EXPECT_EQ(plan_session_memory(*model, {}, &kernels::reference_table()).bytes(kTagWeights), file_bytes);
  if (repacks) {
    EXPECT_GT(plan_session_memory(*model, {}, best).bytes(kTagWeights), file_bytes);
  }
  std::vector<TokenId> prompt(33);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 11 + 1) % model->config().n_vocab);
  ThreadPool pool(2);
  SessionOptions so;
  so.pool = &pool;
  Session fast(*model, *best, so), ref(*model, kernels::reference_table());
  fast.eval(prompt);
  ref.eval(prompt);
  EXPECT_EQ(std::vector<float>(fast.logits().begin(), fast.logits().end()),
            std::vector<float>(ref.logits().begin(), ref.logits().end()));
  for (int32_t t : {3, 9}) {
    fast.eval(std::vector<TokenId>{t});
    ref.eval(std::vector<TokenId>{t});
    EXPECT_EQ(std::vector<float>(fast.logits().begin(), fast.logits().end()),
              std::vector<float>(ref.logits().begin(), ref.logits().end()));
  }
}

TEST(Session, PromptBatchingMatchesTokenByToken) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/stories260K.llama.cpp.p1.json"));
  Session batched(*model, kernels::reference_table());
  batched.eval(g.prompt_ids, /*all_logits=*/true);
  Session single(*model, kernels::reference_table());
  for (size_t i = 0; i < g.prompt_ids.size(); ++i) {
    single.eval(std::span<const TokenId>(&g.prompt_ids[i], 1));
    // The same maths per token; only the F16 rounding points are shared, so results are equal.
    EXPECT_EQ(max_abs_diff(single.logits(), batched.logits_at(i)), 0.0f) << "token " << i;
  }
  EXPECT_EQ(batched.n_past(), g.prompt_ids.size());
}

// A session on a shared weight copy computes what a session with its own copy does, plans no
// weights block, and refuses a copy made for another kernel table.
TEST(Session, SharedWeightsGiveTheSameLogits) {
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-tq2_0.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/bitnet-tiny-tq2_0.llama.cpp.json"));
  Session own(*model, kernels::reference_table());
  own.eval(g.prompt_ids);
  ResidentWeights shared(*model, kernels::reference_table(), default_memory_pool());
  SessionOptions opt;
  opt.weights = &shared;
  EXPECT_EQ(plan_session_memory(*model, opt).bytes(kTagWeights), 0u);
  Session a(*model, kernels::reference_table(), opt);
  a.eval(g.prompt_ids);
  EXPECT_EQ(max_abs_diff(own.logits(), a.logits()), 0.0f);
  static const kernels::KernelTable other = [] {
    kernels::KernelTable t = kernels::reference_table();
    t.name = "other";
    return t;
  }();
  EXPECT_THROW(Session(*model, other, opt), Error);
}

TEST(Session, SmallBatchSizeGivesTheSameLogits) {
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-i2_s.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/bitnet-tiny-i2_s.bitnet.cpp.json"));
  Session whole(*model, kernels::reference_table());
  whole.eval(g.prompt_ids);
  SessionOptions opt;
  opt.n_batch = 3;  // 11 prompt tokens: batches of 3, 3, 3, 2
  Session chunked(*model, kernels::reference_table(), opt);
  chunked.eval(g.prompt_ids);
  EXPECT_EQ(max_abs_diff(whole.logits(), chunked.logits()), 0.0f);
}

TEST(Session, F32CacheStaysCloseToF16Cache) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/stories260K.llama.cpp.p1.json"));
  Session f16(*model, kernels::reference_table());
  SessionOptions opt;
  opt.kv_type = KvType::f32;
  Session f32(*model, kernels::reference_table(), opt);
  f16.eval(g.prompt_ids);
  f32.eval(g.prompt_ids);
  const float d = max_abs_diff(f16.logits(), f32.logits());
  EXPECT_GT(d, 0.0f) << "the two cache types must really differ";
  EXPECT_LT(d, 0.05f);
  EXPECT_EQ(argmax(f16.logits()), argmax(f32.logits()));
}

// A Q8_0 cache (llama.cpp's -ctk/-ctv q8_0) rounds every key and value to 8 bits: the logits move
// a little from the F16 cache's, the greedy tokens of a fixture stay.
TEST(Session, Q8CacheStaysCloseToF16Cache) {
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-f16.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/bitnet-tiny-f16.llama.cpp.json"));
  SessionOptions opt;
  Session f16(*model, kernels::reference_table(), opt);
  opt.kv_type = KvType::q8_0;
  Session q8(*model, kernels::reference_table(), opt);
  f16.eval(g.prompt_ids);
  q8.eval(g.prompt_ids);
  float worst = 0;
  for (size_t i = 0; i < g.steps.size(); ++i) {
    worst = std::max(worst, max_abs_diff(f16.logits(), q8.logits()));
    EXPECT_EQ(argmax(q8.logits()), argmax(f16.logits())) << "step " << i;
    const std::vector<TokenId> next = {argmax(f16.logits())};
    f16.eval(next);
    q8.eval(next);
  }
  EXPECT_GT(worst, 0.0f) << "the two cache types must really differ";
  EXPECT_LT(worst, 0.1f);
}

// Heads shorter than a Q8_0 block (stories260K's 8) cannot take a Q8_0 cache: a clear error.
TEST(Session, Q8CacheNeedsHeadsOfWholeBlocks) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  SessionOptions opt;
  opt.kv_type = KvType::q8_0;
  try {
    Session s(*model, kernels::reference_table(), opt);
    FAIL() << "a q8_0 cache was accepted for heads of 8";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is 8"), std::string::npos) << e.what();
  }
}

TEST(Session, ContextLimitIsAClearError) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  SessionOptions opt;
  opt.n_ctx = 4;
  Session s(*model, kernels::reference_table(), opt);
  std::vector<TokenId> ids = {1, 2, 3};
  s.eval(ids);
  try {
    s.eval(ids);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("context size 4"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.n_past(), 3u) << "a refused call changes nothing";
}

// rewind(k) keeps the first k positions: evaluating the same tokens after it gives, bit for bit,
// what a fresh session that evaluated the whole sequence gives (the positions past k are simply
// overwritten); rewinding past n_past() is invalid input and changes nothing.
TEST(Session, RewindThenEvalMatchesAFreshSession) {
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-tq2_0.gguf"));
  std::vector<TokenId> ids(24);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 53 + 7) % model->config().n_vocab);
  const std::span<const TokenId> all(ids);
  Session fresh(*model, kernels::reference_table());
  fresh.eval(all.first(16));
  fresh.eval(all.subspan(16, 4));
  const std::vector<float> want(fresh.logits().begin(), fresh.logits().end());
  fresh.eval(all.subspan(20, 1));
  const std::vector<float> want_next(fresh.logits().begin(), fresh.logits().end());

  Session s(*model, kernels::reference_table());
  s.eval(all.first(16));
  for (int round = 0; round < 2; ++round) {
    // Something else at 16.. first, so the rewound positions really held other keys and values.
    s.eval(round == 0 ? all.subspan(4, 8) : all.subspan(0, 2));
    s.rewind(16);
    EXPECT_EQ(s.n_past(), 16u);
    s.eval(all.subspan(16, 4));
    EXPECT_EQ(std::vector<float>(s.logits().begin(), s.logits().end()), want) << "round " << round;
    s.eval(all.subspan(20, 1));
    EXPECT_EQ(std::vector<float>(s.logits().begin(), s.logits().end()), want_next) << "round " << round;
  }
  try {
    s.rewind(22);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("holds only 21"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.n_past(), 21u) << "a refused rewind changes nothing";
  s.rewind(21);
  s.rewind(0);
  EXPECT_EQ(s.n_past(), 0u);
}

TEST(Session, TokenOutsideVocabularyIsRejected) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  Session s(*model, kernels::reference_table());
  std::vector<TokenId> ids = {1, 512};
  EXPECT_THROW(s.eval(ids), Error);
  ids = {-1};
  EXPECT_THROW(s.eval(ids), Error);
  EXPECT_EQ(s.n_past(), 0u);
}

TEST(ModelLoad, UnsupportedWeightTypeFailsAtLoadWithExit3) {
  // A copy of stories260K's metadata and tensors, but attn_q stored as Q5_0, a type inspect
  // knows but the engine cannot multiply.
  auto src = gguf::GgufFile::open(test::fixture_file("models/stories260K.gguf"));
  gguf::GgufWriter w;
  for (const auto& kv : src.kvs()) w.set_value(kv.key, kv.value);
  std::vector<std::byte> q5;
  for (const auto& t : src.tensors()) {
    if (t.name == "blk.0.attn_q.weight") {
      q5.assign(64 / 32 * 22 * 64, std::byte{0});
      w.add_tensor(t.name, gguf::GgmlType::Q5_0, {64, 64}, q5);
    } else {
      w.add_tensor(t.name, t.type, {t.dims().begin(), t.dims().end()}, src.tensor_data(t));
    }
  }
  auto path = std::filesystem::temp_directory_path() / ("bitnet-q5-" + std::to_string(::getpid()) + ".gguf");
  w.write(path);
  try {
    model::Model::load(path);
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Q5_0"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(ModelLoad, VocabOnlyFileIsNotAModel) {
  try {
    model::Model::load(test::fixture_file("vocab/ggml-vocab-llama-spm.gguf"));
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bitnet::infer

namespace bitnet::infer {
namespace {

// The same ternary weights as I2_S (per-token int8 activations) and TQ2_0 (Q8_K per 256) give
// close but not identical logits: only the activation quantization differs (SPEC.md 2.5, 1.5).
TEST(Formats, I2sAndTq2OfTheSameWeightsDifferOnlyByActivationRounding) {
  auto i2s = model::Model::load(test::fixture_file("models/bitnet-tiny-i2_s.gguf"));
  auto tq2 = model::Model::load(test::fixture_file("models/bitnet-tiny-tq2_0-embf16.gguf"));
  test::Golden g = test::read_golden(test::fixture_file("golden/bitnet-tiny-i2_s.bitnet.cpp.json"));
  Session a(*i2s, kernels::reference_table()), b(*tq2, kernels::reference_table());
  a.eval(g.prompt_ids);
  b.eval(g.prompt_ids);
  const float d = max_abs_diff(a.logits(), b.logits());
  EXPECT_GT(d, 0.0f);
  EXPECT_LT(d, 0.15f) << "int8 vs Q8_K activation rounding only";
  EXPECT_EQ(argmax(a.logits()), argmax(b.logits()));
}

}  // namespace
}  // namespace bitnet::infer
