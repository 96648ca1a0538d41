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

// Each planned tag's limit for the next session: its plan plus what is held under it already.
void set_round_limits(MemoryPool& pool, const MemcheckReport& r, const MemcheckOptions& opt) {
  const TrackerSnapshot s = pool.tracker().snapshot();
  for (const MemcheckTag& t : r.tags) {
    if (t.planned == 0) continue;
    uint64_t held = 0;
    for (const TagStats& x : s.tags)
      if (x.tag == t.tag) held = x.current;
    pool.set_limit(t.tag, t.planned + held - (t.tag == opt.test_overflow_tag ? 1 : 0));
  }
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
    if (!opt.test_overflow_tag.empty() && tag_row(r, opt.test_overflow_tag).planned == 0)
      throw make_error(ErrorCode::usage, "memcheck --test-overflow '{}': not a planned tag", opt.test_overflow_tag);
    for (int32_t i = 0; i < opt.repeat; ++i) {
      if (i == 0 && !opt.test_leak_tag.empty()) test_leak = pool.allocate(opt.test_leak_tag, 4096);
      // Each session may hold its plan. Blocks no live session owns (left by an earlier round or
      // another component) are a leak, judged after teardown; they must not make the next
      // session overflow its plan.
      set_round_limits(pool, r, opt);
      try {
        r.rounds.push_back(run_round(*model, tok, pool, opt, so));
      } catch (Error& e) {
        // The pool's refusal is the only signal of a plan overflow; name it as such.
        if (e.code() == ErrorCode::failure && e.chain().back().find("over its plan") != std::string::npos)
          throw e.wrap(fmt::format("memcheck: plan overflow in round {}: the session took more than its plan "
                                   "(a wrong session plan, not a leak)", i + 1));
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

namespace bitnet::diag {

MemcheckBaseline memcheck_baseline(const MemcheckReport& r, const MemcheckOptions& opt, const Provenance& p) {
  MemcheckBaseline b;
  b.provenance = p;
  b.model_filename = std::filesystem::path(r.model_path).filename().string();
  b.model_file_size = r.model_file_size;
  b.prompt = opt.prompt;
  b.n_gen = opt.n_gen;
  b.repeat = opt.repeat;
  b.n_ctx = r.n_ctx;
  b.threads = r.threads;
  b.kv_type = r.kv_type;
  b.kernel_table = r.kernel_table;
  for (const MemcheckTag& t : r.tags) b.tags.push_back({t.tag, t.peak});
  b.tracked_peak = r.tracked_peak;
  b.rss_after_load = r.rss_loaded.rss;
  b.peak_rss = r.rss_end.peak_rss;
  b.rss_after_teardown = r.rss_teardown.rss;
  return b;
}

std::vector<std::string> workload_differences(const MemcheckBaseline& base, const MemcheckBaseline& now) {
  std::vector<std::string> out;
  auto differ = [&](std::string_view what, const auto& b, const auto& n) {
    if (!(b == n)) out.push_back(fmt::format("{} {} (baseline {})", what, n, b));
  };
  differ("model", base.model_filename, now.model_filename);
  differ("model size", base.model_file_size, now.model_file_size);
  differ("-p", fmt::format("'{}'", base.prompt), fmt::format("'{}'", now.prompt));
  differ("-n", base.n_gen, now.n_gen);
  differ("--repeat", base.repeat, now.repeat);
  differ("-c", base.n_ctx, now.n_ctx);
  differ("-t", base.threads, now.threads);
  differ("--kv-type", base.kv_type, now.kv_type);
  differ("kernel table", base.kernel_table, now.kernel_table);
  return out;
}

void compare_with_baseline(MemcheckReport& r, const MemcheckBaseline& base) {
  for (const MemcheckTag& t : r.tags) {
    uint64_t was = 0;
    for (const MemcheckBaselineTag& b : base.tags)
      if (b.tag == t.tag) was = b.peak;
    if (t.peak > was)
      r.regressions.push_back(fmt::format("{}: tracked peak {} bytes, {} more than the baseline's {}", t.tag, t.peak,
                                          t.peak - was, was));
  }
  if (r.tracked_peak > base.tracked_peak)
    r.regressions.push_back(fmt::format("pool total: tracked peak {} bytes, {} more than the baseline's {}",
                                        r.tracked_peak, r.tracked_peak - base.tracked_peak, base.tracked_peak));
  auto rss = [&](const char* what, uint64_t now, uint64_t was) {
    if (now <= was) return;
    const std::string line = fmt::format("{}: {} bytes, {} more than the baseline's {}", what, now, now - was, was);
    if (static_cast<double>(now - was) > kRssNoise * static_cast<double>(was)) r.regressions.push_back(line);
    else r.rss_growth.push_back(line);
  };
  rss("RSS after load", r.rss_loaded.rss, base.rss_after_load);
  rss("peak RSS", r.rss_end.peak_rss, base.peak_rss);
  rss("RSS after teardown", r.rss_teardown.rss, base.rss_after_teardown);
}

}  // namespace bitnet::diag
