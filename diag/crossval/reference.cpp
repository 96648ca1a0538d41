// REF spellings and the child-process reference runner (request out, golden in).
#include "diag/crossval/reference.hpp"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <simdjson.h>

#include "core/base/error.hpp"
#include "core/base/json_writer.hpp"
#include "core/base/temp_files.hpp"
#include "diag/crossval/child_process.hpp"

namespace bitnet::diag {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// The last few lines of a reference's stderr, indented, for an error's "caused by".
std::string stderr_tail(const std::string& err, size_t max_lines = 12) {
  std::vector<std::string_view> lines;
  std::string_view s = err;
  while (!s.empty()) {
    const size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
  }
  if (lines.empty()) return "";
  std::string out = "its stderr ended with:";
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i)
    out += "\n    | " + std::string(lines[i]);
  return out;
}

}  // namespace

ReferenceSpec parse_reference(std::string_view spec, const std::filesystem::path& llama_dir, int threads) {
  ReferenceSpec r;
  r.text = std::string(spec);
  if (starts_with(spec, "golden:")) {
    r.kind = RefKind::golden;
    r.file = std::string(spec.substr(7));
    if (r.file.empty()) throw make_error(ErrorCode::usage, "--reference golden:FILE needs a file");
  } else if (starts_with(spec, "cmd:")) {
    r.kind = RefKind::command;
    r.argv = split_command(spec.substr(4));
    if (r.argv.empty()) throw make_error(ErrorCode::usage, "--reference cmd:COMMAND needs a command");
  } else if (starts_with(spec, "backend:")) {
    r.kind = RefKind::backend;
    r.backend = std::string(spec.substr(8));
    if (r.backend.empty()) throw make_error(ErrorCode::usage, "--reference backend:NAME needs a backend name");
  } else if (spec == "llama.cpp" || starts_with(spec, "llama.cpp:")) {
    r.kind = RefKind::llama_cpp;
    std::filesystem::path dir = spec.size() > 10 ? std::filesystem::path(std::string(spec.substr(10))) : llama_dir;
    if (dir.empty())
      throw make_error(ErrorCode::fixture,
                       "the llama.cpp reference is not set up: run scripts/setup-llama-reference and set "
                       "BITNET_LLAMA_DIR to the directory it prints, or give --reference llama.cpp:DIR");
    const std::filesystem::path adapter = dir / kLlamaAdapter;
    if (!std::filesystem::exists(adapter))
      throw make_error(ErrorCode::fixture, "no llama.cpp adapter at {} (run scripts/setup-llama-reference; it prints the DIR)",
                       adapter.string());
    r.argv = {adapter.string(), "--threads", std::to_string(threads > 0 ? threads : 1)};
  } else if (spec == "float" || starts_with(spec, "float:")) {
    r.kind = RefKind::float_oracle;
    r.activations = spec.size() > 6 ? std::string(spec.substr(6)) : "exact";
    if (r.activations != "exact" && r.activations != "q8_k" && r.activations != "i8")
      throw make_error(ErrorCode::usage,
                       "--reference {}: the float oracle's activations are exact (float), q8_k (llama.cpp's TQ "
                       "scheme) or i8 (bitnet.cpp's I2_S scheme)", spec);
  } else {
    throw make_error(ErrorCode::usage,
                     "unknown reference '{}' (expected llama.cpp[:DIR], cmd:COMMAND, golden:FILE, backend:NAME or "
                     "float[:exact|q8_k|i8])", spec);
  }
  return r;
}

namespace {

// "reference 'CMD' WHAT", then the details, then the tail of its stderr (where people look).
Error reference_error(const std::string& cmd, const ChildResult& c, ErrorCode code, const std::string& what,
                      const std::string& detail = "") {
  std::string tail = stderr_tail(c.err);
  Error e(code, tail.empty() ? "it printed nothing on stderr" : tail);
  if (!detail.empty()) e.wrap(detail);
  return e.wrap(fmt::format("reference '{}' {}", cmd, what));
}

// Runs the reference on one request; throws unless it exited 0 within the timeout.
ChildResult run_reference_child(const ReferenceSpec& ref, const std::string& request, std::chrono::milliseconds timeout,
                                const std::atomic<bool>* cancel) {
  const std::string cmd = command_line(ref.argv);
  ChildOptions opt;
  opt.timeout = timeout;
  opt.cancel = cancel;
  ChildResult c;
  try {
    c = run_child(ref.argv, request, opt);
  } catch (Error& e) {
    throw e.wrap(fmt::format("reference '{}' could not be started", cmd));
  }
  if (c.cancelled) throw make_error(ErrorCode::interrupted, "cancelled while reference '{}' was running (it was stopped)", cmd);
  if (c.timed_out) {
    // Where it hung, one "tid (name) state S, waiting in WCHAN" per thread, on one line.
    std::string threads = c.threads_at_timeout;
    for (size_t nl; (nl = threads.find('\n')) != std::string::npos && nl + 1 < threads.size();) threads.replace(nl, 1, "; ");
    if (!threads.empty() && threads.back() == '\n') threads.pop_back();
    throw reference_error(cmd, c, ErrorCode::timeout,
                          fmt::format("did not finish within the {:g} s timeout and was killed (raise {})",
                                      std::chrono::duration<double>(timeout).count(), ref.timeout_flag),
                          threads.empty() ? "" : "its threads when it was stopped: " + threads);
  }
  if (c.signal != 0)
    throw reference_error(cmd, c, ErrorCode::failure,
                          fmt::format("crashed: killed by signal {} ({})", c.signal, ::strsignal(c.signal)));
  if (c.exit_code != 0) throw reference_error(cmd, c, ErrorCode::failure, fmt::format("exited with status {}", c.exit_code));
  if (c.output_truncated) throw reference_error(cmd, c, ErrorCode::failure, "printed more than the output limit");
  return c;
}

// A request's opening: the model and, when given, llama.cpp's cache types and flash attention.
void begin_request(JsonWriter& j, const std::filesystem::path& model, const std::string& kv_type,
                   const std::string& flash_attn) {
  j.begin_object().key("model").value(model.string());
  if (!kv_type.empty()) j.key("type_k").value(kv_type).key("type_v").value(kv_type);
  if (!flash_attn.empty()) j.key("flash_attn").value(flash_attn);
}

}  // namespace

RefRun run_command_reference(const ReferenceSpec& ref, const RefRequest& req, std::chrono::milliseconds timeout) {
  JsonWriter j(false);
  j.begin_object()
      .key("model")
      .value(req.model.string())
      .key("prompt")
      .value(req.prompt)
      .key("n_predict")
      .value(static_cast<uint64_t>(req.n_predict))
      .key("top_k")
      .value(static_cast<uint64_t>(req.top_k))
      .end_object();
  const std::string cmd = command_line(ref.argv);
  ChildResult c = run_reference_child(ref, j.str() + "\n", timeout, req.cancel);
  RefRun run;
  try {
    run.golden = parse_golden(c.out, fmt::format("the output of '{}'", cmd));
  } catch (const Error& e) {
    throw reference_error(cmd, c, ErrorCode::failure, "printed something that is not the golden format", e.chain().front());
  }
  run.err = c.err;
  run.seconds = c.seconds;
  return run;
}

RefBenchRun parse_bench_answer(std::string_view out, int32_t n_pp, int32_t n_tg) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(simdjson::padded_string(out)).get(doc))
    throw make_error(ErrorCode::failure, "not JSON: {}", simdjson::error_message(err));
  auto read = [&](const char* key, std::vector<double>& dst, int32_t want_n) {
    simdjson::dom::array a;
    if (doc[key].get_array().get(a)) throw make_error(ErrorCode::failure, "no \"{}\" array", key);
    for (simdjson::dom::element e : a) {
      double v = 0;
      if (e.get_double().get(v) || !(v > 0))
        throw make_error(ErrorCode::failure, "\"{}\" holds something that is not a positive number", key);
      dst.push_back(v);
    }
    if (dst.size() != static_cast<size_t>(want_n))
      throw make_error(ErrorCode::failure, "\"{}\" has {} samples, {} were asked for", key, dst.size(), want_n);
  };
  RefBenchRun run;
  read("pp_seconds", run.pp_seconds, n_pp);
  read("tg_seconds", run.tg_seconds, n_tg);
  return run;
}

RefBenchRun run_reference_bench(const ReferenceSpec& ref, const RefBenchRequest& req, std::chrono::milliseconds timeout) {
  JsonWriter j(false);
  begin_request(j, req.model, req.kv_type, req.flash_attn);
  j.key("bench").begin_object();
  j.key("n_prompt").value(static_cast<int64_t>(req.n_prompt)).key("n_gen").value(static_cast<int64_t>(req.n_gen));
  j.key("n_depth").value(static_cast<int64_t>(req.n_depth));
  j.key("reps").value(static_cast<int64_t>(req.reps)).key("threads").value(static_cast<int64_t>(req.threads));
  j.end_object().end_object();
  const std::string cmd = command_line(ref.argv);
  ChildResult c = run_reference_child(ref, j.str() + "\n", timeout, req.cancel);
  try {
    return parse_bench_answer(c.out, req.n_prompt > 0 ? req.reps : 0, req.n_gen > 0 ? req.reps : 0);
  } catch (const Error& e) {
    throw reference_error(cmd, c, ErrorCode::failure, "printed something that is not a bench answer", e.what());
  }
}

RefLogits run_reference_logits(const ReferenceSpec& ref, const RefLogitsRequest& req, uint32_t n_vocab,
                               std::chrono::milliseconds timeout) {
  // The adapter writes the rows to a file of ours (they are too many for JSON), named with our PID
  // and removed whatever happens, also on Ctrl-C.
  TempFile file(std::filesystem::temp_directory_path() / "bitnet-reference-logits");
  JsonWriter j(false);
  begin_request(j, req.model, req.kv_type, req.flash_attn);
  j.key("logits").begin_object();
  j.key("tokens").begin_array();
  for (TokenId id : req.tokens) j.value(static_cast<int64_t>(id));
  j.end_array();
  j.key("from").value(static_cast<uint64_t>(req.from)).key("file").value(file.path().string());
  j.end_object().end_object();
  const std::string cmd = command_line(ref.argv);
  ChildResult c = run_reference_child(ref, j.str() + "\n", timeout, req.cancel);
  const uint64_t rows = req.tokens.size() - req.from;
  RefLogits r;
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(simdjson::padded_string(c.out)).get(doc))
      throw make_error(ErrorCode::failure, "not JSON: {}", simdjson::error_message(err));
    uint64_t v = 0, n = 0;
    if (doc["n_vocab"].get_uint64().get(v) || doc["rows"].get_uint64().get(n))
      throw make_error(ErrorCode::failure, "no \"n_vocab\" and \"rows\" numbers");
    if (v != n_vocab) throw make_error(ErrorCode::failure, "a vocabulary of {} tokens, the model has {}", v, n_vocab);
    if (n != rows) throw make_error(ErrorCode::failure, "{} rows of logits, {} were asked for", n, rows);
    r.n_vocab = n_vocab;
    r.logits.resize(rows * n_vocab);
    std::ifstream in(file.path(), std::ios::binary);
    const auto bytes = static_cast<std::streamsize>(r.logits.size() * sizeof(float));
    if (!in.read(reinterpret_cast<char*>(r.logits.data()), bytes) || in.peek() != std::ifstream::traits_type::eof())
      throw make_error(ErrorCode::failure, "its logits file does not hold {} bytes", bytes);
  } catch (const Error& e) {
    throw reference_error(cmd, c, ErrorCode::failure, "gave no logits answer", e.what());
  }
  return r;
}

TapCapture run_reference_taps(const ReferenceSpec& ref, const RefTapsRequest& req, std::chrono::milliseconds timeout) {
  TempFile file(std::filesystem::temp_directory_path() / "bitnet-reference-taps");
  JsonWriter j(false);
  begin_request(j, req.model, req.kv_type, req.flash_attn);
  j.key("taps").begin_object().key("tokens").begin_array();
  for (TokenId id : req.tokens) j.value(static_cast<int64_t>(id));
  j.end_array().key("file").value(file.path().string()).end_object().end_object();
  const std::string cmd = command_line(ref.argv);
  ChildResult c = run_reference_child(ref, j.str() + "\n", timeout, req.cancel);
  TapCapture taps;
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(simdjson::padded_string(c.out)).get(doc))
      throw make_error(ErrorCode::failure, "not JSON: {}", simdjson::error_message(err));
    simdjson::dom::array list;
    if (doc["taps"].get_array().get(list)) throw make_error(ErrorCode::failure, "no \"taps\" array");
    std::ifstream in(file.path(), std::ios::binary);
    for (simdjson::dom::element e : list) {
      std::string_view name;
      int64_t layer = 0;
      uint64_t width = 0;
      if (e["name"].get_string().get(name) || e["layer"].get_int64().get(layer) || e["width"].get_uint64().get(width) ||
          width == 0 || width > (1u << 24))
        throw make_error(ErrorCode::failure, "a tap without a name, layer and width");
      CapturedTap t{std::string(name), static_cast<int32_t>(layer), std::vector<float>(width)};
      if (!in.read(reinterpret_cast<char*>(t.values.data()), static_cast<std::streamsize>(width * sizeof(float))))
        throw make_error(ErrorCode::failure, "its taps file ends before tap {} of layer {}", name, layer);
      taps.push_back(std::move(t));
    }
  } catch (const Error& e) {
    throw reference_error(cmd, c, ErrorCode::failure, "gave no taps answer", e.what());
  }
  // llama.cpp's names for what ours calls attn_out and (arch bitnet) ffn_out.
  auto named = [&](const std::string& n, int32_t layer) {
    return std::any_of(taps.begin(), taps.end(), [&](const CapturedTap& t) { return t.name == n && t.layer == layer; });
  };
  for (CapturedTap& t : taps) {
    if (t.name == "attn_o_out") t.name = "attn_out";
    else if (t.name == "ffn_down" && !named("ffn_out", t.layer)) t.name = "ffn_out";
  }
  return taps;
}

}  // namespace bitnet::diag
