// Sampling chain. Probabilities are renormalised after each truncation step, as llama.cpp does.
#include "sampler.hpp"

#include <algorithm>
#include <cmath>

namespace bitnet::infer {

TokenId argmax(std::span<const float> logits) {
  TokenId best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<TokenId>(i);
  return best;
}

Sampler::Sampler(const SamplerOptions& opt) : opt_(opt), rng_(opt.seed) {}

void Sampler::accept(TokenId token) {
  if (opt_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (recent_.size() > static_cast<size_t>(opt_.repeat_last_n)) recent_.pop_front();
}

std::vector<TokenId> Sampler::penalized() const {
  if (opt_.repeat_penalty == 1.0f) return {};
  std::vector<TokenId> seen(recent_.begin(), recent_.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

namespace {

void softmax_candidates(auto& cand) {
  float mx = cand.front().logit;
  for (const auto& c : cand) mx = std::max(mx, c.logit);
  double sum = 0;
  for (auto& c : cand) {
    c.p = std::exp(c.logit - mx);
    sum += c.p;
  }
  for (auto& c : cand) c.p = static_cast<float>(c.p / sum);
}

}  // namespace

TokenId Sampler::sample(std::span<const float> logits) {
  cand_.clear();
  cand_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_.push_back({static_cast<TokenId>(i), logits[i], 0.0f});

  if (opt_.repeat_penalty != 1.0f) {
    // Each distinct recent token once: positive logits divided, negative multiplied.
    for (TokenId id : penalized()) {
      if (id < 0 || static_cast<size_t>(id) >= cand_.size()) continue;
      float& l = cand_[static_cast<size_t>(id)].logit;
      l = l > 0 ? l / opt_.repeat_penalty : l * opt_.repeat_penalty;
    }
  }
  if (opt_.temp <= 0.0f) {
    auto best = std::max_element(cand_.begin(), cand_.end(), [](const auto& a, const auto& b) {
      return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
    });
    return best->id;
  }
  // Sorted by logit, descending; ties by id so results do not depend on the sort's stability.
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (opt_.top_k > 0 && static_cast<size_t>(opt_.top_k) < cand_.size()) {
    std::partial_sort(cand_.begin(), cand_.begin() + opt_.top_k, cand_.end(), by_logit);
    cand_.resize(static_cast<size_t>(opt_.top_k));
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  softmax_candidates(cand_);
  if (opt_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].p;
      if (cum >= opt_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
    softmax_candidates(cand_);
  }
  if (opt_.min_p > 0.0f) {
    const float floor = cand_.front().p * opt_.min_p;
    size_t keep = 1;
    while (keep < cand_.size() && cand_[keep].p >= floor) ++keep;
    cand_.resize(keep);
  }
  for (auto& c : cand_) c.logit /= opt_.temp;
  softmax_candidates(cand_);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  double r = uni(rng_), cum = 0;
  for (const auto& c : cand_) {
    cum += c.p;
    if (r < cum) return c.id;
  }
  return cand_.back().id;
}

}  // namespace bitnet::infer
