// The forward pass's taps (core/infer/taps.hpp): every layer's names in order with their widths
// and positions, no effect on the logits when observed, and a planted fault exactly where it is
// asked for.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/model/model.hpp"
#include "support/fixtures.hpp"

namespace bitnet::infer {
namespace {

struct Seen {
  std::string name;
  int32_t layer;
  uint32_t pos0;
  int64_t n_tokens, width;
  std::vector<float> values;
};

std::vector<float> run(const model::Model& m, const std::vector<TokenId>& prompt, TapObserver obs, TapFault fault = {},
                       ThreadPool* pool = nullptr) {
  SessionOptions so;
  so.fault = std::move(fault);
  so.pool = pool;
  Session s(m, *kernels::select_backend("").table, so);
  s.set_tap_observer(std::move(obs));
  s.eval(std::span<const TokenId>(prompt).first(prompt.size() - 1));
  s.eval(std::span<const TokenId>(prompt).last(1));  // a decode step too
  const auto l = s.logits();
  return {l.begin(), l.end()};
}

TapObserver record(std::vector<Seen>& out) {
  return [&out](const Tap& t) {
    Seen s{std::string(t.name), t.layer, t.pos0, t.n_tokens, t.width, {}};
    for (int64_t i = 0; i < t.n_tokens; ++i) s.values.insert(s.values.end(), t.row(i).begin(), t.row(i).end());
    out.push_back(std::move(s));
  };
}

TEST(Taps, EveryLayersNamesInOrderWithWidthsAndPositions) {
  backends::register_all();
  for (const char* name : {"stories260K", "bitnet-tiny-f16"}) {
    const auto m = model::Model::load(test::fixture_file(std::string("models/") + name + ".gguf"));
    const model::ModelConfig& c = m->config();
    std::vector<Seen> seen;
    run(*m, {1, 20, 30, 40, 50}, record(seen));
    std::vector<std::string> want;
    for (uint32_t l = 0; l < c.n_layer; ++l)
      for (auto n : kLayerTaps)
        if (c.sub_norms || (n != "attn_sub_norm" && n != "ffn_sub_norm")) want.push_back(std::to_string(l) + std::string(n));
    for (auto n : kFinalTaps) want.push_back("-1" + std::string(n));
    // The prompt of 4 as one batch, then one token; logits only at the end of each eval.
    ASSERT_EQ(seen.size(), 2 * want.size()) << name;
    for (size_t i = 0; i < seen.size(); ++i) {
      const Seen& s = seen[i];
      EXPECT_EQ(std::to_string(s.layer) + s.name, want[i % want.size()]) << name << " tap " << i;
      const bool batch = i < want.size();
      const bool last_only = s.layer < 0;  // result taps: the last token of the eval
      EXPECT_EQ(s.n_tokens, batch && !last_only ? 4 : 1) << s.name;
      EXPECT_EQ(s.pos0, batch ? (last_only ? 3u : 0u) : 4u) << s.name;
      const int64_t width = s.name == "Qcur" || s.name == "kqv_out" || s.name == "attn_sub_norm" ? c.n_head * c.head_dim()
                            : s.name == "Kcur" || s.name == "Vcur"                                ? c.n_embd_kv()
                            : s.name.starts_with("ffn_g") || s.name == "ffn_up" || s.name == "ffn_sub_norm" ? c.n_ff
                            : s.name == "result_output"                                           ? c.n_vocab
                                                                                                   : c.n_embd;
      EXPECT_EQ(s.width, width) << s.name;
    }
  }
}

TEST(Taps, ObservingChangesNoLogitAndTheLogitsTapIsTheLogits) {
  backends::register_all();
  ThreadPool pool(2);
  for (const char* name : {"stories260K", "bitnet-tiny-f16", "bitnet-tiny-tq2_0", "bitnet-b158-tiny-i2_s"}) {
    const auto m = model::Model::load(test::fixture_file(std::string("models/") + name + ".gguf"));
    const std::vector<TokenId> prompt{1, 7, 99, 200, 311, 5};
    const std::vector<float> plain = run(*m, prompt, {}, {}, &pool);
    std::vector<Seen> seen;
    const std::vector<float> observed = run(*m, prompt, record(seen), {}, &pool);
    ASSERT_EQ(plain.size(), observed.size());
    EXPECT_EQ(0, std::memcmp(plain.data(), observed.data(), plain.size() * sizeof(float))) << name;
    ASSERT_EQ(seen.back().name, "result_output");
    EXPECT_EQ(seen.back().values, observed) << name;
  }
}

TEST(Taps, AFaultLandsOnItsTapAndSpreads) {
  backends::register_all();
  const auto m = model::Model::load(test::fixture_file("models/bitnet-tiny-f16.gguf"));
  const std::vector<TokenId> prompt{1, 7, 99, 200};
  std::vector<Seen> clean, hurt;
  const std::vector<float> a = run(*m, prompt, record(clean));
  const std::vector<float> b = run(*m, prompt, record(hurt), TapFault{"ffn_gate", 1, 0.5f});
  ASSERT_EQ(clean.size(), hurt.size());
  size_t at = 0;
  while (at < clean.size() && !(clean[at].name == "ffn_gate" && clean[at].layer == 1)) {
    EXPECT_EQ(clean[at].values, hurt[at].values) << clean[at].layer << " " << clean[at].name;
    ++at;
  }
  ASSERT_LT(at, clean.size());
  for (int64_t t = 0; t < clean[at].n_tokens; ++t) {
    const size_t first = static_cast<size_t>(t * clean[at].width);
    EXPECT_NEAR(hurt[at].values[first] - clean[at].values[first], 0.5f, 1e-6f);
    for (size_t i = first + 1; i < first + static_cast<size_t>(clean[at].width); ++i)
      ASSERT_EQ(hurt[at].values[i], clean[at].values[i]);
  }
  EXPECT_EQ(clean[at + 1].name, "ffn_up");
  EXPECT_EQ(clean[at + 1].values, hurt[at + 1].values);  // from the same input as the gate: untouched
  EXPECT_NE(clean[at + 2].values, hurt[at + 2].values);  // the activation of the damaged gate
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace bitnet::infer
