// Timed runs on fresh sessions, or after a depth on one session rewound to it before each run.
// Token ids are a fixed pseudo-random sequence over the vocabulary (the content does not change
// the work done), so runs are comparable across engines.
#include "bench.hpp"

#include <chrono>
#include <memory>
#include <cmath>
#include <random>
#include <span>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
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

// What every session of a thread count shares. With a screen, a session computes the top_k best
// logits of each step exactly (as generate does for its sampler).
struct TestRun {
  const infer::ResidentWeights& w;
  ThreadPool& pool;
  const kernels::OutputScreen* screen = nullptr;
  int32_t top_k = 0;
  infer::KvType kv_type = infer::KvType::f16;
};

std::unique_ptr<infer::Session> make_session(const TestRun& run, size_t n_ctx) {
  infer::SessionOptions so;
  so.n_ctx = static_cast<uint32_t>(n_ctx);
  so.pool = &run.pool;
  so.weights = &run.w;
  so.screen = run.screen;
  so.kv_type = run.kv_type;
  auto s = std::make_unique<infer::Session>(run.w.model(), run.w.kernels(), so);
  if (run.screen != nullptr) s->set_top_logits(run.top_k);
  return s;
}

// Seconds to run a test in `s` from its current position: the prompt all at once, then the
// generated tokens one by one. *rows, when given, receives the output rows its decode steps
// computed.
double time_steps(infer::Session& s, const std::vector<TokenId>& prompt, const std::vector<TokenId>& gen,
                  uint64_t* rows) {
  uint64_t computed = 0;
  const auto t0 = Clock::now();
  if (!prompt.empty()) s.eval(prompt);
  for (TokenId id : gen) {
    s.eval(std::span<const TokenId>(&id, 1));
    computed += static_cast<uint64_t>(s.exact_output_rows());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (rows != nullptr) *rows += computed;
  return seconds;
}

// A warm-up in a fresh session (pages in the weights, sizes the pool's blocks).
void warm_up(const TestRun& run, const std::vector<TokenId>& prompt, const std::vector<TokenId>& gen) {
  time_steps(*make_session(run, prompt.size() + gen.size()), prompt, gen, nullptr);
}

int64_t total_tokens(const BenchTest& t) { return int64_t{t.n_depth} + t.n_prompt + t.n_gen; }

// Where a tg test's decode steps read the KV cache on average: after the depth, half the steps.
int64_t mean_decode_position(const BenchTest& t) { return int64_t{t.n_depth} + t.n_gen / 2; }

std::vector<TokenId> first(const std::vector<TokenId>& ids, int32_t n) {
  return {ids.begin(), ids.begin() + std::min<int64_t>(n, static_cast<int64_t>(ids.size()))};
}

// The report's model fields (path, type, size, parameters, kernel table), before any test runs.
BenchReport describe_bench_model(const std::string& model_path, const model::Model& m,
                                 const kernels::KernelTable& kernels) {
  const model::ModelConfig& c = m.config();
  BenchReport rep;
  rep.model_path = model_path;
  rep.model_size = m.file().file_size();
  for (const auto& t : m.file().tensors()) rep.model_n_params += static_cast<uint64_t>(t.n_elements());
  rep.model_type = fmt::format("{} {}x{} {}", c.arch_name, c.n_embd, c.n_layer,
                               gguf::type_name(c.n_layer > 0 ? m.layer(0).wq.type : m.token_embd().type));
  rep.kernel_table = std::string(kernels.name);
  return rep;
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

std::string test_name(const BenchTest& t) {
  std::string name = t.n_prompt > 0 && t.n_gen > 0 ? fmt::format("pp{}+tg{}", t.n_prompt, t.n_gen)
                     : t.n_prompt > 0              ? fmt::format("pp{}", t.n_prompt)
                                                   : fmt::format("tg{}", t.n_gen);
  return t.n_depth > 0 ? name + fmt::format(" @ d{}", t.n_depth) : name;
}


BenchReport run_bench(const std::string& model_path, const model::Model& m, const BenchOptions& opt) {
  static log::Logger& lg = log::get("bench");
  BITNET_CHECK(opt.kernels != nullptr);
  const model::ModelConfig& c = m.config();
  int32_t longest_prompt = 0, longest_gen = 0, deepest = 0;
  for (const BenchTest& t : opt.tests) {
    if (t.n_prompt < 0 || t.n_gen < 0 || t.n_depth < 0 || (t.n_prompt == 0 && t.n_gen == 0))
      throw make_error(ErrorCode::usage, "bench test pp{} tg{}: give a positive prompt or generation length", t.n_prompt,
                       t.n_gen);
    // Past the training context as llama-bench allows (a 4096-token model at depth 4096 is the
    // long-context case people ask about): the speed is still the engine's; up to 4x, so that a
    // typo does not book a KV cache a hundred times the model's.
    const int64_t total = total_tokens(t);
    const std::string depth = t.n_depth > 0 ? fmt::format(" (depth {} included)", t.n_depth) : "";
    if (static_cast<uint64_t>(total) > kMaxContextFactor * uint64_t{c.n_ctx_train})
      throw make_error(ErrorCode::usage, "bench test {}: {} tokens{} exceed {} times the model's context of {} tokens",
                       test_name(t), total, depth, kMaxContextFactor, c.n_ctx_train);
    if (static_cast<uint64_t>(total) > c.n_ctx_train)
      log::warn(lg, "bench test {}: {} tokens{} pass the model's context of {} tokens; timed anyway, as llama-bench does",
                test_name(t), total, depth, c.n_ctx_train);
    longest_prompt = std::max(longest_prompt, t.n_prompt);
    longest_gen = std::max(longest_gen, t.n_gen);
    deepest = std::max(deepest, t.n_depth);
  }
  if (opt.reps < 1) throw make_error(ErrorCode::usage, "-r must be at least 1");
  BenchReport rep = describe_bench_model(model_path, m, *opt.kernels);
  rep.kv_type = std::string(infer::kv_type_name(opt.kv_type));
  const std::vector<TokenId> prompt = token_ids(m, longest_prompt), gen = token_ids(m, longest_gen);
  const std::vector<TokenId> context = token_ids(m, deepest);
  // One copy of the weights for every session of every thread count, made with the first pool.
  std::unique_ptr<infer::ResidentWeights> weights;
  std::unique_ptr<kernels::OutputScreen> screen;  // built with the weights, shared by the sessions
  for (int threads : opt.threads) {
    ThreadPool pool(threads);
    auto say = [&](const std::string& what) {
      if (opt.progress) opt.progress(fmt::format("{}, {} thread{}", what, threads, threads == 1 ? "" : "s"));
    };
    if (!opt.kernel_bench.tables.empty()) {
      say("kernel micro-benchmarks");
      auto rows = run_kernel_bench(m, pool, opt.kernel_bench);
      rep.kernels.insert(rep.kernels.end(), rows.begin(), rows.end());
    }
    // One bandwidth probe per thread count, sized for the largest tg test's decode step (the one
    // whose mean position, depth + n_gen / 2, is furthest).
    std::optional<BandwidthProbe> probe;
    int64_t probe_pos = -1;
    for (const BenchTest& t : opt.tests)
      if (t.n_prompt == 0) probe_pos = std::max(probe_pos, mean_decode_position(t));
    if (probe_pos >= 0 && opt.bandwidth_bytes > 0) {
      say("memory read bandwidth");
      const uint64_t step = decode_bytes_per_token(m, *opt.kernels, static_cast<uint32_t>(probe_pos), opt.kv_type);
      probe = probe_read_bandwidth(pool, probe_bytes_for(opt.bandwidth_bytes, step), 10,
                                   [&] { say("memory read bandwidth"); });
      rep.bandwidth.push_back(*probe);
    }
    // Warm-ups: page in the weights, size the buffers.
    if (!opt.tests.empty()) say("warm-up");
    if (!weights && !opt.tests.empty()) {
      weights = std::make_unique<infer::ResidentWeights>(m, *opt.kernels, default_memory_pool(), &pool);
      const kernels::WeightView& out = weights->output();
      if (opt.top_k > 0 && kernels::OutputScreen::worth_building(*opt.kernels, out))
        screen = std::make_unique<kernels::OutputScreen>(*opt.kernels, out, default_memory_pool(), &pool);
    }
    if (!weights) continue;
    const TestRun run{*weights, pool, screen.get(), opt.top_k, opt.kv_type};
    if (longest_prompt > 0) warm_up(run, prompt, {});
    if (longest_gen > 0) warm_up(run, {}, first(gen, 8));
    for (const BenchTest& t : opt.tests) {
      BenchResult r;
      r.test = test_name(t);
      r.n_threads = threads;
      r.n_prompt = t.n_prompt;
      r.n_gen = t.n_gen;
      r.n_depth = t.n_depth;
      const bool tg = t.n_prompt == 0;
      if (tg && probe) {
        r.bytes_per_token = decode_bytes_per_token(m, *opt.kernels, static_cast<uint32_t>(mean_decode_position(t)), opt.kv_type);
        r.bandwidth_gbs = probe->gbs;
        r.bandwidth_probe_bytes = probe->bytes;
        r.roofline_ts = r.bandwidth_gbs * 1e9 / static_cast<double>(r.bytes_per_token);
        r.weights_bytes = infer::resident_total_bytes(m, *opt.kernels);
      }
      const std::vector<TokenId> p = first(prompt, t.n_prompt), g = first(gen, t.n_gen);
      // A depth is evaluated once, untimed, in a session kept for the test: the warm-up and each
      // repetition start from it (rewound to it), as re-evaluating thousands of tokens per
      // repetition would take minutes. Depth 0: a fresh session per repetition.
      std::unique_ptr<infer::Session> deep;
      if (t.n_depth > 0) {
        deep = make_session(run, static_cast<size_t>(total_tokens(t)));
        // In the session's batches, each after a progress call: Ctrl-C or --timeout stops a
        // context of thousands of tokens between two of them.
        const std::span<const TokenId> ctx(context.data(), static_cast<size_t>(t.n_depth));
        const size_t batch = infer::SessionOptions{}.n_batch;
        for (size_t at = 0; at < ctx.size(); at += batch) {
          say(fmt::format("{}: context {}/{} tokens", r.test, at, ctx.size()));
          deep->eval(ctx.subspan(at, std::min(batch, ctx.size() - at)));
        }
        say(fmt::format("{} warm-up", r.test));
        time_steps(*deep, p, g, nullptr);
      }
      r.started = std::time(nullptr);
      uint64_t rows = 0;
      for (int i = 0; i < opt.reps; ++i) {
        say(fmt::format("{} repetition {}/{}", r.test, i + 1, opt.reps));
        std::unique_ptr<infer::Session> fresh;
        if (deep) deep->rewind(static_cast<uint32_t>(t.n_depth));
        else fresh = make_session(run, p.size() + g.size());
        if (tg) r.huge_page_bytes = read_anon_huge_pages();  // with the session loaded
        r.seconds.push_back(time_steps(deep ? *deep : *fresh, p, g, &rows));
        if (opt.after_rep) opt.after_rep(threads, t, i);
      }
      if (screen && !g.empty()) {
        // Bytes a screened decode step reads: the int8 copy and the rows computed, not the matrix.
        const kernels::WeightView& out = weights->output();
        r.output_rows = static_cast<double>(rows) / static_cast<double>(opt.reps * static_cast<int>(g.size()));
        r.screen_bytes = screen->bytes();
        if (r.bytes_per_token > 0) {
          const double row_bytes = static_cast<double>(kernels::weight_bytes(out)) / static_cast<double>(out.rows);
          r.bytes_per_token = r.bytes_per_token - kernels::weight_bytes(out) + r.screen_bytes +
                              static_cast<uint64_t>(r.output_rows * row_bytes);
          r.roofline_ts = r.bandwidth_gbs * 1e9 / static_cast<double>(r.bytes_per_token);
        }
      }
      summarize(r, static_cast<double>(t.n_prompt) + t.n_gen);
      if (opt.on_result) opt.on_result(rep, r);
      rep.results.push_back(std::move(r));
    }
  }
  return rep;
}

}  // namespace bitnet::diag
