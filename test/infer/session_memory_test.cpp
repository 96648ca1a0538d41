// Session buffers come from a memory pool: exactly the planned bytes per tag, nothing allocated
// per token, the default pool's tracker sees sessions built without one, and reused (not
// zeroed) blocks give the same logits as fresh ones.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/memory_pool.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"
#include "support/fixtures.hpp"

namespace bitnet::infer {
namespace {

const std::vector<TokenId> kPrompt = {1, 15, 200, 33, 7, 99, 4};

TEST(SessionMemory, TheDefaultPoolTracksSessionsBuiltWithoutOne) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  const MemoryTracker& t = default_memory_pool().tracker();
  const uint64_t before = t.tag(kTagKvCache).current;
  {
    Session s(*model, kernels::reference_table());
    EXPECT_EQ(t.tag(kTagKvCache).current - before, plan_session_memory(*model).bytes(kTagKvCache));
    EXPECT_GT(plan_session_memory(*model).bytes(kTagKvCache), 0u);
  }
  EXPECT_EQ(t.tag(kTagKvCache).current, before);
}

TEST(SessionMemory, ASessionTakesExactlyItsPlanAndNothingPerToken) {
  for (const char* file : {"models/stories260K.gguf", "models/bitnet-tiny-i2_s.gguf", "models/bitnet-tiny-tq2_0.gguf",
                           "models/bitnet-tiny-f16.gguf"}) {
    auto model = model::Model::load(test::fixture_file(file));
    for (KvType kv : {KvType::f16, KvType::f32}) {
      MemoryPool pool;
      SessionOptions so;
      so.memory = &pool;
      so.kv_type = kv;
      so.n_ctx = 64;
      so.n_batch = 4;
      const SessionMemoryPlan plan = plan_session_memory(*model, so);
      Session s(*model, kernels::reference_table(), so);
      const uint64_t allocs = pool.tracker().snapshot().allocs;
      s.eval(kPrompt);  // two batches of 4 and 3
      for (TokenId id : {5, 6, 7}) s.eval(std::span<const TokenId>(&id, 1));
      const TrackerSnapshot snap = pool.tracker().snapshot();
      EXPECT_EQ(snap.allocs, allocs) << file << ": no allocation after construction";
      for (std::string_view tag : {kTagKvCache, kTagActivations, kTagLogits, kTagScratch})
        EXPECT_EQ(snap.find(tag).peak, plan.bytes(tag)) << file << " " << tag;
      EXPECT_EQ(snap.peak, plan.total()) << file;
      if (std::string(file).find("stories") == std::string::npos) {
        EXPECT_GT(plan.bytes(kTagScratch), 0u) << file << ": quantized weights need a workspace";
      }
    }
  }
}

TEST(SessionMemory, AllLogitsPastThePlanIsAClearErrorInAPlannedPool) {
  auto model = model::Model::load(test::fixture_file("models/stories260K.gguf"));
  MemoryPool pool;
  SessionOptions so;
  so.memory = &pool;
  const SessionMemoryPlan plan = plan_session_memory(*model, so);
  for (std::string_view tag : {kTagKvCache, kTagActivations, kTagLogits, kTagScratch}) pool.set_limit(tag, plan.bytes(tag));
  Session s(*model, kernels::reference_table(), so);
  s.eval(kPrompt);  // last-token logits fit the plan
  try {
    s.eval(kPrompt, /*all_logits=*/true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::failure);
    EXPECT_NE(std::string(e.what()).find("'logits' asked for"), std::string::npos) << e.what();
  }
  // Without a plan the buffer simply grows.
  Session free_session(*model, kernels::reference_table());
  free_session.eval(kPrompt, /*all_logits=*/true);
  EXPECT_EQ(free_session.logits_at(kPrompt.size() - 1).size(), model->config().n_vocab);
}

TEST(SessionMemory, ReusedBlocksGiveTheSameLogitsAsFreshOnes) {
  auto model = model::Model::load(test::fixture_file("models/bitnet-tiny-i2_s.gguf"));
  MemoryPool pool;
  SessionOptions so;
  so.memory = &pool;
  so.n_ctx = 32;
  std::vector<float> first;
  {
    Session a(*model, kernels::reference_table(), so);
    a.eval(kPrompt);
    first.assign(a.logits().begin(), a.logits().end());
    const std::vector<TokenId> other = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    a.eval(other);  // leave different data behind in the blocks
  }
  const uint64_t system = pool.cache_stats().system_allocs;
  Session b(*model, kernels::reference_table(), so);
  EXPECT_EQ(pool.cache_stats().system_allocs, system) << "every block came back from the pool";
  b.eval(kPrompt);
  ASSERT_EQ(b.logits().size(), first.size());
  EXPECT_EQ(0, std::memcmp(b.logits().data(), first.data(), first.size() * sizeof(float)));
}

}  // namespace
}  // namespace bitnet::infer
