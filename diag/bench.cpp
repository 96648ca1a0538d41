// Timed runs on fresh sessions. Token ids are a fixed pseudo-random sequence over the vocabulary
// (the content does not change the work done), so runs are comparable across engines.
#include "bench.hpp"

#include <chrono>
#include <memory>
#include <cmath>
#include <random>

#include "core/base/error.hpp"
#include "core/base/proc_memory.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"

namespace bitnet::diag {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<TokenId> token_ids(const model::Model& m, int32_t n) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(m.config().n_vocab) - 1);
  std::vector<TokenId> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = d(rng);
  return ids;
}

// Seconds to feed `ids` into a fresh session: all at once (a prompt) or one by one (generation).
// `huge`, when given, receives the process's huge-page bytes with the session loaded.
double time_eval(const infer::ResidentWeights& w, ThreadPool& pool, const std::vector<TokenId>& ids, bool one_by_one,
                 std::optional<uint64_t>* huge = nullptr) {
  infer::SessionOptions so;
  so.n_ctx = static_cast<uint32_t>(ids.size());
  so.pool = &pool;
  so.weights = &w;
  infer::Session s(w.model(), w.kernels(), so);
  if (huge != nullptr) *huge = read_anon_huge_pages();
  const auto t0 = Clock::now();
  if (one_by_one) {
    for (TokenId id : ids) s.eval(std::span<const TokenId>(&id, 1));
  } else {
    s.eval(ids);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

void summarize(BenchResult& r, double tokens) {
  std::vector<double> ts;
  for (double s : r.seconds) ts.push_back(tokens / s);
  double mean = 0;
  for (double v : ts) mean += v;
  mean /= static_cast<double>(ts.size());
  double var = 0;
  for (double v : ts) var += (v - mean) * (v - mean);
  r.avg_ts = mean;
  r.stddev_ts = ts.size() > 1 ? std::sqrt(var / static_cast<double>(ts.size() - 1)) : 0.0;
}

BenchReport run_bench(const std::string& model_path, const model::Model& m, const BenchOptions& opt) {
  BITNET_CHECK(opt.kernels != nullptr);
  const model::ModelConfig& c = m.config();
  if (static_cast<uint64_t>(opt.n_prompt) > c.n_ctx_train || static_cast<uint64_t>(opt.n_gen) > c.n_ctx_train)
    throw make_error(ErrorCode::usage, "-p {} / -n {} exceed the model's context of {} tokens", opt.n_prompt,
                     opt.n_gen, c.n_ctx_train);
  if (opt.reps < 1) throw make_error(ErrorCode::usage, "-r must be at least 1");
  BenchReport rep;
  rep.model_path = model_path;
  rep.model_size = m.file().file_size();
  for (const auto& t : m.file().tensors()) rep.model_n_params += static_cast<uint64_t>(t.n_elements());
  rep.model_type = fmt::format("{} {}x{} {}", c.arch_name, c.n_embd, c.n_layer,
                               gguf::type_name(c.n_layer > 0 ? m.layer(0).wq.type : m.token_embd().type));
  rep.kernel_table = std::string(opt.kernels->name);
  const std::vector<TokenId> prompt = token_ids(m, opt.n_prompt), gen = token_ids(m, opt.n_gen);
  // One copy of the weights for every session of every thread count, made with the first pool.
  std::unique_ptr<infer::ResidentWeights> weights;
  for (int threads : opt.threads) {
    ThreadPool pool(threads);
    BenchResult pp, tg;
    pp.test = fmt::format("pp{}", opt.n_prompt);
    pp.n_threads = threads;
    pp.n_prompt = opt.n_prompt;
    tg.test = fmt::format("tg{}", opt.n_gen);
    tg.n_threads = threads;
    tg.n_gen = opt.n_gen;
    auto say = [&](const std::string& what) {
      if (opt.progress) opt.progress(fmt::format("{}, {} thread{}", what, threads, threads == 1 ? "" : "s"));
    };
    if (!opt.kernel_bench.tables.empty()) {
      say("kernel micro-benchmarks");
      auto rows = run_kernel_bench(m, pool, opt.kernel_bench);
      rep.kernels.insert(rep.kernels.end(), rows.begin(), rows.end());
    }
    if (opt.n_gen > 0 && opt.bandwidth_bytes > 0) {
      say("memory read bandwidth");
      tg.bytes_per_token = decode_bytes_per_token(m, *opt.kernels, static_cast<uint32_t>(opt.n_gen / 2));
      rep.bandwidth.push_back(probe_read_bandwidth(pool, probe_bytes_for(opt.bandwidth_bytes, tg.bytes_per_token), 10));
      tg.bandwidth_gbs = rep.bandwidth.back().gbs;
      tg.bandwidth_probe_bytes = rep.bandwidth.back().bytes;
      tg.roofline_ts = tg.bandwidth_gbs * 1e9 / static_cast<double>(tg.bytes_per_token);
      tg.weights_bytes = infer::resident_total_bytes(m, *opt.kernels);
    }
    // Warm-ups: page in the weights, size the buffers.
    say("warm-up");
    if (!weights && (opt.n_prompt > 0 || opt.n_gen > 0))
      weights = std::make_unique<infer::ResidentWeights>(m, *opt.kernels, default_memory_pool(), &pool);
    if (opt.n_prompt > 0) time_eval(*weights, pool, prompt, false);
    if (opt.n_gen > 0)
      time_eval(*weights, pool, std::vector<TokenId>(gen.begin(), gen.begin() + std::min<int32_t>(opt.n_gen, 8)), true);
    for (int i = 0; i < opt.reps; ++i) {
      say(fmt::format("repetition {}/{}", i + 1, opt.reps));
      if (opt.n_prompt > 0) pp.seconds.push_back(time_eval(*weights, pool, prompt, false));
      if (opt.n_gen > 0) tg.seconds.push_back(time_eval(*weights, pool, gen, true, &tg.huge_page_bytes));
      if (opt.after_rep) opt.after_rep(threads, i);
    }
    if (opt.n_prompt > 0) {
      summarize(pp, opt.n_prompt);
      rep.results.push_back(std::move(pp));
    }
    if (opt.n_gen > 0) {
      summarize(tg, opt.n_gen);
      rep.results.push_back(std::move(tg));
    }
  }
  return rep;
}

}  // namespace bitnet::diag
