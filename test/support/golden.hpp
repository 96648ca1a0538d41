// Test helper: read a golden file (fixtures/README.md format): the prompt ids and, per greedy
// step, the chosen id and the reference's top-8 (id, logit).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/base/token_id.hpp"

namespace bitnet::test {

struct GoldenStep {
  TokenId id = 0;
  std::vector<std::pair<TokenId, float>> top;  // best first
};

struct Golden {
  std::vector<TokenId> prompt_ids;
  std::vector<GoldenStep> steps;
};

inline Golden read_golden(const std::filesystem::path& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.load(path.string()).get(doc) != simdjson::SUCCESS) throw std::runtime_error("cannot parse " + path.string());
  Golden g;
  for (int64_t id : doc["prompt_ids"].get_array()) g.prompt_ids.push_back(static_cast<int32_t>(id));
  for (simdjson::dom::element step : doc["steps"].get_array()) {
    GoldenStep s;
    s.id = static_cast<int32_t>(int64_t(step["id"]));
    for (simdjson::dom::array pair : step["top"].get_array()) {
      auto it = pair.begin();
      int64_t id = *it;
      ++it;
      double logit = *it;
      s.top.emplace_back(static_cast<int32_t>(id), static_cast<float>(logit));
    }
    g.steps.push_back(std::move(s));
  }
  return g;
}

}  // namespace bitnet::test
