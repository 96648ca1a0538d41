// The REF argument of crossval (CLI.md) and the runners for references outside this process:
// golden:FILE, cmd:COMMAND and llama.cpp[:DIR] (our adapter program, spoken to like cmd:).
// backend:NAME and float[:SCHEME] (the float oracle, diag/oracle) run in-process (crossval.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "diag/crossval/golden.hpp"
#include "diag/crossval/layers.hpp"

namespace bitnet::diag {

enum class RefKind { golden, command, backend, llama_cpp, float_oracle };

struct ReferenceSpec {
  RefKind kind = RefKind::golden;
  std::string text;                 // as given, for the report
  std::filesystem::path file;       // golden
  std::vector<std::string> argv;    // command, llama_cpp (the adapter)
  std::string backend;              // backend
  std::string activations;          // float_oracle: exact, q8_k or i8 (OracleActivations)
  std::string timeout_flag = "--timeout";  // the flag that sets its time limit, for the timeout message
};

// The adapter's file name inside a llama.cpp reference directory.
inline constexpr std::string_view kLlamaAdapter = "bitnet-llama-ref";

// llama_dir: BITNET_LLAMA_DIR as app/ read it ("" when unset), used by a bare "llama.cpp".
// threads: passed to the llama.cpp adapter. Throws Error(usage) for an unknown spelling and Error(fixture)
// when llama.cpp is asked for but not set up.
ReferenceSpec parse_reference(std::string_view spec, const std::filesystem::path& llama_dir, int threads);

struct RefRequest {
  std::filesystem::path model;  // absolute
  std::string prompt;
  size_t n_predict = 32;
  size_t top_k = 8;
  const std::atomic<bool>* cancel = nullptr;  // set: the reference is stopped, Error(interrupted)
};

struct RefRun {
  Golden golden;
  std::string err;  // the reference's stderr (tail)
  double seconds = 0;
};

// cmd: and llama.cpp: sends the request as JSON on stdin and parses the golden on stdout. A program
// that is missing (Error fixture), hangs past the timeout (Error timeout), crashes, exits non-zero
// or prints junk (Error failure) gives an error naming the command, with the tail of its stderr.
RefRun run_command_reference(const ReferenceSpec& ref, const RefRequest& req, std::chrono::milliseconds timeout);

// `bitnet bench --reference`: the llama.cpp adapter's bench mode (llama-bench's pp and tg tests,
// after n_depth tokens of context).
struct RefBenchRequest {
  std::filesystem::path model;  // absolute
  int32_t n_prompt = 0;         // 0: no pp test
  int32_t n_gen = 0;            // 0: no tg test
  int32_t n_depth = 0;          // tokens of context before each test, evaluated untimed
  int32_t reps = 1;
  int threads = 1;
  std::string kv_type;     // the reference's K and V cache type: f16, f32, q8_0 ("": its default)
  std::string flash_attn;  // on, off, auto ("": its default)
  const std::atomic<bool>* cancel = nullptr;  // set: the reference is stopped, Error(interrupted)
};

struct RefBenchRun {
  std::vector<double> pp_seconds;  // one per repetition
  std::vector<double> tg_seconds;
};

// Same errors as run_command_reference, and Error(failure) for an answer that is not
// {"pp_seconds": [...], "tg_seconds": [...]} with one positive number per repetition.
RefBenchRun run_reference_bench(const ReferenceSpec& ref, const RefBenchRequest& req, std::chrono::milliseconds timeout);

// The bench answer alone: n_pp and n_tg positive numbers expected (0: an empty array). Throws
// Error(failure) with the detail (run_reference_bench adds the command and its stderr).
RefBenchRun parse_bench_answer(std::string_view out, int32_t n_pp, int32_t n_tg);

// `bitnet perplexity --reference llama.cpp`: the adapter's logits mode. The tokens are evaluated
// from position 0 in one batch on a fresh context; the logits of positions from.. come back.
struct RefLogitsRequest {
  std::filesystem::path model;  // absolute
  std::vector<TokenId> tokens;
  size_t from = 0;              // first position whose logits are wanted, < tokens.size()
  std::string kv_type;          // the KV cache's type for K and V: f16, f32, q8_0 ("": llama.cpp's default)
  std::string flash_attn;       // on, off, auto ("": llama.cpp's default)
  const std::atomic<bool>* cancel = nullptr;
};

struct RefLogits {
  uint32_t n_vocab = 0;
  std::vector<float> logits;  // [tokens.size() - from][n_vocab]
};

// Same errors as run_command_reference, and Error(failure) for an answer that is not
// {"n_vocab": V, "rows": N} with N rows of V floats in the file, or a V other than n_vocab.
RefLogits run_reference_logits(const ReferenceSpec& ref, const RefLogitsRequest& req, uint32_t n_vocab,
                               std::chrono::milliseconds timeout);

// `crossval --layers --reference llama.cpp`: the adapter's taps mode. The tokens are evaluated in
// one batch; llama.cpp's eval callback keeps the last position's row of every tensor it names as a
// tap. Its names are mapped to ours (attn_o_out -> attn_out, ffn_down -> ffn_out where no ffn_out
// is named); a tap it does not name is missing from the result.
struct RefTapsRequest {
  std::filesystem::path model;  // absolute
  std::vector<TokenId> tokens;
  std::string kv_type;          // f16, f32, q8_0
  std::string flash_attn;       // on, off, auto
  const std::atomic<bool>* cancel = nullptr;
};
TapCapture run_reference_taps(const ReferenceSpec& ref, const RefTapsRequest& req, std::chrono::milliseconds timeout);

}  // namespace bitnet::diag
