// `bitnet perplexity -m MODEL -f TEXT [-c N] [-b N] [--chunks K] [--reference REF] [--json]`:
// llama-perplexity's number over a text, and with a reference (llama.cpp or another kernel table)
// its --kl-divergence statistics on the same tokens (docs/perplexity.md).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "core/infer/session.hpp"
#include "diag/crossval/reference.hpp"
#include "diag/perplexity.hpp"

namespace bitnet::app {
namespace {

struct PerplexityFlags {
  EngineFlags engine;  // -m, -t, --backend, --kv-type, --pre
  std::string file;    // -f
  uint32_t n_ctx = 512;
  uint32_t n_batch = 512;
  size_t chunks = 0;
  std::string reference;
  bool kl_divergence = false;
  int ref_threads = 1;
  std::string ref_flash_attn = "off";
  double timeout = 600;
  bool json = false;
};

std::string spread(const diag::Spread& s, int digits) { return fmt::format("{:.{}f} ± {:.{}f}", s.mean, digits, s.error, digits); }

std::string percent(const diag::Spread& s) { return fmt::format("{:.3f} ± {:.3f} %", 100 * s.mean, 100 * s.error); }

// The running PPL after each chunk, llama-perplexity's "[1]12.3456,[2]..." line, then the estimate.
std::string text_report(const diag::PerplexityReport& r, const std::string& ref) {
  std::string o;
  for (size_t i = 0; i < r.running_ppl.size(); ++i) o += fmt::format("[{}]{:.4f},", i + 1, r.running_ppl[i]);
  o += "\n";
  o += fmt::format("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl.mean, r.ppl.error);
  o += fmt::format("{} chunks of {} tokens ({} of the text's {} tokens), {} scored, {:.2f} s ({:.1f} tokens/s)\n",
                   r.n_chunks, r.n_ctx, r.n_chunks * r.n_ctx, r.n_tokens, r.scored, r.seconds,
                   r.seconds > 0 ? static_cast<double>(r.n_chunks * r.n_ctx) / r.seconds : 0.0);
  if (!r.kl) return o;
  const diag::KlReport& k = *r.kl;
  o += fmt::format("\nagainst {} ({:.2f} s), {} tokens scored by both:\n", ref, r.reference_seconds, r.scored);
  o += fmt::format("PPL(ours)               : {}\n", spread(r.ppl, 6));
  o += fmt::format("PPL(reference)          : {}\n", spread(k.ppl_ref, 6));
  o += fmt::format("Cor(ln PPL, ln PPL ref) : {:.2f} %\n", 100 * k.nll_correlation);
  o += fmt::format("ln(PPL / PPL ref)       : {}\n", spread(k.ln_ppl_ratio, 6));
  o += fmt::format("PPL / PPL ref           : {}\n", spread(k.ppl_ratio, 6));
  o += fmt::format("PPL - PPL ref           : {}\n", spread(k.ppl_diff, 6));
  o += "\nKL divergence (reference || ours), nats:\n";
  o += fmt::format("Mean    : {}\n", spread(k.kld, 6));
  const diag::Percentiles& q = k.kld_pct;
  o += fmt::format("Maximum : {:.6f}\n99.9%   : {:.6f}\n99.0%   : {:.6f}\n95.0%   : {:.6f}\n90.0%   : {:.6f}\n", q.max,
                   q.p99_9, q.p99, q.p95, q.p90);
  o += fmt::format("Median  : {:.6f}\n10.0%   : {:.6f}\n5.0%    : {:.6f}\n1.0%    : {:.6f}\n0.1%    : {:.6f}\nMinimum : {:.6f}\n",
                   q.median, q.p10, q.p5, q.p1, q.p0_1, q.min);
  o += "\nprobability of the true next token, ours - reference (delta p):\n";
  o += fmt::format("Mean    : {}\nRMS     : {:.3f} %\n", percent(k.delta_p), 100 * k.delta_p_rms);
  const diag::Percentiles& d = k.delta_p_pct;
  o += fmt::format("Maximum : {:.3f} %\n99.9%   : {:.3f} %\n99.0%   : {:.3f} %\n95.0%   : {:.3f} %\n90.0%   : {:.3f} %\n",
                   100 * d.max, 100 * d.p99_9, 100 * d.p99, 100 * d.p95, 100 * d.p90);
  o += fmt::format("Median  : {:.3f} %\n10.0%   : {:.3f} %\n5.0%    : {:.3f} %\n1.0%    : {:.3f} %\n0.1%    : {:.3f} %\n"
                   "Minimum : {:.3f} %\n",
                   100 * d.median, 100 * d.p10, 100 * d.p5, 100 * d.p1, 100 * d.p0_1, 100 * d.min);
  o += fmt::format("\nSame top token: {}\n", percent(k.same_top));
  return o;
}

void put_spread(JsonWriter& j, const char* key, const diag::Spread& s) {
  j.key(key).begin_object().key("mean").value(s.mean).key("error").value(s.error).end_object();
}

void put_percentiles(JsonWriter& j, const char* key, const diag::Percentiles& p) {
  j.key(key).begin_object();
  j.key("max").value(p.max).key("p99_9").value(p.p99_9).key("p99").value(p.p99).key("p95").value(p.p95);
  j.key("p90").value(p.p90).key("median").value(p.median).key("p10").value(p.p10).key("p5").value(p.p5);
  j.key("p1").value(p.p1).key("p0_1").value(p.p0_1).key("min").value(p.min);
  j.end_object();
}

std::string json_report(const diag::PerplexityReport& r, const Engine& e, const std::string& ref) {
  JsonWriter j;
  j.begin_object();
  j.key("model").value(e.model_path.string()).key("kernel_table").value(e.kernels->name);
  j.key("threads").value(static_cast<int64_t>(e.threads)).key("kv_type").value(infer::kv_type_name(e.kv_type));
  j.key("n_ctx").value(static_cast<uint64_t>(r.n_ctx)).key("n_tokens").value(static_cast<uint64_t>(r.n_tokens));
  j.key("n_chunks").value(static_cast<uint64_t>(r.n_chunks)).key("scored").value(static_cast<uint64_t>(r.scored));
  j.key("running_ppl").begin_array();
  for (double p : r.running_ppl) j.value(p);
  j.end_array();
  j.key("ppl").value(r.ppl.mean).key("ppl_error").value(r.ppl.error).key("seconds").value(r.seconds);
  if (r.kl) {
    const diag::KlReport& k = *r.kl;
    j.key("reference").begin_object().key("name").value(ref).key("seconds").value(r.reference_seconds);
    j.key("ppl").value(k.ppl_ref.mean).key("ppl_error").value(k.ppl_ref.error);
    j.key("nll_correlation").value(k.nll_correlation);
    put_spread(j, "ln_ppl_ratio", k.ln_ppl_ratio);
    put_spread(j, "ppl_ratio", k.ppl_ratio);
    put_spread(j, "ppl_diff", k.ppl_diff);
    put_spread(j, "kld", k.kld);
    put_percentiles(j, "kld_percentiles", k.kld_pct);
    put_spread(j, "delta_p", k.delta_p);
    j.key("delta_p_rms").value(k.delta_p_rms);
    put_percentiles(j, "delta_p_percentiles", k.delta_p_pct);
    put_spread(j, "same_top", k.same_top);
    j.end_object();
  }
  j.end_object();
  std::string out = j.str();
  out.append("\n");
  return out;
}

// "perplexity: chunk 3/40, PPL 12.3456, 2.1 s per chunk, 1m20s left" redrawn on a terminal.
void show_progress(const diag::PerplexityProgress& p) {
  const double per = p.seconds / static_cast<double>(p.chunk);
  const auto left = static_cast<int64_t>(std::lround(per * static_cast<double>(p.n_chunks - p.chunk)));
  std::fputs(fmt::format("\rperplexity: chunk {}/{}, PPL {:.4f}, {:.2f} s per chunk, {}m{:02}s left\033[K", p.chunk,
                         p.n_chunks, p.ppl, per, left / 60, left % 60)
                 .c_str(),
             stderr);
  if (p.chunk == p.n_chunks) std::fputs("\r\033[K", stderr);
}

}  // namespace

RunFn setup_perplexity(CLI::App& sub) {
  auto f = std::make_shared<PerplexityFlags>();
  add_engine_flags(sub, f->engine, {.pre = true, .kv = true});
  sub.add_option("-f,--file", f->file, "The text to score (UTF-8)")->required();
  sub.add_option("-c,--ctx-size", f->n_ctx, "Tokens per chunk; the second half of each is scored (default 512)")
      ->check(CLI::Range(4, 1 << 20));
  sub.add_option("-b,--batch-size", f->n_batch, "Tokens per forward pass (default 512)")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--chunks", f->chunks, "Score at most this many chunks (default: all the text holds)")
      ->check(CLI::Range(1, 1 << 30));
  sub.add_option("-r,--reference", f->reference,
                 "Also score the same tokens with llama.cpp[:DIR] or backend:NAME and compare (PPL ratio, KL "
                 "divergence, delta p, same top token)");
  sub.add_flag("--kl-divergence", f->kl_divergence, "llama-perplexity's spelling: compare with --reference (needs it)");
  sub.add_option("--ref-timeout", f->timeout, "Seconds the reference may take per chunk (default 600)")
      ->check(CLI::Range(0.1, 86400.0));
  sub.add_option("--ref-threads", f->ref_threads, "Threads for the llama.cpp reference (default 1)")
      ->check(CLI::Range(1, 1024));
  sub.add_option("--ref-flash-attn", f->ref_flash_attn,
                 "llama.cpp's -fa for the reference: off (default), on or auto; its cache takes our --kv-type")
      ->check(CLI::IsMember({"on", "off", "auto"}));
  sub.add_flag("--json", f->json, "One JSON object instead of the text report");
  sub.footer("Method: llama-perplexity's. The text is tokenized with BOS, cut into chunks of -c tokens, each\n"
             "evaluated from an empty context with BOS first; the second half of each chunk is scored.\n"
             "Examples:\n  bitnet perplexity -m fixture:stories260K -f /usr/share/common-licenses/GPL-3 -c 128\n"
             "  bitnet perplexity -m model.gguf -f wiki.test.raw --chunks 20 --reference llama.cpp --json");
  return [f](const Context& ctx) {
    static log::Logger& lg = log::get("perplexity");
    if (f->kl_divergence && f->reference.empty())
      throw make_error(ErrorCode::usage, "--kl-divergence compares with a reference: give --reference llama.cpp[:DIR] or "
                                         "backend:NAME");
    // The reference's spelling before any model is loaded: a typo costs nothing.
    std::optional<diag::ReferenceSpec> ref;
    if (!f->reference.empty()) {
      ref = diag::parse_reference(f->reference, ctx.llama_dir, f->ref_threads);
      if (ref->kind != diag::RefKind::llama_cpp && ref->kind != diag::RefKind::backend)
        throw make_error(ErrorCode::usage, "--reference {}: perplexity compares logits with llama.cpp[:DIR] or backend:NAME",
                         f->reference);
      ref->timeout_flag = "--ref-timeout";
    }
    const std::string text = read_text_file(f->file, "the text (-f)");
    const std::atomic<bool>& cancel = install_interrupt_handler();
    Engine e = resolve_engine(ctx, f->engine, {.model = true, .vocab = true, .pool = true});
    const uint32_t n_vocab = e.model->config().n_vocab;
    const tokenizer::Tokenizer& tok = *e.tokenizer;
    const std::vector<TokenId> tokens = tok.encode_ids(text, /*add_special=*/true, /*parse_special=*/false);
    const uint32_t n_ctx = f->n_ctx;
    if (tokens.size() < n_ctx)
      throw make_error(ErrorCode::invalid_input, "{}: the text is {} tokens long, shorter than one chunk of {} tokens (-c)",
                       f->file, tokens.size(), n_ctx);
    if (n_ctx > e.model->config().n_ctx_train)
      log::warn(lg, "-c {} is past the model's training context of {} tokens", n_ctx,
                e.model->config().n_ctx_train);

    infer::SessionOptions so;
    so.n_ctx = n_ctx;
    so.n_batch = std::min(f->n_batch, n_ctx);
    so.kv_type = e.kv_type;
    so.pool = e.pool.get();
    infer::Session ours(*e.model, *e.kernels, so);
    diag::PerplexityOptions o;
    o.n_ctx = n_ctx;
    o.max_chunks = f->chunks;
    if (tok.vocab().add_bos && tok.vocab().bos) o.bos = *tok.vocab().bos;
    o.ours = diag::session_chunk_logits(ours);
    o.cancel = &cancel;
    if (::isatty(STDERR_FILENO) != 0 && !ctx.quiet) o.progress = show_progress;

    std::unique_ptr<infer::Session> other;
    if (ref && ref->kind == diag::RefKind::backend) {
      other = std::make_unique<infer::Session>(*e.model, select_kernels(ref->backend), so);
      o.reference = diag::session_chunk_logits(*other);
    } else if (ref) {
      const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f->timeout * 1000));
      o.reference = [&, timeout](std::span<const TokenId> chunk, size_t from) {
        diag::RefLogitsRequest req;
        req.model = std::filesystem::absolute(e.model_path);
        req.tokens.assign(chunk.begin(), chunk.end());
        req.from = from;
        req.kv_type = std::string(infer::kv_type_name(e.kv_type));
        req.flash_attn = f->ref_flash_attn;
        req.cancel = &cancel;
        return diag::run_reference_logits(*ref, req, n_vocab, timeout).logits;
      };
    }
    diag::PerplexityReport r;
    try {
      r = diag::run_perplexity(tokens, n_vocab, o);
    } catch (...) {
      if (o.progress) std::fputs("\r\033[K", stderr);
      throw_if_cancelled();  // Ctrl-C, SIGTERM or --timeout, said as such
      throw;
    }
    write_stdout(f->json ? json_report(r, e, f->reference) : text_report(r, f->reference));
    return 0;
  };
}

}  // namespace bitnet::app
