// bitnet-llama-ref: llama.cpp behind the crossval reference protocol (CLI.md, fixtures/README.md).
// Reads {"model", "prompt", "n_predict", "top_k"} on stdin, runs llama.cpp greedily through its
// C API and writes the golden format on stdout. Built by scripts/setup-llama-reference.
// Bench mode (`bitnet bench --reference`): {"model", "bench": {"n_prompt", "n_gen", "n_depth", "reps",
// "threads"}} runs llama-bench's pp and tg tests (after n_depth tokens of context) and writes
// {"pp_seconds": [...], "tg_seconds": [...]}.
// Logits mode (`bitnet perplexity --reference`): {"model", "logits": {"tokens": [...], "from": F, "file":
// PATH}} evaluates the tokens from position 0 in one batch and writes the logits of positions F.. as
// little-endian f32 rows of n_vocab to PATH, then {"n_vocab": V, "rows": N} on stdout.
// Taps mode (`bitnet crossval --layers --reference llama.cpp`): {"model", "taps": {"tokens": [...],
// "file": PATH}} evaluates the tokens in one batch and, through llama.cpp's eval callback, keeps the
// last position's row of every tensor named as a tap (attn_norm-0, Qcur-0, ..., l_out-0, ...,
// result_norm, result_output); writes them as f32 to PATH and their list on stdout:
// {"taps": [{"name": "attn_norm", "layer": 0, "width": 64}, ...]}.
// Any request may set the KV cache types and flash attention: "type_k", "type_v", "flash_attn".
// Quantize mode (`--quantize IN OUT TYPE`): llama.cpp's own quantizer, for benchmarking the files
// its users have (TQ1_0/TQ2_0 layers with its default Q6_K embedding/output).
// BITNET_LLAMA_CPU=NAME loads only lib/libggml-cpu-NAME.so (e.g. haswell: llama.cpp's AVX2 kernels)
// instead of the best variant for this CPU, to compare like with like against our AVX2 table.
// -DBITNET_LLAMA_LEGACY_API builds it against the late-2024 llama.h (before llama_vocab), the API of
// bitnet.cpp's llama.cpp fork (docs/crossval.md).
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "llama.h"

#ifdef BITNET_LLAMA_LEGACY_API
// The 2024 API asked the model for what the vocabulary answers now; same semantics, older names.
using llama_vocab = llama_model;
static const llama_model* llama_model_get_vocab(const llama_model* m) { return m; }
static int32_t llama_vocab_n_tokens(const llama_model* m) { return llama_n_vocab(m); }
static llama_token llama_vocab_bos(const llama_model* m) { return llama_token_bos(m); }
static llama_token llama_vocab_eos(const llama_model* m) { return llama_token_eos(m); }
static llama_token llama_vocab_eot(const llama_model* m) { return llama_token_eot(m); }
// bool in late 2024, int32 (-1 unknown) before: "> 0" reads both.
static bool llama_vocab_get_add_bos(const llama_model* m) { return llama_add_bos_token(m) > 0; }
static llama_model* llama_model_load_from_file(const char* path, llama_model_params p) {
  return llama_load_model_from_file(path, p);
}
static llama_context* llama_init_from_model(llama_model* m, llama_context_params p) {
  return llama_new_context_with_model(m, p);
}
static void llama_model_free(llama_model* m) { llama_free_model(m); }
static const char* llama_version() { return "(2024 API)"; }
// The KV cache was the context's own then.
using llama_memory_t = llama_context*;
static llama_memory_t llama_get_memory(llama_context* ctx) { return ctx; }
static bool llama_memory_seq_rm(llama_memory_t ctx, llama_seq_id seq, llama_pos p0, llama_pos p1) {
  return llama_kv_cache_seq_rm(ctx, seq, p0, p1);
}
#endif

#ifndef LLAMA_TOKEN_NULL
#define LLAMA_TOKEN_NULL -1
#endif

namespace {

bool g_verbose = false;

[[noreturn]] void fail(int code, const std::string& msg) {
  std::fprintf(stderr, "bitnet-llama-ref: %s\n", msg.c_str());
  std::exit(code);
}

// llama.cpp logs a lot at load; keep its warnings and errors (they explain a failed load).
void log_sink(ggml_log_level level, const char* text, void*) {
  if (g_verbose || level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct Bench {
  bool on = false;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int64_t n_depth = 0;
  int64_t reps = 5;
  int64_t threads = 0;  // 0: --threads
};

// Cache and attention settings a request may give (llama.cpp's -ctk, -ctv, -fa); unset: its defaults.
struct CacheSettings {
  std::string type_k, type_v;  // "f16", "f32", "q8_0"
  std::string flash_attn;      // "on", "off", "auto"
};

struct Logits {
  bool on = false;
  std::vector<llama_token> tokens;
  int64_t from = 0;
  std::string file;
};

struct Taps {
  bool on = false;
  std::vector<llama_token> tokens;
  std::string file;
};

struct Request {
  std::string model;
  CacheSettings cache;
  Logits logits;
  Taps taps;
  std::string prompt;
  int64_t n_predict = 32;
  int64_t top_k = 8;
  Bench bench;
};

// obj["tokens"]: 1 to max token ids, or exit 2 naming `what`.
std::vector<llama_token> token_list(simdjson::dom::object obj, const std::string& what, size_t max) {
  simdjson::dom::array ids;
  if (obj["tokens"].get_array().get(ids)) fail(2, what + ".tokens is not an array");
  std::vector<llama_token> out;
  for (simdjson::dom::element e : ids) {
    int64_t id = 0;
    if (e.get_int64().get(id) || id < 0 || id > INT32_MAX) fail(2, what + ".tokens holds a value that is not a token id");
    out.push_back(static_cast<llama_token>(id));
  }
  if (out.empty() || out.size() > max) fail(2, what + ".tokens: 1 to " + std::to_string(max) + " ids");
  return out;
}

std::string file_path(simdjson::dom::object obj, const std::string& what) {
  std::string_view sv;
  if (obj["file"].get_string().get(sv) || sv.empty()) fail(2, what + ".file is not a path");
  return std::string(sv);
}

Request parse_request(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(text).get(doc))
    fail(2, std::string("the request on stdin is not JSON: ") + simdjson::error_message(err));
  Request r;
  std::string_view sv;
  int64_t v0 = 0;
  if (doc["model"].get_string().get(sv)) fail(2, "the request has no \"model\" string");
  r.model = sv;
  for (auto [key, dst] : {std::pair{"type_k", &r.cache.type_k}, std::pair{"type_v", &r.cache.type_v},
                          std::pair{"flash_attn", &r.cache.flash_attn}}) {
    auto e = doc[key];
    if (e.error() == simdjson::NO_SUCH_FIELD) continue;
    if (e.get_string().get(sv)) fail(2, std::string("\"") + key + "\" is not a string");
    *dst = sv;
  }
  simdjson::dom::object bench;
  if (!doc["bench"].get_object().get(bench)) {
    r.bench.on = true;
    int64_t b = 0;
    if (!bench["n_prompt"].get_int64().get(b)) r.bench.n_prompt = b;
    if (!bench["n_gen"].get_int64().get(b)) r.bench.n_gen = b;
    if (!bench["n_depth"].get_int64().get(b)) r.bench.n_depth = b;
    if (!bench["reps"].get_int64().get(b)) r.bench.reps = b;
    if (!bench["threads"].get_int64().get(b)) r.bench.threads = b;
    if (r.bench.n_prompt < 0 || r.bench.n_prompt > (1 << 20)) fail(2, "bench.n_prompt out of range");
    if (r.bench.n_gen < 0 || r.bench.n_gen > (1 << 20)) fail(2, "bench.n_gen out of range");
    if (r.bench.n_depth < 0 || r.bench.n_depth > (1 << 20)) fail(2, "bench.n_depth out of range");
    if (r.bench.reps < 1 || r.bench.reps > 1000) fail(2, "bench.reps out of range");
    if (r.bench.threads < 0 || r.bench.threads > 1024) fail(2, "bench.threads out of range");
    return r;
  }
  simdjson::dom::object taps;
  if (!doc["taps"].get_object().get(taps)) {
    r.taps.on = true;
    r.taps.tokens = token_list(taps, "taps", 1u << 16);
    r.taps.file = file_path(taps, "taps");
    return r;
  }
  simdjson::dom::object logits;
  if (!doc["logits"].get_object().get(logits)) {
    r.logits.on = true;
    r.logits.tokens = token_list(logits, "logits", 1u << 20);
    if (!logits["from"].get_int64().get(v0)) r.logits.from = v0;
    if (r.logits.from < 0 || r.logits.from >= static_cast<int64_t>(r.logits.tokens.size()))
      fail(2, "logits.from is outside the tokens");
    r.logits.file = file_path(logits, "logits");
    return r;
  }
  if (doc["prompt"].get_string().get(sv)) fail(2, "the request has no \"prompt\" string");
  r.prompt = sv;
  int64_t v = 0;
  if (!doc["n_predict"].get_int64().get(v)) r.n_predict = v;
  if (!doc["top_k"].get_int64().get(v)) r.top_k = v;
  if (r.n_predict < 0 || r.n_predict > 1000000) fail(2, "n_predict out of range");
  if (r.top_k < 1 || r.top_k > 1000) fail(2, "top_k out of range");
  return r;
}

// JSON string with every byte outside printable ASCII escaped on its own (\u00XX), so the output
// is valid JSON whatever bytes a token holds; pieces are informative only.
std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

std::string json_float(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  return buf;
}

std::string json_double(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  return buf;
}

std::string piece(const llama_vocab* vocab, llama_token id) {
  std::string out(64, '\0');
  int32_t n = llama_token_to_piece(vocab, id, out.data(), static_cast<int32_t>(out.size()), 0, true);
  if (n < 0) {
    out.resize(static_cast<size_t>(-n));
    n = llama_token_to_piece(vocab, id, out.data(), static_cast<int32_t>(out.size()), 0, true);
  }
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text) {
  if (text.size() > static_cast<size_t>(INT32_MAX) / 2) fail(2, "prompt too long");
  const auto len = static_cast<int32_t>(text.size());
  std::vector<llama_token> ids(text.size() + 8);
  // BOS as the model says (add_special), control tokens written in the text parsed (parse_special).
  int32_t n = llama_tokenize(vocab, text.data(), len, ids.data(), static_cast<int32_t>(ids.size()), true, true);
  if (n < 0) {
    ids.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), len, ids.data(), static_cast<int32_t>(ids.size()), true, true);
  }
  if (n < 0) fail(1, "llama_tokenize failed");
  ids.resize(static_cast<size_t>(n));
  return ids;
}

// Best k (id, logit) pairs, logit descending, ties to the lower id (the greedy choice is top[0]).
std::vector<std::pair<llama_token, float>> top_k(const float* logits, int32_t n_vocab, size_t k) {
  std::vector<std::pair<llama_token, float>> all(static_cast<size_t>(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) all[static_cast<size_t>(i)] = {i, logits[i]};
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
  all.resize(k);
  return all;
}

ggml_type cache_type(const std::string& name) {
  if (name == "f16") return GGML_TYPE_F16;
  if (name == "f32") return GGML_TYPE_F32;
  if (name == "q8_0") return GGML_TYPE_Q8_0;
  fail(2, "cache type '" + name + "': expected f16, f32 or q8_0");
}

void apply_cache(const CacheSettings& s, llama_context_params& cp) {
  if (!s.type_k.empty()) cp.type_k = cache_type(s.type_k);
  if (!s.type_v.empty()) cp.type_v = cache_type(s.type_v);
  if (s.flash_attn.empty()) return;
  if (s.flash_attn != "on" && s.flash_attn != "off" && s.flash_attn != "auto")
    fail(2, "flash_attn '" + s.flash_attn + "': expected on, off or auto");
#ifdef BITNET_LLAMA_LEGACY_API
  cp.flash_attn = s.flash_attn == "on";
#else
  cp.flash_attn_type = s.flash_attn == "on"    ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                       : s.flash_attn == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                               : LLAMA_FLASH_ATTN_TYPE_AUTO;
#endif
}

// llama-bench's pp and tg tests: each repetition on a fresh context (empty KV cache), after one
// untimed warm-up; pp is one llama_decode of n_prompt tokens (n_batch = n_ubatch >= n_prompt), tg
// n_gen single-token decodes. Token ids are i % n_vocab: the content does not change the work.
// With a depth, each test makes one context and decodes the depth into it untimed; the warm-up
// and every repetition first drop the positions past the depth, then run from there (decoding
// thousands of tokens again per repetition would take minutes).
int run_bench(llama_model* model, const Bench& b, const CacheSettings& cache, int threads) {
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  const auto n_prompt = static_cast<uint32_t>(b.n_prompt), n_gen = static_cast<uint32_t>(b.n_gen);
  const auto n_depth = static_cast<uint32_t>(b.n_depth);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = n_depth + std::max(n_prompt, n_gen) + 1;
  cp.n_batch = std::max(n_prompt, 512u);
  cp.n_ubatch = cp.n_batch;
  cp.n_seq_max = 1;
  cp.n_threads = b.threads > 0 ? static_cast<int32_t>(b.threads) : threads;
  cp.n_threads_batch = cp.n_threads;
  apply_cache(cache, cp);
  llama_batch batch = llama_batch_init(static_cast<int32_t>(cp.n_batch), 0, 1);
  auto decode = [&](llama_context* ctx, uint32_t n, uint32_t pos0) {
    batch.n_tokens = static_cast<int32_t>(n);
    for (uint32_t i = 0; i < n; ++i) {
      batch.token[i] = static_cast<llama_token>((pos0 + i) % static_cast<uint32_t>(n_vocab));
      batch.pos[i] = static_cast<llama_pos>(pos0 + i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = i + 1 == n;
    }
    if (int rc = llama_decode(ctx, batch); rc != 0) fail(1, "llama_decode failed with " + std::to_string(rc));
  };
  auto new_context = [&] {
    llama_context* ctx = llama_init_from_model(model, cp);
    if (!ctx) fail(1, "llama.cpp could not create a context");
    return ctx;
  };
  // A context holding the depth, decoded in batches of n_batch; nullptr without a depth.
  auto deep_context = [&]() -> llama_context* {
    if (n_depth == 0) return nullptr;
    llama_context* ctx = new_context();
    for (uint32_t pos = 0; pos < n_depth; pos += cp.n_batch) decode(ctx, std::min(cp.n_batch, n_depth - pos), pos);
    llama_synchronize(ctx);
    return ctx;
  };
  // Seconds of one test from position n_depth: on `deep` rewound to the depth, or on a fresh
  // context made and freed outside the timing.
  auto timed = [&](bool pp, llama_context* deep) {
    llama_context* ctx = deep;
    if (deep) {
      if (!llama_memory_seq_rm(llama_get_memory(deep), 0, static_cast<llama_pos>(n_depth), -1))
        fail(1, "llama.cpp could not drop the positions past the depth");
    } else {
      ctx = new_context();
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (pp) {
      decode(ctx, n_prompt, n_depth);
    } else {
      for (uint32_t i = 0; i < n_gen; ++i) decode(ctx, 1, n_depth + i);
    }
    llama_synchronize(ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!deep) llama_free(ctx);
    return s;
  };
  // The warm-up, then the repetitions, as a JSON list.
  auto samples = [&](bool pp) {
    llama_context* deep = deep_context();
    timed(pp, deep);
    std::string list;
    for (int64_t r = 0; r < b.reps; ++r) list.append(r ? "," : "").append(json_double(timed(pp, deep)));
    if (deep) llama_free(deep);
    return list;
  };
  std::string out = "{\"pp_seconds\":[";
  if (n_prompt > 0) out.append(samples(true));
  out.append("],\"tg_seconds\":[");
  if (n_gen > 0) out.append(samples(false));
  out.append("]}\n");
  llama_batch_free(batch);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

// The tokens from position 0 in one batch on a fresh context of their length, the logits of
// positions from.. kept; with an eval callback (the taps mode) it sees every tensor. Exit 2 for
// an id outside the vocabulary (`what` names the request). The caller frees the context.
llama_context* decode_once(llama_model* model, const std::vector<llama_token>& tokens, uint32_t from, const char* what,
                           const CacheSettings& cache, int threads, ggml_backend_sched_eval_callback cb, void* cb_data) {
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  for (llama_token id : tokens)
    if (id >= n_vocab) fail(2, std::string(what) + ".tokens: id " + std::to_string(id) +
                               " is outside the vocabulary of " + std::to_string(n_vocab));
  const auto n = static_cast<uint32_t>(tokens.size());
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = n;
  cp.n_batch = n;
  cp.n_ubatch = n;
  cp.n_seq_max = 1;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.cb_eval = cb;
  cp.cb_eval_user_data = cb_data;
  apply_cache(cache, cp);
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) fail(1, "llama.cpp could not create a context of " + std::to_string(n) + " tokens");
  llama_batch batch = llama_batch_init(static_cast<int32_t>(n), 0, 1);
  batch.n_tokens = static_cast<int32_t>(n);
  for (uint32_t i = 0; i < n; ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = i >= from;
  }
  if (int rc = llama_decode(ctx, batch); rc != 0) fail(1, "llama_decode failed with " + std::to_string(rc));
  llama_synchronize(ctx);
  llama_batch_free(batch);
  return ctx;
}

// Logits of every position from `from` on, the tokens evaluated in one batch on a fresh context
// (llama-perplexity evaluates each chunk so), written as raw f32 rows to the request's file.
int run_logits(llama_model* model, const Logits& l, const CacheSettings& cache, int threads) {
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  const auto n = static_cast<uint32_t>(l.tokens.size());
  llama_context* ctx = decode_once(model, l.tokens, static_cast<uint32_t>(l.from), "logits", cache, threads, nullptr, nullptr);
  FILE* f = std::fopen(l.file.c_str(), "wb");
  if (!f) fail(1, "cannot write '" + l.file + "': " + std::strerror(errno));
  for (uint32_t i = static_cast<uint32_t>(l.from); i < n; ++i) {
    const float* row = llama_get_logits_ith(ctx, static_cast<int32_t>(i));
    if (!row) fail(1, "llama.cpp returned no logits for position " + std::to_string(i));
    if (std::fwrite(row, sizeof(float), static_cast<size_t>(n_vocab), f) != static_cast<size_t>(n_vocab))
      fail(1, "cannot write '" + l.file + "': " + std::strerror(errno));
  }
  if (std::fclose(f) != 0) fail(1, "cannot write '" + l.file + "': " + std::strerror(errno));
  const std::string out = "{\"n_vocab\":" + std::to_string(n_vocab) + ",\"rows\":" + std::to_string(n - l.from) + "}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  llama_free(ctx);
  return 0;
}

// What the eval callback keeps: the last position's row of each tap tensor, by "name-layer"; a
// name given to several tensors (Qcur: the product, its reshape, then after RoPE) keeps the last.
struct TapState {
  std::vector<std::string> keys;  // first-seen order
  std::vector<std::vector<float>> rows;
};

bool is_tap(const std::string& base) {
  static const char* const kNames[] = {"attn_norm", "Qcur",     "Kcur",   "Vcur",         "kqv_out",   "attn_sub_norm",
                                       "attn_o_out", "ffn_inp", "ffn_norm", "ffn_gate", "ffn_up",     "ffn_sub_norm",
                                       "ffn_out",   "ffn_down", "l_out",  "result_norm", "result_output"};
  return std::find(std::begin(kNames), std::end(kNames), base) != std::end(kNames);
}

bool tap_callback(ggml_tensor* t, bool ask, void* user) {
  // "attn_norm-3" (a layer's) or "result_norm"; views and reshapes ("Kcur-0 (view)") are not taps.
  const std::string name = t->name;
  const size_t dash = name.rfind('-');
  const bool layered = dash != std::string::npos && dash + 1 < name.size() &&
                       name.find_first_not_of("0123456789", dash + 1) == std::string::npos;
  const std::string base = layered ? name.substr(0, dash) : name;
  if (!is_tap(base)) return ask ? false : true;
  if (ask) return true;
  if (t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) return true;
  // Q, K and V are [head_dim][heads][tokens]; the rest [width][tokens].
  const bool three = base == "Qcur" || base == "Kcur" || base == "Vcur";
  const int64_t width = three ? t->ne[0] * t->ne[1] : t->ne[0];
  const int64_t cols = ggml_nelements(t) / width;
  std::vector<float> row(static_cast<size_t>(width));
  ggml_backend_tensor_get(t, row.data(), static_cast<size_t>((cols - 1) * width) * sizeof(float),
                          static_cast<size_t>(width) * sizeof(float));
  auto* st = static_cast<TapState*>(user);
  const auto it = std::find(st->keys.begin(), st->keys.end(), name);
  if (it == st->keys.end()) {
    st->keys.push_back(name);
    st->rows.push_back(std::move(row));
  } else {
    st->rows[static_cast<size_t>(it - st->keys.begin())] = std::move(row);
  }
  return true;
}

int run_taps(llama_model* model, const Taps& tp, const CacheSettings& cache, int threads) {
  TapState st;
  const auto last = static_cast<uint32_t>(tp.tokens.size() - 1);
  llama_context* ctx = decode_once(model, tp.tokens, last, "taps", cache, threads, tap_callback, &st);
  FILE* f = std::fopen(tp.file.c_str(), "wb");
  if (!f) fail(1, "cannot write '" + tp.file + "': " + std::strerror(errno));
  std::string out = "{\"taps\":[";
  for (size_t i = 0; i < st.keys.size(); ++i) {
    const std::string& key = st.keys[i];
    const size_t dash = key.rfind('-');
    const bool layered = dash != std::string::npos && key.find_first_not_of("0123456789", dash + 1) == std::string::npos;
    const std::string base = layered ? key.substr(0, dash) : key;
    const std::string layer = layered ? key.substr(dash + 1) : "-1";
    out += std::string(i ? "," : "") + "{\"name\":" + json_string(base) + ",\"layer\":" + layer +
           ",\"width\":" + std::to_string(st.rows[i].size()) + "}";
    if (std::fwrite(st.rows[i].data(), sizeof(float), st.rows[i].size(), f) != st.rows[i].size())
      fail(1, "cannot write '" + tp.file + "': " + std::strerror(errno));
  }
  if (std::fclose(f) != 0) fail(1, "cannot write '" + tp.file + "': " + std::strerror(errno));
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  llama_free(ctx);
  return 0;
}

// llama.cpp's quantizer, IN (F32/F16 GGUF) to OUT, written under a temporary name and renamed so
// that a failed or interrupted run leaves no half-written OUT.
int run_quantize(const std::string& in, const std::string& out, const std::string& type, int threads) {
  static const std::pair<const char*, llama_ftype> kTypes[] = {
      {"tq1_0", LLAMA_FTYPE_MOSTLY_TQ1_0}, {"tq2_0", LLAMA_FTYPE_MOSTLY_TQ2_0}, {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K},
      {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},   {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0}};
  const auto* it = std::find_if(std::begin(kTypes), std::end(kTypes), [&](const auto& t) { return type == t.first; });
  if (it == std::end(kTypes)) fail(2, "--quantize: unknown type '" + type + "' (tq1_0, tq2_0, q6_k, q8_0, q4_0)");
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = it->second;
  p.nthread = threads;
  const std::string tmp = out + ".tmp-" + std::to_string(getpid());
  if (llama_model_quantize(in.c_str(), tmp.c_str(), &p) != 0) {
    std::remove(tmp.c_str());
    fail(1, "llama.cpp could not quantize '" + in + "' (its messages are above)");
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    fail(1, "cannot rename '" + tmp + "' to '" + out + "': " + why);
  }
  return 0;
}

std::string id_or_null(llama_token id) { return id == LLAMA_TOKEN_NULL ? "null" : std::to_string(id); }

#ifndef BITNET_LLAMA_LEGACY_API
std::filesystem::path self_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path(".") : exe.parent_path();
}
#endif

void usage() {
  std::fputs("usage: bitnet-llama-ref [--threads N (default 1)] [--verbose] < request.json > golden.json\n"
             "  request: {\"model\": PATH, \"prompt\": TEXT, \"n_predict\": N, \"top_k\": K}\n"
             "       or {\"model\": PATH, \"bench\": {\"n_prompt\": N, \"n_gen\": N, \"n_depth\": D, \"reps\": R, "
             "\"threads\": T}}\n"
             "       or {\"model\": PATH, \"logits\": {\"tokens\": [IDS], \"from\": F, \"file\": PATH}}\n"
             "       or {\"model\": PATH, \"taps\": {\"tokens\": [IDS], \"file\": PATH}}\n"
             "  any request may add \"type_k\", \"type_v\" (f16, f32, q8_0) and \"flash_attn\" (on, off, auto)\n"
             "       bitnet-llama-ref [--threads N] --quantize IN.gguf OUT.gguf tq1_0|tq2_0|q6_k|q8_0|q4_0\n"
             "  BITNET_LLAMA_CPU=NAME: load only lib/libggml-cpu-NAME.so (haswell = AVX2)\n",
             stderr);
}

}  // namespace

int main(int argc, char** argv) {
  // One thread by default: ggml's workers spin-wait between ops, which on a busy machine (CI running
  // tests in parallel) makes two threads a hundred times slower than one. Results do not depend on it.
  int threads = 1;
  std::vector<std::string> quantize;  // IN OUT TYPE
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quantize" && i + 3 < argc) {
      quantize.assign(argv + i + 1, argv + i + 4);
      i += 3;
    } else if ((a == "--threads" || a == "-t") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
      if (threads < 1 || threads > 1024) fail(2, "--threads wants 1..1024");
    } else if (a == "--verbose" || a == "-v") {
      g_verbose = true;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      usage();
      fail(2, "unknown argument '" + a + "'");
    }
  }
  llama_log_set(log_sink, nullptr);
  llama_backend_init();
  if (!quantize.empty()) {
    const int rc = run_quantize(quantize[0], quantize[1], quantize[2], threads);
    llama_backend_free();
    return rc;
  }
  const std::string input(std::istreambuf_iterator<char>(std::cin), {});
  const Request req = parse_request(input);

#ifndef BITNET_LLAMA_LEGACY_API
  // The CPU backends are separate libraries (one per ISA level) chosen at run time; BITNET_LLAMA_CPU
  // pins one, e.g. haswell for llama.cpp's AVX2 kernels on a CPU that has AVX-512.
  if (const char* cpu = std::getenv("BITNET_LLAMA_CPU"); cpu != nullptr && *cpu != '\0') {
    const auto lib = self_dir() / "lib" / ("libggml-cpu-" + std::string(cpu) + ".so");
    if (!std::filesystem::exists(lib)) fail(2, "BITNET_LLAMA_CPU=" + std::string(cpu) + ": no " + lib.string());
    if (ggml_backend_load(lib.c_str()) == nullptr)
      fail(2, "BITNET_LLAMA_CPU=" + std::string(cpu) + ": " + lib.string() + " does not load on this CPU");
  } else {
    ggml_backend_load_all_from_path((self_dir() / "lib").c_str());
  }
#endif

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(req.model.c_str(), mp);
  if (!model) fail(3, "llama.cpp could not load the model '" + req.model + "' (its messages are above)");
  if (req.bench.on || req.logits.on || req.taps.on) {
    const int rc = req.bench.on    ? run_bench(model, req.bench, req.cache, threads)
                   : req.logits.on ? run_logits(model, req.logits, req.cache, threads)
                                   : run_taps(model, req.taps, req.cache, threads);
    llama_model_free(model);
    llama_backend_free();
    return rc;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);

  std::vector<llama_token> prompt = tokenize(vocab, req.prompt);
  if (prompt.empty()) fail(2, "the prompt is empty and the model adds no BOS token");
  const auto n_prompt = static_cast<uint32_t>(prompt.size());
  const auto n_predict = static_cast<uint32_t>(req.n_predict);

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = n_prompt + n_predict + 1;
  // The whole prompt in one batch and one micro-batch, as the llama.cpp goldens were made.
  cp.n_batch = std::max(n_prompt, 512u);
  cp.n_ubatch = cp.n_batch;
  cp.n_seq_max = 1;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  apply_cache(req.cache, cp);
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) fail(1, "llama.cpp could not create a context for '" + req.model + "'");

  llama_batch batch = llama_batch_init(static_cast<int32_t>(n_prompt), 0, 1);
  auto feed = [&](const llama_token* ids, uint32_t n, uint32_t pos0) {
    batch.n_tokens = static_cast<int32_t>(n);
    for (uint32_t i = 0; i < n; ++i) {
      batch.token[i] = ids[i];
      batch.pos[i] = static_cast<llama_pos>(pos0 + i);
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = i + 1 == n;  // logits of the last token only
    }
    if (int rc = llama_decode(ctx, batch); rc != 0) fail(1, "llama_decode failed with " + std::to_string(rc));
  };

  std::string out = "{\"engine\":" + json_string(std::string("llama.cpp ") + llama_version()) + ",\"prompt\":" +
                    json_string(req.prompt) + ",\"vocab\":{\"n_tokens\":" + std::to_string(n_vocab) +
                    ",\"bos\":" + id_or_null(llama_vocab_bos(vocab)) + ",\"eos\":" + id_or_null(llama_vocab_eos(vocab)) +
                    ",\"eot\":" + id_or_null(llama_vocab_eot(vocab)) +
                    ",\"add_bos\":" + (llama_vocab_get_add_bos(vocab) ? "true" : "false") + "},\"prompt_ids\":[";
  for (uint32_t i = 0; i < n_prompt; ++i) out += (i ? "," : "") + std::to_string(prompt[i]);
  out += "],\"steps\":[";

  feed(prompt.data(), n_prompt, 0);
  // Greedy, and past end-of-generation tokens too: every run has n_predict steps to compare.
  for (uint32_t step = 0; step < n_predict; ++step) {
    const float* logits = llama_get_logits_ith(ctx, -1);
    if (!logits) fail(1, "llama.cpp returned no logits");
    auto top = top_k(logits, n_vocab, static_cast<size_t>(req.top_k));
    const llama_token id = top[0].first;
    out += std::string(step ? "," : "") + "{\"id\":" + std::to_string(id) + ",\"piece\":" + json_string(piece(vocab, id)) +
           ",\"top\":[";
    for (size_t j = 0; j < top.size(); ++j)
      out += std::string(j ? "," : "") + "[" + std::to_string(top[j].first) + "," + json_float(top[j].second) + "]";
    out += "]}";
    if (step + 1 < n_predict) feed(&id, 1, n_prompt + step);
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);

  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
