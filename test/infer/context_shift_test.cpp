// Session::shift_context against its definition: dropping D from a cache of A + D + B leaves A's
// entries, then B's moved to follow A, each key as if computed at its new position. In a full
// model B's entries also carry what B read of D, so no fresh run has them; with the attention
// muted in every layer but one (muted_copy) every entry depends on its token and position alone,
// and the shifted session must give the logits of a fresh A + B for the next token. Checked for
// each layer, NORM and NEOX RoPE, GQA, F32, F16 and Q8_0 caches and several thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/gguf/writer.hpp"
#include "core/infer/generate.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"
#include "support/fixtures.hpp"
#include "support/scoped.hpp"

namespace bitnet::infer {
namespace {

// max |a - b| over max |b|: logits of a random tiny model span a few units, so a relative bound
// says the same for every fixture.
double rel_diff(std::span<const float> a, std::span<const float> b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    m = std::max(m, std::fabs(static_cast<double>(b[i])));
  }
  return d / m;
}

// A copy of a fixture whose attention output matrix is zero in every layer but `live`. A muted
// layer's attention adds nothing to the residual stream, so the hidden state reaching `live`
// depends on its token alone, and the keys and values cached there on the token and its
// position alone; the muted layers after it read other tokens but add nothing from them. The
// logits of a token therefore depend on the context only through layer `live`'s cache, where
// a correct shift of A + D + B leaves exactly the entries a fresh A + B computes (up to the
// rounding of the second rotation). Only F32/F16 weight files: their zero bytes are zeros and
// their products round no activations to integers, which a last-bit difference could flip.
std::filesystem::path muted_copy(const std::string& fixture, uint32_t live, const std::filesystem::path& dir) {
  const auto src = gguf::GgufFile::open(test::fixture_file(fixture));
  gguf::GgufWriter w;
  for (const auto& kv : src.kvs()) w.set_value(kv.key, kv.value);
  std::vector<std::vector<std::byte>> zeros;
  zeros.reserve(src.tensors().size());
  const std::string keep = "blk." + std::to_string(live) + ".";
  for (const auto& t : src.tensors()) {
    std::vector<int64_t> ne(t.dims().begin(), t.dims().end());
    const bool mute = t.name.ends_with(".attn_output.weight") && !t.name.starts_with(keep);
    if (mute) {
      EXPECT_TRUE(t.type == gguf::GgmlType::F32 || t.type == gguf::GgmlType::F16) << t.name;
      zeros.emplace_back(t.nbytes, std::byte{0});
      w.add_tensor(t.name, t.type, ne, zeros.back());
    } else {
      w.add_tensor(t.name, t.type, ne, src.tensor_data(t));
    }
  }
  const auto path = dir / (std::filesystem::path(fixture).stem().string() + "-live" + std::to_string(live) + ".gguf");
  // Written plainly: GgufWriter::write fsyncs, seconds per file on a busy disk.
  const std::vector<std::byte> bytes = w.to_bytes();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<TokenId> ids(uint32_t n_vocab, size_t n, uint32_t seed) {
  std::vector<TokenId> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<TokenId>((seed + i * 37 + i * i * 11) % (n_vocab - 3) + 3);
  return v;
}

std::vector<TokenId> cat(std::initializer_list<const std::vector<TokenId>*> parts) {
  std::vector<TokenId> out;
  for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

// This CPU's best kernel table: the shift is the same code on every table, and the reference
// table's scalar F16 products would make this file's many sessions slow.
const kernels::KernelTable& table() {
  static const kernels::KernelTable* best = [] {
    backends::register_all();
    return kernels::select_backend("").table;
  }();
  return *best;
}

// F32 cache: the only difference is the float rounding of the second rotation, ~1e-7 relative
// per key value; measured 2.7e-7 of the logits' range at most (0 for the F16-weight model, whose
// products round the activations to F16 first). F16 cache: each moved key is rounded to F16 a
// second time (up to half an F16 step, 2.4e-4 relative, per value), as llama.cpp's shift does;
// measured 1.3e-4 to 6.6e-4.
constexpr double kTolF32 = 1e-4;
constexpr double kTolF16 = 2e-3;
// Q8_0 cache (bitnet-tiny-f16 only: stories260K's heads of 8 are shorter than a block): each
// moved key is dequantized, rotated and quantized again, up to half a step of its block's scale
// (max / 127) per value; measured 8.9e-4 to 6.0e-3. D's presence moves the logits by 0.28 to 0.72.
constexpr double kTolQ8_0 = 2e-2;

struct Fixture {
  const char* file;
  const char* what;
};
// stories260K: llama, NORM RoPE, 8 query heads on 4 KV heads, 5 layers. bitnet-tiny-f16: bitnet,
// NEOX RoPE, 4 query heads on 2 KV heads, sub-norms, 4 layers.
constexpr Fixture kFixtures[] = {{"models/stories260K.gguf", "norm rope, GQA 8/4"},
                                 {"models/bitnet-tiny-f16.gguf", "neox rope, GQA 4/2"}};

TEST(ContextShift, ShiftedCacheEqualsAFreshSessionWithoutTheDroppedTokens) {
  test::TempDir dir;
  for (const Fixture& fx : kFixtures) {
    const auto full = model::Model::load(test::fixture_file(fx.file));
    const uint32_t n_layer = full->config().n_layer, n_vocab = full->config().n_vocab;
    ASSERT_LT(full->config().n_head_kv, full->config().n_head) << fx.file << ": the test wants GQA";
    const std::vector<TokenId> A = ids(n_vocab, 5, 1), D = ids(n_vocab, 7, 2), B = ids(n_vocab, 6, 3), x = {42};
    for (uint32_t live = 0; live < n_layer; ++live) {
      const auto model = model::Model::load(muted_copy(fx.file, live, dir.path()));
      const ResidentWeights weights(*model, table(), default_memory_pool());
      for (KvType kv : {KvType::f32, KvType::f16, KvType::q8_0}) {
        if (kv == KvType::q8_0 && full->config().head_dim() % kernels::kQK8_0 != 0) continue;
        const double tol = kv == KvType::f32 ? kTolF32 : kv == KvType::f16 ? kTolF16 : kTolQ8_0;
        const std::string where = std::string(fx.file) + " (" + fx.what + "), live layer " + std::to_string(live) +
                                  ", " + std::string(kv_type_name(kv)) + " cache";
        SessionOptions so;
        so.weights = &weights;  // one copy of the matrices for the model's 9 sessions
        so.kv_type = kv;
        so.n_ctx = 32;
        Session fresh(*model, table(), so);
        fresh.eval(cat({&A, &B, &x}));
        Session unshifted(*model, table(), so);
        unshifted.eval(cat({&A, &D, &B, &x}));
        // The comparison can fail: with D still in the context the logits move by 3e-3 to 0.7 of
        // their range (stories260K's layer 1 reads its context least), far past the F32 bound.
        EXPECT_GT(rel_diff(unshifted.logits(), fresh.logits()), 10 * (kv == KvType::q8_0 ? kTolQ8_0 : kTolF32)) << where;

        std::vector<float> first;
        for (int threads : {1, 3}) {
          std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
          so.pool = pool.get();
          // An F16 or Q8_0 key is rotated in a row of k_cur_ ([n_batch][n_embd_kv]), one per part:
          // with fewer rows than threads the parts must be capped.
          so.n_batch = threads == 3 && kv != KvType::f32 ? 2 : 512;
          Session s(*model, table(), so);
          s.eval(cat({&A, &D, &B}));
          s.shift_context(static_cast<uint32_t>(A.size()), static_cast<uint32_t>(D.size()));
          EXPECT_EQ(s.n_past(), A.size() + B.size()) << where;
          s.eval(x);
          EXPECT_LT(rel_diff(s.logits(), fresh.logits()), tol) << where << ", " << threads << " threads";
          // Results do not depend on the thread count.
          if (threads == 1) first = copy(s.logits());
          else EXPECT_EQ(copy(s.logits()), first) << where << ", " << threads << " threads";
        }
        so.pool = nullptr;
        so.n_batch = 512;
      }
    }
  }
}

// Dropping from the very start (n_keep 0), twice in a row, and a shift that moves nothing (the
// dropped tokens are the last ones) all still read as the fresh session without them.
TEST(ContextShift, RepeatedShiftsAndEdgeRangesMatchTheFreshSession) {
  test::TempDir dir;
  const auto model = model::Model::load(muted_copy("models/bitnet-tiny-f16.gguf", 2, dir.path()));
  const ResidentWeights weights(*model, table(), default_memory_pool());
  const uint32_t n_vocab = model->config().n_vocab;
  const std::vector<TokenId> A = ids(n_vocab, 4, 5), D1 = ids(n_vocab, 3, 6), B = ids(n_vocab, 5, 7),
                             D2 = ids(n_vocab, 6, 8), C = ids(n_vocab, 2, 9), x = {17};
  SessionOptions so;
  so.weights = &weights;
  so.kv_type = KvType::f32;
  so.n_ctx = 32;
  {
    // A D1 B, drop D1; then A B D2 C, drop D2: A B C x.
    Session s(*model, table(), so);
    s.eval(cat({&A, &D1, &B}));
    s.shift_context(4, 3);
    s.eval(cat({&D2, &C}));
    s.shift_context(9, 6);
    s.eval(x);
    Session fresh(*model, table(), so);
    fresh.eval(cat({&A, &B, &C, &x}));
    EXPECT_LT(rel_diff(s.logits(), fresh.logits()), kTolF32);
  }
  {
    // n_keep 0: D1 B, drop D1: B x.
    Session s(*model, table(), so);
    s.eval(cat({&D1, &B}));
    s.shift_context(0, 3);
    s.eval(x);
    Session fresh(*model, table(), so);
    fresh.eval(cat({&B, &x}));
    EXPECT_LT(rel_diff(s.logits(), fresh.logits()), kTolF32);
  }
  {
    // Dropping the tail moves no key: A B D2, drop D2: A B x, the same bits as the fresh run.
    Session s(*model, table(), so);
    s.eval(cat({&A, &B, &D2}));
    s.shift_context(9, 6);
    s.eval(x);
    Session fresh(*model, table(), so);
    fresh.eval(cat({&A, &B, &x}));
    EXPECT_EQ(copy(s.logits()), copy(fresh.logits()));
  }
}

// Bad ranges are invalid input (never an assert) and change nothing; dropping none is a no-op.
TEST(ContextShift, RangesPastTheContextAreInvalidInput) {
  const auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  SessionOptions so;
  so.n_ctx = 16;
  Session s(*model, table(), so);
  const std::vector<TokenId> five = {1, 20, 30, 40, 50};
  s.eval(five);
  const std::vector<float> before = copy(s.logits());
  for (auto [keep, discard] : {std::pair<uint32_t, uint32_t>{3, 3}, {6, 0}, {0, 6}, {4294967295u, 1}}) {
    try {
      s.shift_context(keep, discard);
      ADD_FAILURE() << keep << ", " << discard << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input);
      EXPECT_NE(std::string(e.what()).find("which holds 5"), std::string::npos) << e.what();
    }
    EXPECT_EQ(s.n_past(), 5u);
  }
  s.shift_context(5, 0);
  s.shift_context(2, 0);
  EXPECT_EQ(s.n_past(), 5u);
  EXPECT_EQ(copy(s.logits()), before) << "a shift leaves the last logits";
  // The session goes on after a no-op exactly as one that never shifted.
  const std::vector<TokenId> next = {60};
  s.eval(next);
  Session plain(*model, table(), so);
  plain.eval(five);
  plain.eval(next);
  EXPECT_EQ(copy(s.logits()), copy(plain.logits()));
}

// make_room, llama-cli's rule: nothing while the new tokens fit or shifting is off; else keep
// n_keep (at most what is there) and drop half of the rest, or what the new tokens need when
// that is more; nothing when even dropping all of the rest would not do.
TEST(ContextShift, MakeRoomDropsHalfAfterTheKeptTokensOrWhatIsNeeded) {
  const auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  SessionOptions so;
  so.n_ctx = 16;
  Session s(*model, table(), so);
  s.eval(ids(model->config().n_vocab, 16, 4));
  GenerateOptions opt;
  opt.n_keep = 2;
  auto room = [&](size_t n_new) {
    const ShiftResult r = make_room(s, n_new, opt);
    return std::vector<uint32_t>{r.kept, r.dropped, s.n_past()};
  };
  EXPECT_EQ(room(1), (std::vector<uint32_t>{0, 0, 16})) << "shifting is off";
  opt.context_shift = true;
  EXPECT_EQ(room(1), (std::vector<uint32_t>{2, 7, 9}));     // (16 - 2) / 2
  EXPECT_EQ(room(7), (std::vector<uint32_t>{0, 0, 9}));     // 9 + 7 fit in 16
  EXPECT_EQ(room(12), (std::vector<uint32_t>{2, 5, 4}));    // half is 3, 9 + 12 - 16 = 5 needed
  EXPECT_EQ(room(15), (std::vector<uint32_t>{0, 0, 4}));    // 3 needed, 2 after the kept ones
  opt.n_keep = 100;
  EXPECT_EQ(room(13), (std::vector<uint32_t>{0, 0, 4}));    // all 4 kept: nothing to drop
  opt.n_keep = 0;
  EXPECT_EQ(room(13), (std::vector<uint32_t>{0, 2, 2}));
}

}  // namespace
}  // namespace bitnet::infer
