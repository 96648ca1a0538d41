// The memcheck workload. The pool is memcheck's own, with every tag limited to the session plan,
// so a buffer the plan does not know about fails loudly instead of slipping through; the default
// pool and whatever else the process holds do not blur the counts.
#include "memcheck.hpp"

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "core/base/memory_pool.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/generate.hpp"
#include "core/model/model.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"

namespace bitnet::diag {
namespace {

ProcessMemory process_memory() { return read_process_memory().value_or(ProcessMemory{}); }

MemcheckTag& tag_row(MemcheckReport& r, const std::string& tag) {
  for (MemcheckTag& t : r.tags)
    if (t.tag == tag) return t;
  r.tags.push_back({});
  r.tags.back().tag = tag;
  return r.tags.back();
}

// One generate workload in a fresh session; the session is gone when this returns.
MemcheckRound run_round(const model::Model& m, const tokenizer::Tokenizer& tok, MemoryPool& pool,
                        const MemcheckOptions& opt, const infer::SessionOptions& so) {
  MemcheckRound round;
  const PoolCacheStats before = pool.cache_stats();
  pool.tracker().reset_peaks();
  {
    infer::Session session(m, *opt.kernels, so);
    const std::vector<TokenId> prompt = tok.encode_ids(opt.prompt, /*add_special=*/true, /*parse_special=*/true);
    if (prompt.empty())
      throw make_error(ErrorCode::usage, "memcheck: the prompt is empty and the model adds no BOS token; give one with -p");
    infer::GenerateOptions g;
    g.n_predict = opt.n_gen;
    g.ignore_eos = true;  // the same work every round
    g.sampling.temp = 0;
    infer::GenerateEvents ev;
    ev.piece = [&](TokenId id) { return tok.token_piece(id, false); };
    const std::vector<TokenId> eog = tok.eog_ids();
    const infer::GenerateResult res = infer::generate(session, prompt, eog, g, ev, opt.cancel);
    if (res.reason == infer::StopReason::interrupt) throw make_error(ErrorCode::interrupted, "memcheck: cancelled");
    round.n_prompt = res.n_prompt;
    round.n_gen = res.tokens.size();
  }
  const TrackerSnapshot s = pool.tracker().snapshot();
  const PoolCacheStats after = pool.cache_stats();
  round.tracked_peak = s.peak;
  round.held_after = s.current;
  round.pool_footprint = s.current + after.cached_bytes;
  round.system_allocs = after.system_allocs - before.system_allocs;
  round.reused = after.reused - before.reused;
  round.rss_after = process_memory().rss;
  return round;
}

void judge(MemcheckReport& r, const TrackerSnapshot& peak_tags, const MemcheckOptions& opt) {
  for (const MemcheckTag& t : r.tags)
    if (t.after_teardown > 0)
      r.leaks.push_back(fmt::format("{}: {} bytes in {} block{} still held after teardown", t.tag, t.after_teardown,
                                    t.live_blocks, t.live_blocks == 1 ? "" : "s"));
  for (size_t i = 1; i < r.rounds.size(); ++i) {
    const MemcheckRound &a = r.rounds[0], &b = r.rounds[i];
    if (b.held_after > a.held_after)
      r.growth.push_back(fmt::format("round {}: {} bytes held after the session, {} more than after round 1", i + 1,
                                     b.held_after, b.held_after - a.held_after));
    else if (b.pool_footprint > a.pool_footprint)
      r.growth.push_back(fmt::format("round {}: pool footprint {} bytes, {} more than after round 1", i + 1,
                                     b.pool_footprint, b.pool_footprint - a.pool_footprint));
  }
  if (opt.budget > 0 && r.tracked_peak > opt.budget) {
    // Name the tags that made the peak, the largest first.
    std::vector<TagStats> tags = peak_tags.tags;
    std::stable_sort(tags.begin(), tags.end(), [](const TagStats& x, const TagStats& y) { return x.at_peak > y.at_peak; });
    for (const TagStats& t : tags)
      if (t.at_peak > 0) r.over_budget.push_back(fmt::format("{}: {} bytes at the peak", t.tag, t.at_peak));
  }
}

}  // namespace

MemcheckReport run_memcheck(const std::filesystem::path& model_path, const MemcheckOptions& opt) {
  BITNET_CHECK(opt.kernels != nullptr);
  if (opt.repeat < 1) throw make_error(ErrorCode::usage, "memcheck: --repeat must be at least 1");
  if (opt.n_gen < 0) throw make_error(ErrorCode::usage, "memcheck: -n must not be negative");
  MemcheckReport r;
  r.model_path = model_path.string();
  r.kernel_table = std::string(opt.kernels->name);
  r.threads = opt.threads;
  r.peak_rss_since_load = reset_peak_rss();

  MemoryPool pool;  // declared before anything holding its blocks, so it is destroyed last
  PoolBuffer test_leak;
  TrackerSnapshot peak_tags;  // the round with the highest peak, for naming tags over budget
  {
    auto model = model::Model::load(model_path);
    const tokenizer::Tokenizer tok(tokenizer::read_vocab(model->file()));
    r.model_file_size = model->file().file_size();
    r.rss_loaded = process_memory();
    ThreadPool threads(opt.threads);
    infer::SessionOptions so;
    so.n_ctx = opt.n_ctx;
    so.pool = &threads;
    so.memory = &pool;
    so.kv_type = opt.kv_type;
    so.screen_output = true;  // as generate does unless --exact-logits: its int8 copy shows as a tag
    const infer::SessionMemoryPlan plan = infer::plan_session_memory(*model, so, opt.kernels);
    r.n_ctx = plan.n_ctx;
    r.n_batch = plan.n_batch;
    r.kv_type = infer::kv_type_name(so.kv_type);
    r.planned_total = plan.total();
    r.kv_cache_planned = plan.bytes(infer::kTagKvCache);
    r.output_screen_planned = plan.bytes(infer::kTagOutputScreen);
    for (const infer::PlannedBuffer& b : plan.buffers) tag_row(r, std::string(b.tag)).planned += b.bytes;
    for (const MemcheckTag& t : r.tags) pool.set_limit(t.tag, t.planned);

    for (int32_t i = 0; i < opt.repeat; ++i) {
      if (i == 0 && !opt.test_leak_tag.empty()) test_leak = pool.allocate(opt.test_leak_tag, 4096);
      try {
        r.rounds.push_back(run_round(*model, tok, pool, opt, so));
      } catch (Error& e) {
        throw e.wrap(fmt::format("memcheck: the workload of round {} failed", i + 1));
      }
      const TrackerSnapshot s = pool.tracker().snapshot();
      for (const TagStats& t : s.tags) {
        MemcheckTag& row = tag_row(r, t.tag);
        row.peak = std::max(row.peak, t.peak);
      }
      if (s.peak > r.tracked_peak) {
        r.tracked_peak = s.peak;
        peak_tags = s;
      }
    }
    r.model_mapping = read_file_mappings(model_path);
    r.rss_end = process_memory();
  }
  // Teardown: sessions, tokenizer, model and thread pool are gone; give kept blocks back too.
  pool.trim();
  r.model_unmapped = read_file_mappings(model_path).mapped == 0;
  r.rss_teardown = process_memory();
  for (const TagStats& t : pool.tracker().snapshot().tags) {
    MemcheckTag& row = tag_row(r, t.tag);
    row.allocs = t.allocs;
    row.after_teardown = t.current;
    row.live_blocks = t.live;
  }
  judge(r, peak_tags, opt);
  return r;
}

}  // namespace bitnet::diag
