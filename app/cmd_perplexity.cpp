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
#include "app/build_info.hpp"
#include "app/engine_options.hpp"
#include "app/output_path.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "core/infer/session.hpp"
#include "diag/crossval/float_reference.hpp"
#include "diag/crossval/reference.hpp"
#include "diag/kld_base.hpp"
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
  std::string base;  // --kl-divergence-base
  CLI::Option* ctx_opt = nullptr;
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

// A base file must come from a model that tokenizes alike: same vocabulary size and texts.
void check_base(const diag::KldBaseReader& base, const std::string& path, const tokenizer::Vocab& vocab,
                const std::filesystem::path& model, uint32_t n_vocab) {
  const diag::KldBaseHeader& h = base.header();
  if (h.n_vocab != n_vocab)
    throw make_error(ErrorCode::invalid_input,
                     "--kl-divergence-base {}: saved from a model with a vocabulary of {} tokens ({}); {} has {}", path,
                     h.n_vocab, h.model, model.string(), n_vocab);
  if (h.vocab_sha256 != diag::vocab_fingerprint(vocab))
    throw make_error(ErrorCode::invalid_input,
                     "--kl-divergence-base {}: saved from a model with another vocabulary ({}); the token ids of {} do "
                     "not mean the same", path, h.model, model.string());
  if (h.first != h.n_ctx / 2)
    throw make_error(ErrorCode::invalid_input, "--kl-divergence-base {}: rows from position {} of {}, expected {}", path,
                     h.first, h.n_ctx, h.n_ctx / 2);
}

// The chunks as they will be evaluated (BOS first when the model adds it).
diag::KldBaseHeader base_header(const std::vector<TokenId>& tokens, uint32_t n_ctx, size_t max_chunks,
                                std::optional<TokenId> bos, const tokenizer::Vocab& vocab, const Engine& e) {
  diag::KldBaseHeader h;
  h.model = e.model_path.filename().string();
  h.engine = fmt::format("bitnet {}, {}", build::version, e.kernels->name);
  h.vocab_sha256 = diag::vocab_fingerprint(vocab);
  h.n_vocab = e.model->config().n_vocab;
  h.n_ctx = n_ctx;
  h.first = n_ctx / 2;
  size_t chunks = tokens.size() / n_ctx;
  if (max_chunks > 0) chunks = std::min(chunks, max_chunks);
  h.tokens.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(chunks * n_ctx));
  if (bos)
    for (size_t c = 0; c < chunks; ++c) h.tokens[c * n_ctx] = *bos;
  return h;
}

}  // namespace

RunFn setup_perplexity(CLI::App& sub) {
  auto f = std::make_shared<PerplexityFlags>();
  add_engine_flags(sub, f->engine, {.pre = true, .kv = true});
  sub.add_option("-f,--file", f->file, "The text to score (UTF-8)");
  f->ctx_opt = sub.add_option("-c,--ctx-size", f->n_ctx, "Tokens per chunk; the second half of each is scored (default 512)")
      ->check(CLI::Range(4, 1 << 20));
  sub.add_option("-b,--batch-size", f->n_batch, "Tokens per forward pass (default 512)")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--chunks", f->chunks, "Score at most this many chunks (default: all the text holds)")
      ->check(CLI::Range(1, 1 << 30));
  sub.add_option("-r,--reference", f->reference,
                 "Also score the same tokens with llama.cpp[:DIR], backend:NAME or the float oracle "
                 "(float[:exact|q8_k|i8]) and compare (PPL ratio, KL divergence, delta p, same top token)");
  sub.add_option("--kl-divergence-base", f->base,
                 "Save our logits of every scored token to FILE (zstd; with -f), or with --kl-divergence compare "
                 "with the logits saved there, on its tokens (no -f)");
  sub.add_flag("--kl-divergence", f->kl_divergence,
               "Compare with --kl-divergence-base FILE (or --reference): KL divergence, delta p, same top token");
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
             "  bitnet perplexity -m model.gguf -f wiki.test.raw --chunks 20 --reference llama.cpp --json\n"
             "  bitnet perplexity -m model-f16.gguf -f wiki.test.raw --kl-divergence-base f16.kld\n"
             "  bitnet perplexity -m model-i2_s.gguf --kl-divergence --kl-divergence-base f16.kld");
  return [f](const Context& ctx) {
    static log::Logger& lg = log::get("perplexity");
    // With --kl-divergence the base file is read (it is the reference); without, it is written.
    const bool read_base = f->kl_divergence && !f->base.empty();
    const bool write_base = !f->kl_divergence && !f->base.empty();
    if (f->kl_divergence && f->reference.empty() && f->base.empty())
      throw make_error(ErrorCode::usage, "--kl-divergence compares with a reference: give --kl-divergence-base FILE (saved "
                                         "by an earlier run) or --reference llama.cpp[:DIR] or backend:NAME");
    if (read_base && !f->reference.empty())
      throw make_error(ErrorCode::usage, "--kl-divergence --kl-divergence-base {} compares with that file; --reference {} "
                                         "would be a second reference", f->base, f->reference);
    if (read_base && !f->file.empty())
      throw make_error(ErrorCode::usage, "--kl-divergence-base {} holds the tokens it was made from; leave out -f {}",
                       f->base, f->file);
    if (!read_base && f->file.empty())
      throw make_error(ErrorCode::usage, "perplexity needs a text: -f FILE (or --kl-divergence --kl-divergence-base FILE)");
    // The reference's spelling, the output path and a base file's header before any model is
    // loaded: a typo costs nothing.
    std::optional<diag::ReferenceSpec> ref;
    if (!f->reference.empty()) {
      ref = diag::parse_reference(f->reference, ctx.llama_dir, f->ref_threads);
      if (ref->kind != diag::RefKind::llama_cpp && ref->kind != diag::RefKind::backend &&
          ref->kind != diag::RefKind::float_oracle)
        throw make_error(ErrorCode::usage,
                         "--reference {}: perplexity compares logits with llama.cpp[:DIR], backend:NAME or "
                         "float[:exact|q8_k|i8]", f->reference);
      ref->timeout_flag = "--ref-timeout";
    }
    if (write_base) check_output_path("--kl-divergence-base", f->base);
    std::unique_ptr<diag::KldBaseReader> base;
    if (read_base) base = std::make_unique<diag::KldBaseReader>(f->base);
    const std::string text = read_base ? "" : read_text_file(f->file, "the text (-f)");
    const std::atomic<bool>& cancel = install_interrupt_handler();
    Engine e = resolve_engine(ctx, f->engine, {.model = true, .vocab = true, .pool = true});
    const uint32_t n_vocab = e.model->config().n_vocab;
    const tokenizer::Tokenizer& tok = *e.tokenizer;
    std::vector<TokenId> tokens;
    uint32_t n_ctx = f->n_ctx;
    if (read_base) {
      check_base(*base, f->base, tok.vocab(), e.model_path, n_vocab);
      const diag::KldBaseHeader& h = base->header();
      if (f->ctx_opt->count() > 0 && f->n_ctx != h.n_ctx)
        throw make_error(ErrorCode::usage, "-c {}: --kl-divergence-base {} was saved with chunks of {} tokens", f->n_ctx,
                         f->base, h.n_ctx);
      tokens = h.tokens;
      n_ctx = h.n_ctx;
    } else {
      tokens = tok.encode_ids(text, /*add_special=*/true, /*parse_special=*/false);
      if (tokens.size() < n_ctx)
        throw make_error(ErrorCode::invalid_input, "{}: the text is {} tokens long, shorter than one chunk of {} tokens (-c)",
                         f->file, tokens.size(), n_ctx);
    }
    if (n_ctx > e.model->config().n_ctx_train)
      log::warn(lg, "-c {} is past the model's training context of {} tokens", n_ctx, e.model->config().n_ctx_train);

    infer::SessionOptions so;
    so.n_ctx = n_ctx;
    so.n_batch = std::min(f->n_batch, n_ctx);
    so.kv_type = e.kv_type;
    so.pool = e.pool.get();
    infer::Session ours(*e.model, *e.kernels, so);
    diag::PerplexityOptions o;
    o.n_ctx = n_ctx;
    o.max_chunks = f->chunks;
    // A base file's chunks are stored as evaluated, BOS included.
    if (!read_base && tok.vocab().add_bos && tok.vocab().bos) o.bos = *tok.vocab().bos;
    o.ours = diag::session_chunk_logits(ours);
    o.cancel = &cancel;
    if (::isatty(STDERR_FILENO) != 0 && !ctx.quiet) o.progress = show_progress;

    std::unique_ptr<infer::Session> other;
    if (read_base) {
      o.reference = [&base](std::span<const TokenId>, size_t) { return base->next_chunk(); };
    } else if (ref && ref->kind == diag::RefKind::float_oracle) {
      o.reference = [&e, opt = diag::oracle_options(*ref)](std::span<const TokenId> chunk, size_t from) {
        return diag::oracle_logits_from(*e.model, chunk, from, opt);
      };
    } else if (ref && ref->kind == diag::RefKind::backend) {
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
        // llama.cpp keeps a quantized V only with flash attention.
        req.flash_attn = e.kv_type == infer::KvType::q8_0 && f->ref_flash_attn == "off" ? "on" : f->ref_flash_attn;
        req.cancel = &cancel;
        return diag::run_reference_logits(*ref, req, n_vocab, timeout).logits;
      };
    }
    std::unique_ptr<diag::KldBaseWriter> writer;
    if (write_base) {
      diag::KldBaseHeader h = base_header(tokens, n_ctx, f->chunks, o.bos, tok.vocab(), e);
      writer = std::make_unique<diag::KldBaseWriter>(f->base, h);
      o.save = [&writer](const std::vector<float>& rows) { writer->add_chunk(rows); };
    }
    diag::PerplexityReport r;
    try {
      r = diag::run_perplexity(tokens, n_vocab, o);
      if (writer) writer->commit();
      if (base && f->chunks == 0) base->expect_end();
    } catch (...) {
      if (o.progress) std::fputs("\r\033[K", stderr);
      throw_if_cancelled();  // Ctrl-C, SIGTERM or --timeout, said as such
      throw;
    }
    const std::string ref_name = read_base ? fmt::format("{} ({})", f->base, base->header().engine) : f->reference;
    write_stdout(f->json ? json_report(r, e, ref_name) : text_report(r, ref_name));
    return 0;
  };
}

}  // namespace bitnet::app
