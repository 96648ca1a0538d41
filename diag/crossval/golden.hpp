// The golden format (fixtures/README.md), which is also the reference protocol: what an engine
// computed for one prompt, greedy: the prompt ids and per step the chosen id and its top-k logits.
// Parsing is strict about structure and lenient about optional fields ("piece", "vocab", ...).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/token_id.hpp"
#include "diag/crossval/layers.hpp"

namespace bitnet::diag {

struct TopEntry {
  TokenId id = 0;
  float logit = 0;
};

struct GoldenStep {
  TokenId id = 0;              // the token chosen at this step
  std::string piece;           // informative only; may be empty
  std::vector<TopEntry> top;   // best first, as the engine ranked them
};

// Vocabulary facts an engine may state about the model (all optional in the format).
struct VocabFacts {
  std::optional<int64_t> n_tokens, bos, eos, eot;
  std::optional<bool> add_bos;
};

// The taps of one step (crossval --record FILE --layers): every tap's row at the position whose
// logits are that step's, so that a later `--reference golden:FILE --layers` can say where a run
// parts from the recorded one.
struct GoldenLayers {
  size_t step = 0;
  std::vector<CapturedTap> taps;
};

struct Golden {
  std::string engine;                 // "llama.cpp 0.5.0-dev", "" when not stated
  std::optional<std::string> prompt;  // the prompt text, when stated
  std::optional<VocabFacts> vocab;
  std::vector<TokenId> prompt_ids;
  std::vector<GoldenStep> steps;
  std::optional<GoldenLayers> layers;  // optional in the format
};

// Throws bitnet::Error(invalid_input) naming `source` and what is wrong (not JSON, a missing
// key, a step without "top", a negative id, an empty prompt).
Golden parse_golden(std::string_view json, std::string_view source);
// Throws bitnet::Error(fixture) when the file cannot be read, else as parse_golden.
Golden read_golden_file(const std::filesystem::path& path);
// Compact JSON, one object and a newline. Reads back equal, except pieces that are not valid
// UTF-8 (their bad bytes become U+FFFD so the file stays valid JSON).
std::string write_golden(const Golden& g);

}  // namespace bitnet::diag
