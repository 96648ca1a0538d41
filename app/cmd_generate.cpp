// `bitnet generate`: load a model, stream a continuation of the prompt to stdout; timings on
// stderr. --json prints one event per token and a summary line (CLI.md). --chat runs a
// conversation in the model's chat format, keeping the KV cache between turns.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/signals.hpp"
#include "app/text_file.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/generate.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "diag/check_tensors.hpp"

namespace bitnet::app {
namespace {

struct GenerateFlags {
  EngineFlags engine;  // -m, -t, -c, --backend, --pre
  std::string prompt;
  bool prompt_given = false;
  std::string prompt_file;
  int32_t n_predict = 128;
  float temp = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool chat = false;
  bool json = false;
  bool no_echo = false;
  bool quiet = false;  // the global -q: no timings line, no stdin notice
  bool escape = true;  // -p's \n, \t, ... become characters (--no-escape: taken as they are)
  bool no_stdin = false;
  int32_t keep = 0;              // --keep: prompt tokens a context shift keeps after BOS (-1: all)
  bool no_context_shift = false;
  bool exact_logits = false;
  bool check_tensors = false;
  std::string system;
};

// -p's escapes, as llama-cli's -e (on by default): \n \r \t \\ \" \' become the character; any
// other backslash stays as it is.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    const char* to = nullptr;
    if (s[i] == '\\') to = next == 'n' ? "\n" : next == 'r' ? "\r" : next == 't' ? "\t" : next == '\\' ? "\\"
                          : next == '"' ? "\"" : next == '\'' ? "'" : nullptr;
    if (to != nullptr) {
      out += to;
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A prompt from standard input (-f -, or implicitly when stdin is not a terminal) is announced,
// since a `while read` loop around bitnet otherwise loses its input without a word, and an
// empty one is refused rather than silently generating from BOS alone.
std::string read_stdin_prompt(const GenerateFlags& f) {
  if (!f.quiet) std::fputs("reading the prompt from standard input (give -p or --no-stdin to skip it)\n", stderr);
  std::string text((std::istreambuf_iterator<char>(std::cin)), {});
  if (text.empty())
    throw make_error(ErrorCode::usage, "the prompt from standard input is empty; give one with -p, or --no-stdin to "
                     "generate from BOS alone");
  return text;
}

std::string read_prompt(const GenerateFlags& f) {
  if (f.prompt_given) return f.escape ? unescape(f.prompt) : f.prompt;
  if (f.prompt_file == "-") return read_stdin_prompt(f);
  if (!f.prompt_file.empty()) return read_text_file(f.prompt_file, "the prompt file");
  if (!f.no_stdin && !::isatty(STDIN_FILENO)) return read_stdin_prompt(f);
  return "";
}

struct Loaded {
  std::unique_ptr<model::Model> model;
  tokenizer::Tokenizer tok;
};

// Each token is flushed as it comes; a full disk ends the run there (write_stdout).
void write_out(std::string_view s) { write_stdout(s); }

// Decode speed counts the evals that were timed (n_decode_evals), not the tokens shown: with
// -n 1 nothing was decoded, and N tokens take N - 1 evals.
double decode_tps(const infer::GenerateResult& r) {
  return r.decode_seconds > 0 ? static_cast<double>(r.n_decode_evals) / r.decode_seconds : 0;
}

std::string timings(const infer::GenerateResult& r) {
  const double ptps = r.prefill_seconds > 0 ? static_cast<double>(r.n_prompt) / r.prefill_seconds : 0;
  std::string line = fmt::format("prefill: {} tokens in {:.3f} s ({:.1f} tok/s); decode: {} tokens, {} evals in {:.3f} "
                                 "s ({:.1f} tok/s); first token after {:.3f} s; stop: {}",
                                 r.n_prompt, r.prefill_seconds, ptps, r.tokens.size(), r.n_decode_evals,
                                 r.decode_seconds, decode_tps(r), r.first_token_seconds,
                                 infer::stop_reason_name(r.reason));
  if (r.n_shifts > 0) line += fmt::format("; context shifts: {}", r.n_shifts);
  if (r.n_evals > 0)
    line += fmt::format("; output rows computed: {:.0f} per eval", static_cast<double>(r.exact_output_rows) / static_cast<double>(r.n_evals));
  return line;
}

// The tokens of a prompt (or a chat's first turn) a context shift keeps, as llama-cli's --keep:
// BOS when the model adds one, then `keep` more; -1: all of them.
uint32_t tokens_to_keep(const tokenizer::Tokenizer& tok, std::span<const TokenId> ids, int32_t keep) {
  if (keep < 0) return static_cast<uint32_t>(ids.size());
  const tokenizer::Vocab& v = tok.vocab();
  const size_t bos = v.add_bos && v.bos && !ids.empty() && ids.front() == *v.bos ? 1 : 0;
  return static_cast<uint32_t>(std::min(ids.size(), bos + static_cast<size_t>(keep)));
}

// The stderr line of one context shift: what was kept and dropped.
std::string shift_note(const infer::Session& session, uint32_t kept, uint32_t dropped) {
  return fmt::format("context full ({} tokens): kept the first {}, dropped the next {}\n", session.n_ctx(), kept,
                     dropped);
}

// Shifting was on, yet the context filled: the kept tokens leave nothing to drop.
void warn_if_full(const infer::GenerateResult& r, const infer::GenerateOptions& g) {
  static log::Logger& lg = log::get("generate");
  if (r.reason == infer::StopReason::ctx && g.context_shift)
    log::warn(lg, "the context is full and the {} kept tokens (--keep) leave nothing to drop", g.n_keep);
}

std::string json_summary(const infer::GenerateResult& r, std::span<const TokenId> prompt, uint64_t seed) {
  JsonWriter j(false);
  j.begin_object().key("done").value(true).key("reason").value(infer::stop_reason_name(r.reason)).key("prompt_ids").begin_array();
  for (TokenId id : prompt) j.value(static_cast<int64_t>(id));
  j.end_array();
  j.key("n_prompt").value(static_cast<uint64_t>(r.n_prompt)).key("n_gen").value(static_cast<uint64_t>(r.tokens.size()));
  j.key("prefill_tps").value(r.prefill_seconds > 0 ? static_cast<double>(r.n_prompt) / r.prefill_seconds : 0.0);
  j.key("seed").value(seed);
  j.key("n_decode_evals").value(static_cast<uint64_t>(r.n_decode_evals)).key("decode_tps").value(decode_tps(r));
  j.key("context_shifts").value(static_cast<uint64_t>(r.n_shifts));
  j.end_object();
  return j.str() + "\n";
}

int run_once(const GenerateFlags& f, Loaded& m, infer::Session& session, infer::GenerateOptions gopt,
             const std::atomic<bool>& interrupted) {
  std::string text = read_prompt(f);
  std::vector<TokenId> prompt = m.tok.encode_ids(text, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty())
    throw make_error(ErrorCode::usage, "the prompt is empty and the model adds no BOS token; give one with -p");
  gopt.n_keep = tokens_to_keep(m.tok, prompt, f.keep);
  infer::GenerateEvents ev;
  ev.piece = [&](TokenId id) { return m.tok.token_piece(id, false); };
  // On a terminal the text and stderr share the screen: a note would cut into a word, so the
  // notes wait for the end of the text there (as in --chat); otherwise they go out as they happen.
  const bool shared_screen = ::isatty(STDOUT_FILENO) != 0 && ::isatty(STDERR_FILENO) != 0;
  std::string notes;
  if (!f.quiet)
    ev.on_shift = [&session, &notes, shared_screen](uint32_t kept, uint32_t dropped) {
      if (shared_screen) notes += shift_note(session, kept, dropped);
      else std::fputs(shift_note(session, kept, dropped).c_str(), stderr);
    };
  if (f.json) {
    ev.on_token = [](TokenId id, std::string_view piece) {
      JsonWriter j(false);
      j.begin_object().key("id").value(static_cast<int64_t>(id)).key("piece").value(piece);
      if (!is_valid_utf8(piece)) {
        // A token can end mid-character; "piece" then shows U+FFFD and "bytes" has the truth.
        j.key("bytes").begin_array();
        for (char c : piece) j.value(static_cast<uint64_t>(static_cast<unsigned char>(c)));
        j.end_array();
      }
      j.end_object();
      write_out(j.str() + "\n");
    };
  } else {
    if (!f.no_echo) write_out(text);
    ev.on_text = write_out;
  }
  const std::vector<TokenId> eog = m.tok.eog_ids();
  infer::GenerateResult r = infer::generate(session, prompt, eog, gopt, ev, &interrupted);
  warn_if_full(r, gopt);
  if (f.json) write_out(json_summary(r, prompt, gopt.sampling.seed));
  else if (!r.text.empty() && r.text.back() != '\n') write_out("\n");
  std::fputs(notes.c_str(), stderr);
  if (!f.quiet) std::fprintf(stderr, "%s\n", timings(r).c_str());
  return r.reason == infer::StopReason::interrupt ? static_cast<int>(ErrorCode::interrupted) : 0;
}

// The chat format: BitNet b1.58 2B-4T's trained one (SPEC.md 4.1) when the vocabulary has
// <|eot_id|>, else a plain "User:/Assistant:" transcript for models without chat training.
struct ChatFormat {
  bool trained = false;
  // What the first turn starts with: the system message, which a context shift keeps.
  std::string system_part(const std::string& system) const {
    std::string t;
    if (system.empty()) return t;
    if (trained) {
      t += "System: ";
      t += system;
      t += "<|eot_id|>";
    } else {
      t += system;
      t += "\n";
    }
    return t;
  }
  std::string turn(const std::string& user, bool first, bool after_eog, const std::string& system) const {
    std::string t;
    if (trained) {
      if (!first && after_eog) t += "<|eot_id|>";
      if (first) t += system_part(system);
      return t + "User: " + user + "<|eot_id|>Assistant: ";
    }
    if (first) t += system_part(system);
    return t + (first ? "" : "\n") + "User: " + user + "\nAssistant:";
  }
};

// The tokens of a chat's first turn a context shift keeps: BOS and the system message (as far as
// the turn's own tokens agree with those of the system part alone), or more with --keep.
uint32_t chat_tokens_to_keep(const tokenizer::Tokenizer& tok, std::span<const TokenId> first_turn,
                             const std::string& system_part, int32_t keep) {
  const std::vector<TokenId> sys = tok.encode_ids(system_part, /*add_special=*/true, /*parse_special=*/true);
  size_t same = 0;
  while (same < sys.size() && same < first_turn.size() && sys[same] == first_turn[same]) ++same;
  return std::max(static_cast<uint32_t>(same), tokens_to_keep(tok, first_turn, keep));
}

int run_chat(const GenerateFlags& f, Loaded& m, infer::Session& session, infer::GenerateOptions gopt,
             const std::atomic<bool>& interrupted) {
  static log::Logger& lg = log::get("generate");
  if (f.json) throw make_error(ErrorCode::usage, "--chat and --json cannot be combined");
  ChatFormat fmt_;
  fmt_.trained = m.tok.encode_ids("<|eot_id|>", false, true).size() == 1;  // one special token
  if (!fmt_.trained) {
    log::warn(lg, "this model has no chat tokens (<|eot_id|>); using a plain User:/Assistant: transcript");
    gopt.stop.push_back("\nUser:");
  }
  const bool tty = ::isatty(STDIN_FILENO);
  const std::vector<TokenId> eog = m.tok.eog_ids();
  bool first = true, after_eog = false;
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line.empty()) continue;
    std::string text = fmt_.turn(line, first, after_eog, f.system);
    std::vector<TokenId> ids = m.tok.encode_ids(text, /*add_special=*/first, /*parse_special=*/true);
    if (first) gopt.n_keep = chat_tokens_to_keep(m.tok, ids, fmt_.system_part(f.system), f.keep);
    infer::GenerateEvents ev;
    ev.piece = [&](TokenId id) { return m.tok.token_piece(id, false); };
    ev.on_text = write_out;
    // A conversation shares the terminal with stderr: the notes of shifts wait for the reply's end.
    std::string notes;
    ev.on_shift = [&](uint32_t kept, uint32_t dropped) {
      if (!f.quiet) notes += shift_note(session, kept, dropped);
    };
    infer::GenerateResult r = infer::generate(session, ids, eog, gopt, ev, &interrupted);
    write_out("\n");
    log::info(lg, "{}", timings(r));
    if (r.reason == infer::StopReason::interrupt) return static_cast<int>(ErrorCode::interrupted);
    warn_if_full(r, gopt);
    // The reply's tokens except the last were fed; feed the last so the cache holds the turn.
    if (r.reason != infer::StopReason::eos && !r.tokens.empty()) {
      const infer::ShiftResult s = infer::make_room(session, 1, gopt);
      if (s.dropped > 0) ev.on_shift(s.kept, s.dropped);
      if (session.n_past() < session.n_ctx()) {
        const TokenId last = r.tokens.back();
        session.eval(std::span<const TokenId>(&last, 1));
      }
    }
    std::fputs(notes.c_str(), stderr);
    after_eog = r.reason == infer::StopReason::eos;
    first = false;
  }
  return 0;
}

// A float in (0, max], the message worded as CLI::Range's.
CLI::Validator positive_up_to(float max) {
  return CLI::Validator(
      [max](std::string& text) -> std::string {
        float v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "Value " + text + " is not a number";
        if (!(v > 0.0f && v <= max)) return fmt::format("Value {} not in range above 0 to {}", text, max);
        return "";
      },
      fmt::format("(0 - {}]", max));
}

}  // namespace

RunFn setup_generate(CLI::App& sub) {
  auto f = std::make_shared<GenerateFlags>();
  add_engine_flags(sub, f->engine, {.ctx = true, .pre = true, .kv = true});
  CLI::Option* prompt = sub.add_option("-p,--prompt", f->prompt, "Prompt text (else -f FILE, else stdin when it is not a terminal)")
                            ->each([f](const std::string&) { f->prompt_given = true; });
  // Two prompts, or a system message without a chat, are errors rather than one silently winning.
  sub.add_option("-f,--file", f->prompt_file, "Read the prompt from FILE (- for standard input)")->excludes(prompt);
  sub.add_flag("--no-stdin", f->no_stdin, "Never read the prompt from standard input (scripts; without -p: from BOS)");
  sub.add_flag("-e,--escape,!--no-escape", f->escape,
               "Turn \\n, \\r, \\t, \\\\, \\\" and \\' in -p into characters (on by default, as llama-cli; --no-escape: off)");
  constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();
  sub.add_option("-n,--n-predict", f->n_predict,
                 "Tokens to generate (-1: until end of generation; a full context is shifted, see --no-context-shift)")
      ->check(CLI::Range(-1, kIntMax));
  sub.add_option("--temp", f->temp, "Temperature; 0 = greedy")->check(CLI::Range(0.0f, 100.0f));
  sub.add_option("--top-k", f->top_k, "Keep the K most likely tokens (0: off)")->check(CLI::Range(0, kIntMax));
  sub.add_option("--top-p", f->top_p, "Nucleus sampling threshold (1: off)")->check(CLI::Range(0.0f, 1.0f));
  sub.add_option("--min-p", f->min_p, "Drop tokens below min-p x the best probability (0: off)")->check(CLI::Range(0.0f, 1.0f));
  // Above 0: a penalty of 0 divides the logits of every recent token by zero.
  sub.add_option("--repeat-penalty", f->repeat_penalty, "Penalty for tokens seen in the last --repeat-last-n (1: off)")
      ->check(positive_up_to(100.0f));
  sub.add_option("--repeat-last-n", f->repeat_last_n, "Window for the repeat penalty (0: off)")
      ->check(CLI::Range(0, kIntMax));
  sub.add_option("--seed", f->seed, "Random seed (default: from the clock, printed with -v)");
  sub.add_option("--stop", f->stop, "Stop when this text appears (repeatable); it is not printed");
  sub.add_flag("--ignore-eos", f->ignore_eos, "Keep going past end-of-generation tokens");
  sub.add_flag("--check-tensors", f->check_tensors, "First read every weight and refuse NaN or Inf (names the tensor)");
  CLI::Option* chat = sub.add_flag("--chat", f->chat, "Interactive conversation in the model's chat format");
  sub.add_flag("--json", f->json, "One JSON object per token, then a summary line");
  sub.add_flag("--no-echo", f->no_echo, "Do not print the prompt before the continuation");
  sub.add_option("--system", f->system, "With --chat: a system message for the conversation")->needs(chat);
  sub.add_option("--keep", f->keep,
                 "Prompt tokens after BOS that a context shift keeps (default 0; -1: the whole prompt; --chat also "
                 "keeps the --system message)")
      ->check(CLI::Range(-1, kIntMax));
  sub.add_flag("--no-context-shift", f->no_context_shift,
               "A full context stops generation (stop: ctx; a --chat turn that does not fit: exit 3). By default it "
               "is shifted, as llama-cli: BOS and --keep tokens stay, the older half of the rest is dropped");
  sub.add_flag("--exact-logits", f->exact_logits,
               "Compute every logit at every step. By default only those the sampler can pick (greedy: the best; "
               "--top-k K: the K best; --top-k 0: all) are computed exactly, screened through an int8 copy of the "
               "output matrix with a proven error bound: the same tokens, fewer bytes read per token");
  sub.footer("Examples:\n  bitnet generate -p \"Once upon a time\"\n"
             "  bitnet generate -m model.gguf -p \"The capital of France is\" -n 16 --temp 0\n"
             "  echo \"Hello\" | bitnet generate -m model.gguf --json");
  return [f](const Context& ctx) {
    f->quiet = ctx.quiet;
    static log::Logger& lg = log::get("generate");
    const std::atomic<bool>& interrupted = install_interrupt_handler();
    Engine e = resolve_engine(ctx, f->engine, {.model = true, .vocab = true, .pool = true});
    if (f->check_tensors)
      if (const diag::TensorCheckResult c = diag::check_tensor_values(e.model->file()); c.problem)
        throw make_error(ErrorCode::invalid_input, "{}: {}: the weights are not finite", e.model_path.string(), *c.problem);
    Loaded m{std::move(e.model), std::move(*e.tokenizer)};
    infer::SessionOptions so;
    so.pool = e.pool.get();
    so.n_ctx = e.n_ctx;
    so.kv_type = e.kv_type;
    so.screen_output = !f->exact_logits;
    infer::Session session(*m.model, *e.kernels, so);
    infer::GenerateOptions g;
    g.n_predict = f->n_predict;
    g.stop = f->stop;
    g.ignore_eos = f->ignore_eos;
    g.context_shift = !f->no_context_shift;
    g.exact_logits = f->exact_logits;
    g.sampling.temp = f->temp;
    g.sampling.top_k = f->top_k;
    g.sampling.top_p = f->top_p;
    g.sampling.min_p = f->min_p;
    g.sampling.repeat_penalty = f->repeat_penalty;
    g.sampling.repeat_last_n = f->repeat_last_n;
    g.sampling.seed = f->seed >= 0 ? static_cast<uint64_t>(f->seed)
                                   : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    log::info(lg, "backend {}, {} threads, seed {}, context {}", e.kernels->name, e.threads, g.sampling.seed, session.n_ctx());
    if (f->chat) return run_chat(*f, m, session, g, interrupted);
    return run_once(*f, m, session, g, interrupted);
  };
}

}  // namespace bitnet::app
