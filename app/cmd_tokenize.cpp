// `bitnet tokenize -m MODEL [TEXT | -p TEXT | -f FILE | stdin]`: text -> token ids (as a list,
// one piece per line, or JSON), and `--decode IDS`: ids -> text. Defaults match llama.cpp's
// llama-tokenize: BOS as the model asks, special tokens parsed.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/text_file.hpp"
#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/log.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/utf8.hpp"
#include "core/tokenizer/vocab_gguf.hpp"

namespace bitnet::app {
namespace {

struct TokenizeOptions {
  EngineFlags engine;  // -m, --pre, and -t for a synthetic model
  std::string text;    // positional TEXT
  std::string prompt;  // -p
  std::string file;    // -f
  std::string decode;  // --decode "1 2 3"
  bool ids = false;
  bool pieces = false;
  bool json = false;
  bool no_bos = false;
  bool no_parse_special = false;
  bool from_stdin = false;  // --stdin, as llama-tokenize
  bool show_count = false;  // llama-tokenize's "Total number of tokens: N" line
};

[[noreturn]] void usage(const std::string& msg) { throw Error(ErrorCode::usage, msg); }

std::string read_stdin() {
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

// "1 2 3", "1,2,3" and the "[1, 2, 3]" this command prints are all accepted.
std::vector<TokenId> parse_ids(const std::string& s, uint32_t n_tokens) {
  std::vector<TokenId> ids;
  size_t i = 0;
  auto separator = [](char c) { return c == ' ' || c == ',' || c == '[' || c == ']' || c == '\t' || c == '\n' || c == '\r'; };
  while (i < s.size()) {
    if (separator(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !separator(s[j])) ++j;
    std::string word = s.substr(i, j - i);
    uint64_t v = 0;
    bool ok = word.size() <= 10;
    for (char c : word) ok = ok && c >= '0' && c <= '9';
    if (ok) v = std::stoull(word);
    if (!ok) usage(fmt::format("--decode: '{}' is not a token id", word));
    if (v >= n_tokens) usage(fmt::format("--decode: token id {} is outside the vocabulary of {} tokens", v, n_tokens));
    ids.push_back(static_cast<TokenId>(v));
    i = j;
  }
  return ids;
}

// One readable line per piece: valid UTF-8 stays, control and invalid bytes become escapes.
std::string escape_piece(const std::string& p) {
  std::string out;
  for (size_t i = 0; i < p.size();) {
    const auto c = static_cast<unsigned char>(p[i]);
    size_t len = 1;
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F || !tokenizer::decode_utf8(p, i, len)) {
      out += fmt::format("\\x{:02x}", c);
      len = 1;
    } else {
      out.append(p, i, len);
    }
    i += len;
  }
  return out;
}

std::string ids_line(const std::vector<TokenId>& ids) {
  std::string o = "[";
  for (size_t i = 0; i < ids.size(); ++i) o += (i ? ", " : "") + std::to_string(ids[i]);
  return o + "]\n";
}

std::string pieces_lines(const tokenizer::Tokenizer& tok, const std::vector<TokenId>& ids) {
  std::string o;
  for (TokenId id : ids) o += fmt::format("{:>6} -> '{}'\n", id, escape_piece(tok.token_piece(id)));
  return o;
}

std::string json_object(const tokenizer::Tokenizer& tok, const tokenizer::Encoding& enc, const std::string* text) {
  JsonWriter j(false);
  j.begin_object();
  j.key("ids").begin_array();
  for (TokenId id : enc.ids) j.value(static_cast<uint64_t>(id));
  j.end_array();
  // JSON strings must be valid UTF-8: a piece holding part of a character (a byte token) shows
  // U+FFFD there; the offsets still locate the exact input bytes.
  j.key("pieces").begin_array();
  for (TokenId id : enc.ids) j.value(tokenizer::to_valid_utf8(tok.token_piece(id)));
  j.end_array();
  if (!enc.spans.empty() || !text) {
    j.key("offsets").begin_array();
    for (const auto& s : enc.spans) j.begin_array().value(static_cast<uint64_t>(s.begin)).value(static_cast<uint64_t>(s.end)).end_array();
    j.end_array();
  }
  if (text) j.key("text").value(tokenizer::to_valid_utf8(*text));
  j.end_object();
  return j.str() + "\n";
}

void write_out(const std::string& s) { write_stdout(s); }

}  // namespace

RunFn setup_tokenize(CLI::App& sub) {
  auto opt = std::make_shared<TokenizeOptions>();
  add_engine_flags(sub, opt->engine,
                   {.backend = false, .pre = true, .threads_help = "Threads for generating a synthetic model (default: all cores)"});
  // Counted rather than tested for emptiness: "" is a valid text to tokenize.
  CLI::Option* text_opt = sub.add_option("TEXT", opt->text, "Text to tokenize (else -p, -f, or standard input)");
  CLI::Option* prompt_opt = sub.add_option("-p,--prompt", opt->prompt, "Text to tokenize");
  CLI::Option* file_opt = sub.add_option("-f,--file", opt->file, "Read the text from this file (bytes as they are)");
  CLI::Option* ids_flag = sub.add_flag("--ids", opt->ids, "Print the ids as [1, 15043, ...] (the default)");
  sub.add_flag("--pieces", opt->pieces, "Print one 'id -> piece' line per token")->excludes(ids_flag);
  sub.add_flag("--json", opt->json, "Print {\"ids\": [...], \"pieces\": [...], \"offsets\": [[begin, end], ...]}");
  sub.add_flag("--no-bos", opt->no_bos, "Do not add BOS/EOS even if the model asks for them");
  sub.add_flag("--no-parse-special", opt->no_parse_special,
               "Treat control-token text like <|eot_id|> as plain text (with --decode: omit control tokens)");
  CLI::Option* stdin_opt =
      sub.add_flag("--stdin", opt->from_stdin, "Read the text from standard input (the default without TEXT, -p or -f)");
  sub.add_flag("--show-count", opt->show_count, "Also print 'Total number of tokens: N' (llama-tokenize's line)")
      ->excludes("--json");
  CLI::Option* decode_opt = sub.add_option("--decode", opt->decode, "Decode these ids instead (\"1 15043 3186\" or \"[1, 15043, 3186]\")");
  sub.footer("Examples:\n  bitnet tokenize -m fixture:stories260K \"Once upon a time\"\n"
             "  echo 'Hello world' | bitnet tokenize -m model.gguf --pieces\n"
             "  bitnet tokenize -m model.gguf --decode \"1 15043 3186\"\n"
             "Exit status 2 for bad flags, 3 for an unreadable model or text file.");
  return [opt, text_opt, prompt_opt, file_opt, stdin_opt, decode_opt](const Context& ctx) {
    static log::Logger& lg = log::get("tokenizer");
    const bool decode = decode_opt->count() > 0;
    const int sources =
        (text_opt->count() > 0) + (prompt_opt->count() > 0) + (file_opt->count() > 0) + (stdin_opt->count() > 0);
    if (sources > 1) usage("give the text only once: TEXT, -p, -f or --stdin");
    if (decode && sources) usage("--decode takes ids, not text; drop TEXT/-p/-f/--stdin");

    auto t0 = std::chrono::steady_clock::now();
    Engine e = resolve_engine(ctx, opt->engine, {.vocab = true});
    const tokenizer::Tokenizer& tok = *e.tokenizer;
    log::debug(lg, "vocabulary of {} loaded in {:.1f} ms", e.model_path.string(),
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());

    if (decode) {
      std::vector<TokenId> ids = parse_ids(opt->decode, tok.n_tokens());
      std::string text = tok.decode(ids, {.remove_special = false, .unparse_special = !opt->no_parse_special, .clean_spaces = std::nullopt});
      if (opt->json) {
        tokenizer::Encoding enc{ids, {}};
        write_out(json_object(tok, enc, &text));
      } else if (opt->pieces) {
        write_out(pieces_lines(tok, ids));
      } else {
        write_out(text + "\n");
      }
      return 0;
    }

    std::string text = text_opt->count() ? opt->text : prompt_opt->count() ? opt->prompt
                       : file_opt->count() ? read_text_file(opt->file, "the text file") : read_stdin();
    auto t1 = std::chrono::steady_clock::now();
    // As llama-tokenize: add_special follows the model's add_bos (so EOS, too, only then).
    const bool add_special = tok.vocab().add_bos && !opt->no_bos;
    tokenizer::Encoding enc = tok.encode(text, {.add_special = add_special, .parse_special = !opt->no_parse_special});
    log::debug(lg, "{} bytes -> {} tokens in {:.2f} ms", text.size(), enc.ids.size(),
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count());
    if (opt->json) write_out(json_object(tok, enc, nullptr));
    else if (opt->pieces) write_out(pieces_lines(tok, enc.ids));
    else write_out(ids_line(enc.ids));
    if (opt->show_count) write_out(fmt::format("Total number of tokens: {}\n", enc.ids.size()));
    return 0;
  };
}

}  // namespace bitnet::app
