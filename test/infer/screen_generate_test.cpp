// Output screening end to end: generate with a session that screens its output matrix
// (SessionOptions::screen_output) against one that computes every logit (exact_logits), on every
// fixture model and on synthetic models at several seeds, greedy and sampled (top-k 40 and 5,
// repeat penalties that lower and that raise logits), 1 to 3 threads: the same tokens each time.
// And Session::set_top_logits' contract on its own: the rows a sampler may raise are exact.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/generate.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/model/model.hpp"
#include "core/model/synthetic.hpp"
#include "support/fixtures.hpp"
#include "support/scoped.hpp"

namespace bitnet::infer {
namespace {

const kernels::KernelTable& table() {
  static const kernels::KernelTable* best = [] {
    backends::register_all();
    return kernels::select_backend("").table;
  }();
  return *best;
}

std::vector<TokenId> prompt_ids(uint32_t n_vocab) {
  std::vector<TokenId> p;
  for (uint32_t i = 0; i < 6; ++i) p.push_back(static_cast<TokenId>((i * 37 + 11) % n_vocab));
  return p;
}

struct Run {
  std::vector<TokenId> tokens;
  uint64_t exact_rows = 0;
  size_t evals = 0;
};

// screen: the model's shared screen (nullptr: every logit computed).
Run run(const model::Model& m, const ResidentWeights& w, ThreadPool* pool, const kernels::OutputScreen* screen,
        const SamplerOptions& s) {
  SessionOptions so;
  so.weights = &w;
  so.pool = pool;
  so.n_ctx = 64;
  so.screen = screen;
  Session session(m, table(), so);
  GenerateOptions g;
  g.n_predict = 16;
  g.ignore_eos = true;
  g.sampling = s;
  g.exact_logits = screen == nullptr;
  GenerateEvents ev;
  ev.piece = [](TokenId) { return std::string(); };
  const GenerateResult r = generate(session, prompt_ids(m.config().n_vocab), {}, g, ev);
  return {r.tokens, r.exact_output_rows, r.n_evals};
}

std::vector<SamplerOptions> samplings() {
  std::vector<SamplerOptions> out;
  SamplerOptions greedy;
  greedy.temp = 0;
  out.push_back(greedy);
  SamplerOptions s;
  s.seed = 1;
  out.push_back(s);  // top-k 40, top-p 0.95, min-p 0.05, temp 0.8
  s.seed = 2;
  s.top_k = 5;
  s.repeat_penalty = 0.5f;  // raises the recent tokens' logits
  out.push_back(s);
  s.seed = 3;
  s.top_k = 40;
  s.repeat_penalty = 1.3f;
  out.push_back(s);
  SamplerOptions greedy_raised = greedy;
  greedy_raised.repeat_penalty = 0.5f;
  out.push_back(greedy_raised);
  return out;
}

// Every sampling and thread count; returns the output rows computed per eval, screened runs only.
double check_model(const std::filesystem::path& file, const std::string& what) {
  const auto m = model::Model::load(file);
  const ResidentWeights w(*m, table(), default_memory_pool());
  // Built here for every output type it supports (the engine builds one only where it saves bytes).
  std::unique_ptr<kernels::OutputScreen> screen;
  if (kernels::OutputScreen::supports(table(), w.output()))
    screen = std::make_unique<kernels::OutputScreen>(table(), w.output(), default_memory_pool());
  uint64_t rows = 0, evals = 0;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (const SamplerOptions& s : samplings()) {
      const Run exact = run(*m, w, &pool, nullptr, s), screened = run(*m, w, &pool, screen.get(), s);
      EXPECT_EQ(screened.tokens, exact.tokens) << what << ", " << threads << " threads, seed " << s.seed << ", top-k "
                                               << s.top_k << ", temp " << s.temp << ", penalty " << s.repeat_penalty;
      EXPECT_EQ(exact.exact_rows, exact.evals * m->config().n_vocab) << what;
      rows += screened.exact_rows;
      evals += screened.evals;
    }
  }
  return static_cast<double>(rows) / static_cast<double>(evals);
}

TEST(ScreenGenerate, FixturesGiveTheSameTokens) {
  int screened = 0;
  for (const char* f : {"models/stories260K.gguf", "models/bitnet-tiny-f16.gguf", "models/bitnet-tiny-tq2_0-embf16.gguf",
                        "models/bitnet-b158-tiny-f16.gguf", "models/bitnet-b158-tiny-i2_s.gguf",
                        "models/bitnet-tiny-tq1_0.gguf"}) {
    const auto path = test::fixture_file(f);
    const uint32_t n_vocab = model::Model::load(path)->config().n_vocab;
    const double per_eval = check_model(path, f);
    if (per_eval < n_vocab) ++screened;
  }
  EXPECT_GE(screened, 3) << "too few fixtures had a screened output: the test would prove little";
}

TEST(ScreenGenerate, SyntheticSeedsGiveTheSameTokens) {
  test::TempDir dir;
  for (uint64_t seed : {1u, 2u, 3u}) {
    model::SyntheticSpec spec = model::parse_synthetic("synthetic:tiny:tq2_0:vocab=3000:seed=" + std::to_string(seed));
    const auto path = model::synthetic_model_path(spec, dir.path());
    const double per_eval = check_model(path, "synthetic seed " + std::to_string(seed));
    EXPECT_LT(per_eval, 3000.0 / 4) << "seed " << seed << ": the screen computed most rows";
  }
}

// A row the sampler may raise is computed even when it is far from the best: listed in
// set_top_logits' exact ids it equals the full product; left out it is screened to -infinity.
TEST(ScreenGenerate, RowsASamplerRaisesAreExact) {
  test::TempDir dir;
  const auto path = model::synthetic_model_path(model::parse_synthetic("synthetic:tiny:tq2_0:vocab=3000"), dir.path());
  const auto m = model::Model::load(path);
  const ResidentWeights w(*m, table(), default_memory_pool());
  const std::vector<TokenId> p = prompt_ids(3000);
  SessionOptions so;
  so.weights = &w;
  so.n_ctx = 16;
  Session full(*m, table(), so);
  full.eval(p);
  const std::vector<float> want(full.logits().begin(), full.logits().end());
  const auto worst = static_cast<TokenId>(std::min_element(want.begin(), want.end()) - want.begin());
  so.screen_output = true;
  Session s(*m, table(), so);
  ASSERT_TRUE(s.screens_output());
  s.set_top_logits(1);
  s.eval(p);
  EXPECT_TRUE(std::isinf(s.logits()[static_cast<size_t>(worst)])) << "the lowest logit was not screened out";
  EXPECT_LT(s.exact_output_rows(), 3000);
  s.reset();
  const TokenId raised[] = {worst};
  s.set_top_logits(1, raised);
  s.eval(p);
  const float got = s.logits()[static_cast<size_t>(worst)];
  EXPECT_EQ(std::memcmp(&got, &want[static_cast<size_t>(worst)], sizeof got), 0);
  const auto best = static_cast<size_t>(std::max_element(want.begin(), want.end()) - want.begin());
  EXPECT_EQ(std::memcmp(&s.logits()[best], &want[best], sizeof got), 0);
}

}  // namespace
}  // namespace bitnet::infer
